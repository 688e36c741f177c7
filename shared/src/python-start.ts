import { access, readdir } from "node:fs/promises";
import path from "node:path";
import { readUntrustedText } from "./untrusted-file";

/**
 * How a Python app starts, from what its directory holds. Shared by the build (which writes the
 * manifest's StartupCommand and installs the server the command needs) and the runtime (which
 * starts Oryx-built releases, whose manifests carry no command). Every command binds loopback on
 * `$PORT`: the runtime agent owns the public port and proxies to it.
 *
 * Everything read here may have been written by untrusted code (the build's commands, the app):
 * files are read without following links out, directories only when they are real directories.
 */

const exists = (file: string) => access(file).then(() => true, () => false);

export type PythonFramework = "Django" | "Flask" | "FastAPI" | "Starlette";

/** The object a server serves: `module:variable`, found in `file`. */
export interface PythonAppEntry {
  framework: PythonFramework;
  protocol: "wsgi" | "asgi";
  /** A dotted module name: `app`, `mysite.wsgi`. */
  module: string;
  /** The module's variable holding the app: `app`, `application`. */
  variable: string;
  /** Where it was found, relative to the app's directory. */
  file: string;
}

/** Flask's candidates, in order (Oryx's list, then main.py). */
export const WSGI_FILES = ["application.py", "app.py", "run.py", "index.py", "server.py", "wsgi.py", "main.py"];
/** FastAPI's and Starlette's candidates, in order (Oryx's list for FastAPI). */
export const ASGI_FILES = ["main.py", "app.py", "application.py", "server.py", "asgi.py", "api.py", "index.py", "run.py"];
/** A Django project is served over ASGI when its requirements name one of these. */
export const DJANGO_ASGI_MARKERS = ["channels", "daphne", "uvicorn", "hypercorn"];

// A top-level assignment (no indentation: not inside a function), optionally annotated.
const assignment = (call: string) => new RegExp(`^([A-Za-z_]\\w*)\\s*(?::[^=\\n]+)?=\\s*${call}\\(`, "m");
const WSGI_PATTERNS: [PythonFramework, RegExp][] = [
  ["Flask", assignment("(?:flask\\.)?Flask")],
  // A Django project laid out flat: wsgi.py beside manage.py.
  ["Django", assignment("(?:[\\w.]+\\.)?get_wsgi_application")],
];
const ASGI_PATTERNS: [PythonFramework, RegExp][] = [
  ["FastAPI", assignment("(?:fastapi\\.)?FastAPI")],
  ["Starlette", assignment("(?:[\\w.]+\\.)?Starlette")],
];
const IDENTIFIER = /^[A-Za-z_]\w*$/;

/**
 * Finds the app to serve, in this order: a Django project (the directory holding `wsgi.py`, as
 * `django-admin startproject` lays it out; its `asgi.py` when the project uses channels or an
 * ASGI server), a module creating a FastAPI or Starlette app, a module creating a Flask app (or a
 * flat Django `wsgi.py`), a Flask application factory. Undefined when none is found.
 */
export async function detectPythonApp(appDir: string, venvName = "antenv"): Promise<PythonAppEntry | undefined> {
  const django = await detectDjangoProject(appDir, venvName);
  if (django) return django;
  for (const [files, patterns, protocol] of [[ASGI_FILES, ASGI_PATTERNS, "asgi"], [WSGI_FILES, WSGI_PATTERNS, "wsgi"]] as const) {
    for (const file of files) {
      const text = await readUntrustedText(path.join(appDir, file));
      if (!text) continue;
      for (const [framework, pattern] of patterns) {
        const match = pattern.exec(text);
        if (match) return { framework, protocol, module: file.slice(0, -3), variable: match[1]!, file };
      }
    }
  }
  return detectFlaskFactory(appDir, venvName);
}

/** A top-level `create_app()` or `make_app()`: the factories Flask's own CLI looks for. */
const FLASK_FACTORY = /^def\s+(create_app|make_app)\s*\(\s*\)/m;
const IMPORTS_FLASK = /^\s*(?:from\s+flask\s+import|import\s+flask)\b/m;

/**
 * A Flask application factory, as Flask's tutorial lays one out (`flaskr/__init__.py`) or in one
 * of the WSGI files: served as `module:create_app()`, which gunicorn calls. Only when no module
 * creates the app at its top level.
 */
