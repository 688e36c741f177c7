import { readFile } from "node:fs/promises";

/** probe.py's source, for a hostile app or build to carry. */
export const PROBE_SOURCE = await readFile(new URL("./probe.py", import.meta.url), "utf8");

/** What probe.py found: what it could read, reach and write. */
export interface ProbeFindings {
  uid: number;
  pids: number[];
  environ: string;
  connect: Record<string, string>;
  write: Record<string, string>;
  read: Record<string, string>;
}

/** The findings from the `PROBE {...}` line in `output` (a build log, an app's answer). */
export function parseProbe(output: string): ProbeFindings {
  const line = output.split("\n").find((l) => l.startsWith("PROBE "));
  if (!line) throw new Error(`no PROBE line in:\n${output}`);
  return JSON.parse(line.slice("PROBE ".length)) as ProbeFindings;
}
