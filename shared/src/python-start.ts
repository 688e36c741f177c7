import { access } from "node:fs/promises";
import path from "node:path";
import { readUntrustedText } from "./untrusted-file";

const exists = (file: string) => access(file).then(() => true, () => false);

/**
 * A start command for a Python app, from what its directory holds: gunicorn serving the WSGI
 * object of app.py / application.py / main.py when gunicorn is installed in the venv, else
 * `python <script>`. Binds loopback: the runtime agent owns the public port and proxies to it.
 * Shared by the build (for the manifest's StartupCommand) and the runtime (for Oryx manifests).
 */
export async function detectPythonStartCommand(appDir: string, venvName = "antenv"): Promise<string | undefined> {
  if (await exists(path.join(appDir, venvName, "bin", "gunicorn"))) {
    for (const module of ["app", "application", "main", "wsgi"]) {
      // The build's own commands (or the app) wrote this tree: no links out, no FIFOs.
      const text = (await readUntrustedText(path.join(appDir, `${module}.py`))) ?? "";
      const wsgi = /^(\w+)\s*=\s*(?:Flask|get_wsgi_application)\(/m.exec(text);
      if (wsgi) return `gunicorn --bind=127.0.0.1:$PORT ${module}:${wsgi[1]}`;
    }
  }
  for (const script of ["app.py", "application.py", "main.py", "server.py"]) {
    if (await exists(path.join(appDir, script))) return `python ${script}`;
  }
  return undefined;
}