async function detectFlaskFactory(appDir: string, venvName: string): Promise<PythonAppEntry | undefined> {
  const packages = (await readdir(appDir, { withFileTypes: true }).catch(() => []))
    .filter((entry) => entry.isDirectory() && entry.name !== venvName && IDENTIFIER.test(entry.name))
    .map((entry) => entry.name)
    .sort();
  const candidates = [...WSGI_FILES.map((file) => ({ file, module: file.slice(0, -3) })), ...packages.map((name) => ({ file: path.join(name, "__init__.py"), module: name }))];
  for (const { file, module } of candidates) {
    const text = await readUntrustedText(path.join(appDir, file));
    const factory = text && IMPORTS_FLASK.test(text) ? FLASK_FACTORY.exec(text)?.[1] : undefined;
    if (factory) return { framework: "Flask", protocol: "wsgi", module, variable: `${factory}()`, file };
  }
  return undefined;
}

async function detectDjangoProject(appDir: string, venvName: string): Promise<PythonAppEntry | undefined> {
  const entries = await readdir(appDir, { withFileTypes: true }).catch(() => []);
  const projects: string[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name === venvName || !IDENTIFIER.test(entry.name)) continue;
    if (await readUntrustedText(path.join(appDir, entry.name, "wsgi.py"))) projects.push(entry.name);
  }
  if (!projects.length) return undefined;
  projects.sort();
  // manage.py names the settings module (`mysite.settings`): its package is the project.
  const manage = (await readUntrustedText(path.join(appDir, "manage.py"))) ?? "";
  const named = /DJANGO_SETTINGS_MODULE["']\s*,\s*["']([A-Za-z_]\w*)\./.exec(manage)?.[1];
  const project = named && projects.includes(named) ? named : projects[0]!;

  const asgiText = await readUntrustedText(path.join(appDir, project, "asgi.py"));
  const requirements = await dependencyNames(appDir);
  const settings = (await readUntrustedText(path.join(appDir, project, "settings.py"))) ?? "";
  const asgi = asgiText !== undefined && (DJANGO_ASGI_MARKERS.some((name) => requirements.has(name)) || /^ASGI_APPLICATION\s*=/m.test(settings));
  const file = path.join(project, asgi ? "asgi.py" : "wsgi.py");
  const text = asgi ? asgiText! : ((await readUntrustedText(path.join(appDir, file))) ?? "");
  const variable = assignment(`(?:[\\w.]+\\.)?get_${asgi ? "a" : "w"}sgi_application`).exec(text)?.[1] ?? "application";
  return { framework: "Django", protocol: asgi ? "asgi" : "wsgi", module: `${project}.${asgi ? "asgi" : "wsgi"}`, variable, file };
}

