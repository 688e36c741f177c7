const secrets = new Set<string>();

/**
 * Registers a value the CLI must never print (the API token), whatever path the output takes.
 * Very short values are not hidden: replacing them would mangle ordinary text.
 */
export function keepSecret(value: string | undefined): void {
  if (value && value.trim().length >= 8) secrets.add(value).add(value.trim());
}

/** `text` with every registered secret replaced. */
export function scrub(text: string): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join("[redacted]");
  return out;
}

/** Prints rows as an aligned table for people, or the raw value as JSON for scripts. */
export function print(value: unknown, json: boolean, columns?: [header: string, pick: (row: Record<string, unknown>) => unknown][]): void {
  if (json || !columns || !Array.isArray(value)) {
    process.stdout.write(scrub(`${JSON.stringify(value, null, 2)}\n`));
    return;
  }
  const rows = (value as Record<string, unknown>[]).map((row) => columns.map(([, pick]) => String(pick(row) ?? "-")));
  const headers = columns.map(([header]) => header);
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd();
  process.stdout.write(scrub(`${[line(headers), ...rows.map(line)].join("\n")}\n`));
}

const UNITS = ["B", "KB", "MB", "GB"];
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${UNITS[unit]}`;
}
