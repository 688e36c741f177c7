import { execFileSync } from "node:child_process";
import path from "node:path";

/**
 * Writes a pure-Python wheel with a console script, without network or build backends, so tests
 * can `pip install` it offline with `PIP_FIND_LINKS` + `PIP_NO_INDEX`. Returns the wheel's path.
 * Running the script prints `message`.
 */
export function buildWheel(dir: string, options: { name: string; version: string; script: string; message: string }): string {
  const module = options.name.replace(/-/g, "_");
  return buildPackageWheel(dir, {
    name: options.name,
    version: options.version,
    // A JSON string is a Python string literal too.
    files: { [`${module}/__init__.py`]: `def main():\n    print(${JSON.stringify(options.message)})\n` },
    scripts: { [options.script]: `${module}:main` },
  });
}

/**
 * Writes a pure-Python wheel holding `files` (paths inside site-packages → source) and console
 * `scripts` (name → "module:function"), for offline installs (see `buildWheel`). Returns its path.
 */
export function buildPackageWheel(dir: string, options: { name: string; version: string; files: Record<string, string>; scripts?: Record<string, string> }): string {
  const distName = options.name.replace(/-/g, "_");
  const file = path.join(dir, `${distName}-${options.version}-py3-none-any.whl`);
  const script = `
import base64, hashlib, json, sys, zipfile
o = json.loads(sys.argv[2])
dist = f'{o["dist"]}-{o["version"]}.dist-info'
files = dict(o["files"])
files[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\\nName: {o['name']}\\nVersion: {o['version']}\\n"
files[f"{dist}/WHEEL"] = "Wheel-Version: 1.0\\nGenerator: slipway-tests\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
if o["scripts"]:
    files[f"{dist}/entry_points.txt"] = "[console_scripts]\\n" + "".join(f"{k} = {v}\\n" for k, v in o["scripts"].items())
record = []
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for name, text in files.items():
        data = text.encode()
        z.writestr(name, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    z.writestr(f"{dist}/RECORD", "\\n".join(record) + "\\n")
`;
  execFileSync("python3", ["-c", script, file, JSON.stringify({ ...options, dist: distName, scripts: options.scripts ?? {} })]);
  return file;
}