/** Requirement names, lowercased with `_` as `-`, from requirements.txt and pyproject.toml. */
export async function dependencyNames(appDir: string): Promise<Set<string>> {
  const names = new Set<string>();
  const normalize = (name: string) => name.toLowerCase().replace(/_/g, "-");
  for (const line of ((await readUntrustedText(path.join(appDir, "requirements.txt"))) ?? "").split("\n")) {
    const name = /^\s*([A-Za-z0-9][A-Za-z0-9._-]*)/.exec(line.replace(/#.*/, ""))?.[1];
    if (name) names.add(normalize(name));
  }
  // pyproject.toml: every quoted requirement string ("uvicorn[standard]>=0.30"); loose, but only membership is asked.
  const pyproject = (await readUntrustedText(path.join(appDir, "pyproject.toml"))) ?? "";
  for (const match of pyproject.matchAll(/["']([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?:[<>=!~;@][^"']*)?["']/g)) {
    names.add(normalize(match[1]!));
  }
  return names;
}

/** What a venv holds that serving needs. */
export interface InstalledServers {
  gunicorn: boolean;
  uvicorn: boolean;
  /** `uvicorn.workers` (deprecated by uvicorn 0.30, still shipped). */
  uvicornWorkers: boolean;
  /** The `uvicorn-worker` package (`uvicorn_worker.UvicornWorker`). */
  uvicornWorkerPackage: boolean;
}

export async function installedServers(appDir: string, venvName = "antenv"): Promise<InstalledServers> {
  const venv = path.join(appDir, venvName);
  const sitePackages = (await readdir(path.join(venv, "lib")).catch(() => [] as string[]))
    .filter((name) => name.startsWith("python"))
    .map((name) => path.join(venv, "lib", name, "site-packages"));
  const inSitePackages = async (relative: string) => (await Promise.all(sitePackages.map((dir) => exists(path.join(dir, relative))))).some(Boolean);
  return {
    gunicorn: await exists(path.join(venv, "bin", "gunicorn")),
    uvicorn: await exists(path.join(venv, "bin", "uvicorn")),
    uvicornWorkers: await inSitePackages(path.join("uvicorn", "workers.py")),
    uvicornWorkerPackage: await inSitePackages(path.join("uvicorn_worker", "__init__.py")),
  };
}

/** App Service's gunicorn settings; `GUNICORN_CMD_ARGS` (the app's, from its env) comes after them, so it wins. */
export const GUNICORN_DEFAULT_ARGS = "--timeout 600 --access-logfile '-' --error-logfile '-'";

/**
 * gunicorn on `$PORT`, with App Service's settings. They go in GUNICORN_CMD_ARGS ahead of the
 * app's own, because gunicorn lets its command line override GUNICORN_CMD_ARGS; only the bind
 * (and an ASGI worker class) are on the command line, as serving needs them. Workers come from
 * WEB_CONCURRENCY, which the runtime agent sets from PYTHON_GUNICORN_CUSTOM_WORKER_NUM or
 * PYTHON_ENABLE_GUNICORN_MULTIWORKERS.
 */
export function gunicornCommand(entry: PythonAppEntry, workerClass?: string): string {
  // gunicorn's own default variable is `application`: `mysite.wsgi` as Django's docs write it.
  const target = entry.variable === "application" && entry.framework === "Django" ? entry.module : `${entry.module}:${entry.variable}`;
  // A factory call (`app:create_app()`) is quoted: the shell would read its parentheses.
  return `GUNICORN_CMD_ARGS="${GUNICORN_DEFAULT_ARGS} $GUNICORN_CMD_ARGS" gunicorn --bind=127.0.0.1:$PORT${workerClass ? ` -k ${workerClass}` : ""} ${target.endsWith(")") ? `'${target}'` : target}`;
}

/** uvicorn on `$PORT`; its workers come from WEB_CONCURRENCY as well. */
export function uvicornCommand(entry: PythonAppEntry): string {
  return `uvicorn ${entry.module}:${entry.variable} --host 127.0.0.1 --port $PORT`;
}

/** A start command, or the package the venv lacks for one. */
export type ServerChoice = { command: string; server: "gunicorn" | "uvicorn" } | { install: "gunicorn" | "uvicorn" | "uvicorn-worker" };

/**
 * The server for `entry` given what the venv holds. WSGI: gunicorn. ASGI: gunicorn with uvicorn's
 * worker class when the app has gunicorn (its settings apply then), else uvicorn. When something
 * is missing, what to install next; the build installs it and asks again.
 */
export function chooseServer(entry: PythonAppEntry, installed: InstalledServers): ServerChoice {
  if (entry.protocol === "wsgi") return installed.gunicorn ? { command: gunicornCommand(entry), server: "gunicorn" } : { install: "gunicorn" };
  if (installed.gunicorn) {
    if (installed.uvicornWorkerPackage) return { command: gunicornCommand(entry, "uvicorn_worker.UvicornWorker"), server: "gunicorn" };
    if (installed.uvicorn && installed.uvicornWorkers) return { command: gunicornCommand(entry, "uvicorn.workers.UvicornWorker"), server: "gunicorn" };
    // A uvicorn without its workers module (a release past the deprecation) needs the separate package.
    return { install: installed.uvicorn ? "uvicorn-worker" : "uvicorn" };
  }
  return installed.uvicorn ? { command: uvicornCommand(entry), server: "uvicorn" } : { install: "uvicorn" };
}

/**
 * The runtime's detection (for releases whose manifest has no StartupCommand): the detected app
 * with a server its venv already holds, else `python <script>` for a script that may serve by
 * itself. Nothing is installed at runtime.
 */
export async function detectPythonStartCommand(appDir: string, venvName = "antenv"): Promise<string | undefined> {
  const entry = await detectPythonApp(appDir, venvName);
  if (entry) {
    const choice = chooseServer(entry, await installedServers(appDir, venvName));
    if ("command" in choice) return choice.command;
  }
  return pythonScriptCommand(appDir, entry);
}

/** `python <script>`: the detected app's file, else the first of app.py, application.py, main.py, server.py. */
export async function pythonScriptCommand(appDir: string, entry?: PythonAppEntry): Promise<string | undefined> {
  if (entry && !entry.file.includes(path.sep)) return `python ${entry.file}`;
  for (const script of ["app.py", "application.py", "main.py", "server.py"]) {
    if (await exists(path.join(appDir, script))) return `python ${script}`;
  }
  return undefined;
}
