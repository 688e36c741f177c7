import { execFileSync } from "node:child_process";

export interface ZipEntry {
  name: string;
  content?: string;
  /** Unix mode, file type bits included (0o100755, 0o120777 for a symlink whose content is its target). */
  mode?: number;
}

/** Writes a zip with exactly these entries (names unnormalised), as Unix zip tools write them. */
export function writeZip(file: string, entries: ZipEntry[]): void {
  const script = `
import json, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for e in json.loads(sys.stdin.read()):
        info = zipfile.ZipInfo(e["name"])
        info.create_system = 3
        info.external_attr = (e.get("mode") or 0o100644) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, e.get("content", ""))
`;
  execFileSync("python3", ["-c", script, file], { input: JSON.stringify(entries) });
}
