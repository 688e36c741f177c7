/** Prints rows as an aligned table for people, or the raw value as JSON for scripts. */
export function print(value: unknown, json: boolean, columns?: [header: string, pick: (row: Record<string, unknown>) => unknown][]): void {
  if (json || !columns || !Array.isArray(value)) {
    process.stdout.write(`${JSON.stringify(value, null, json ? 2 : 2)}\n`);
    return;
  }
  const rows = (value as Record<string, unknown>[]).map((row) => columns.map(([, pick]) => String(pick(row) ?? "-")));
  const headers = columns.map(([header]) => header);
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd();
  process.stdout.write(`${[line(headers), ...rows.map(line)].join("\n")}\n`);
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
