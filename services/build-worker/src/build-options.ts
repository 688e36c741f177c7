import { readFile } from "node:fs/promises";
import path from "node:path";

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parses a repo-root `build.env`: `KEY=VALUE` lines, `#` comments, optional `export ` and quotes.
 * Lines that are not assignments are reported back rather than silently dropped.
 */
export function parseBuildEnv(text: string): { values: Record<string, string>; ignored: string[] } {
  const values: Record<string, string> = {};
  const ignored: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const assignment = line.replace(/^export\s+/, "");
    const eq = assignment.indexOf("=");
    const key = eq > 0 ? assignment.slice(0, eq).trim() : "";
    if (!KEY.test(key)) {
      ignored.push(raw);
      continue;
    }
    let value = assignment.slice(eq + 1).trim();
    const quoted = /^(["'])(.*)\1$/.exec(value);
    if (quoted) value = quoted[2]!;
    values[key] = value;
  }
  return { values, ignored };
}

/** Build options: `build.env` in the source, overridden key by key by the app's `buildEnv`. */
export async function loadBuildOptions(sourceDir: string, appBuildEnv: Record<string, string>, log: (line: string) => void) {
  const text = await readFile(path.join(sourceDir, "build.env"), "utf8").catch(() => undefined);
  let fromFile: Record<string, string> = {};
  if (text !== undefined) {
    const { values, ignored } = parseBuildEnv(text);
    fromFile = values;
    log(`Read build.env: ${Object.keys(values).join(", ") || "no settings"}`);
    for (const line of ignored) log(`build.env: ignoring a line that is not KEY=VALUE: ${line}`);
  }
  return { ...fromFile, ...appBuildEnv };
}
