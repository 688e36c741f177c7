import { execFileSync } from "node:child_process";

export interface TarEntry {
  name: string;
  type?: "file" | "dir" | "symlink" | "hardlink" | "fifo";
  content?: string;
  target?: string;
  mode?: number;
}

/**
 * Writes a tar.gz with exactly the entries given, names unnormalised, so tests can craft the
 * hostile archives (`../x`, `/etc/x`, escaping links) that ordinary packers refuse to make.
 */
export function writeTarGz(file: string, entries: TarEntry[]): void {
  const script = `
import io, json, sys, tarfile
entries = json.loads(sys.stdin.read())
types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE}
with tarfile.open(sys.argv[1], "w:gz", format=tarfile.GNU_FORMAT) as tar:
    for e in entries:
        info = tarfile.TarInfo(e["name"])
        info.type = types[e.get("type", "file")]
        info.mode = e.get("mode", 0o755 if info.type == tarfile.DIRTYPE else 0o644)
        if "target" in e: info.linkname = e["target"]
        data = e.get("content", "").encode()
        if info.type == tarfile.REGTYPE:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        else:
            tar.addfile(info)
`;
  execFileSync("python3", ["-c", script, file], { input: JSON.stringify(entries) });
}
