import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chooseServer, dependencyNames, detectPythonApp, detectPythonStartCommand, type InstalledServers, type PythonAppEntry } from "../src/python-start";

let work: string;
let count = 0;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-python-start-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function tree(files: Record<string, string>): Promise<string> {
  const dir = path.join(work, `app-${count++}`);
  for (const [file, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), content);
  }
  await mkdir(dir, { recursive: true });
  return dir;
}

const flask = (variable = "app") => `from flask import Flask\n${variable} = Flask(__name__)\n`;
const django = (project: string, extra: Record<string, string> = {}) => ({
  "manage.py": `import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', '${project}.settings')\n`,
  [`${project}/__init__.py`]: "",
  [`${project}/settings.py`]: "SECRET_KEY = 'x'\n",
  [`${project}/wsgi.py`]: "from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n",
  [`${project}/asgi.py`]: "from django.core.asgi import get_asgi_application\napplication = get_asgi_application()\n",
  ...extra,
});

describe("Python app detection", () => {
  it("Flask: the first candidate file that creates the app, in Oryx's order, with its variable", async () => {
    const order = ["application.py", "app.py", "run.py", "index.py", "server.py", "wsgi.py", "main.py"];
    for (const [index, file] of order.entries()) {
      // Every later candidate also creates an app: the earlier one must win.
      const files = Object.fromEntries(order.slice(index).map((name, i) => [name, flask(i === 0 ? "server_app" : "other")]));
      expect(await detectPythonApp(await tree(files))).toEqual({ framework: "Flask", protocol: "wsgi", module: file.slice(0, -3), variable: "server_app", file });
    }
  });

  it("reads only top-level assignments: a factory's app inside a function is not one; annotations are", async () => {
    const dir = await tree({ "app.py": "from flask import Flask\ndef create():\n    app = Flask(__name__)\n    return app\n", "main.py": "import flask\napplication: flask.Flask = flask.Flask(__name__)\n" });
    expect(await detectPythonApp(dir)).toMatchObject({ framework: "Flask", module: "main", variable: "application" });
    expect(await detectPythonApp(await tree({ "app.py": "print('no app here')\n" }))).toBeUndefined();
  });

  it("FastAPI and Starlette: the module creating the ASGI app, before Flask's candidates", async () => {
    expect(await detectPythonApp(await tree({ "main.py": "from fastapi import FastAPI\napi = FastAPI(title='x')\n", "app.py": flask() }))).toEqual({
      framework: "FastAPI",
      protocol: "asgi",
      module: "main",
      variable: "api",
      file: "main.py",
    });
    expect(await detectPythonApp(await tree({ "server.py": "from starlette.applications import Starlette\napp = Starlette(routes=[])\n" }))).toMatchObject({
      framework: "Starlette",
      protocol: "asgi",
      module: "server",
      variable: "app",
    });
  });

  it("Django: the project directory holding wsgi.py, the one manage.py names when there are several; the venv is never a project", async () => {
    const dir = await tree({ ...django("mysite"), "aaa/wsgi.py": "application = None\n", "antenv/wsgi.py": "", "app.py": flask() });
    expect(await detectPythonApp(dir)).toEqual({ framework: "Django", protocol: "wsgi", module: "mysite.wsgi", variable: "application", file: path.join("mysite", "wsgi.py") });
    expect(await detectPythonApp(await tree({ "antenv/wsgi.py": "" }))).toBeUndefined();
  });

  it("Django: a project directory that is a link is not followed", async () => {
    const outside = await tree({ "wsgi.py": "application = None\n" });
    const dir = await tree({ "manage.py": "" });
    await symlink(outside, path.join(dir, "linked"));
    expect(await detectPythonApp(dir)).toBeUndefined();
  });

  it("Django: ASGI when the requirements name channels, daphne, uvicorn or hypercorn, or the settings set ASGI_APPLICATION", async () => {
    for (const requirements of ["channels==4.*\n", "uvicorn[standard]>=0.30\n", "daphne\n", "Hypercorn\n"]) {
      expect(await detectPythonApp(await tree(django("mysite", { "requirements.txt": `Django==5.1.*\n${requirements}` })))).toMatchObject({
        protocol: "asgi",
        module: "mysite.asgi",
        variable: "application",
      });
    }
    expect(await detectPythonApp(await tree(django("proj", { "pyproject.toml": '[project]\ndependencies = ["django>=5", "uvicorn[standard]"]\n' })))).toMatchObject({ protocol: "asgi" });
    expect(await detectPythonApp(await tree(django("proj", { "proj/settings.py": "ASGI_APPLICATION = 'proj.asgi.application'\n" })))).toMatchObject({ protocol: "asgi" });
    expect(await detectPythonApp(await tree(django("proj", { "requirements.txt": "Django\ngunicorn\n" })))).toMatchObject({ protocol: "wsgi", module: "proj.wsgi" });
  });

  it("a flat Django project (wsgi.py beside manage.py) is served through its wsgi.py", async () => {
    const dir = await tree({ "manage.py": "", "wsgi.py": "from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n" });
    expect(await detectPythonApp(dir)).toMatchObject({ framework: "Django", protocol: "wsgi", module: "wsgi", variable: "application" });
  });

  it("reads requirement names from requirements.txt and pyproject.toml", async () => {
    const dir = await tree({ "requirements.txt": "# c\nDjango_Filter==1 # x\n-r other.txt\nuvicorn[standard]>=1\n", "pyproject.toml": "dependencies = ['channels>=4']\n" });
    expect([...(await dependencyNames(dir))].sort()).toEqual(["channels", "django-filter", "uvicorn"]);
  });
});

describe("server choice", () => {
  const none: InstalledServers = { gunicorn: false, uvicorn: false, uvicornWorkers: false, uvicornWorkerPackage: false };
  const wsgi: PythonAppEntry = { framework: "Flask", protocol: "wsgi", module: "app", variable: "app", file: "app.py" };
  const asgi: PythonAppEntry = { framework: "FastAPI", protocol: "asgi", module: "main", variable: "app", file: "main.py" };
  const gunicorn = (rest: string) => `GUNICORN_CMD_ARGS="--timeout 600 --access-logfile '-' --error-logfile '-' $GUNICORN_CMD_ARGS" gunicorn --bind=127.0.0.1:$PORT ${rest}`;

  it("WSGI: gunicorn, installed when missing", () => {
    expect(chooseServer(wsgi, none)).toEqual({ install: "gunicorn" });
    expect(chooseServer(wsgi, { ...none, gunicorn: true })).toEqual({ server: "gunicorn", command: gunicorn("app:app") });
    const project: PythonAppEntry = { framework: "Django", protocol: "wsgi", module: "mysite.wsgi", variable: "application", file: "mysite/wsgi.py" };
    expect(chooseServer(project, { ...none, gunicorn: true })).toEqual({ server: "gunicorn", command: gunicorn("mysite.wsgi") });
  });

  it("ASGI: gunicorn with uvicorn's worker when the app has gunicorn, else uvicorn", () => {
    expect(chooseServer(asgi, none)).toEqual({ install: "uvicorn" });
    expect(chooseServer(asgi, { ...none, uvicorn: true, uvicornWorkers: true })).toEqual({ server: "uvicorn", command: "uvicorn main:app --host 127.0.0.1 --port $PORT" });
    expect(chooseServer(asgi, { ...none, gunicorn: true })).toEqual({ install: "uvicorn" });
    expect(chooseServer(asgi, { ...none, gunicorn: true, uvicorn: true, uvicornWorkers: true })).toEqual({ server: "gunicorn", command: gunicorn("-k uvicorn.workers.UvicornWorker main:app") });
    // A uvicorn past the deprecation of uvicorn.workers: the uvicorn-worker package.
    expect(chooseServer(asgi, { ...none, gunicorn: true, uvicorn: true })).toEqual({ install: "uvicorn-worker" });
    expect(chooseServer(asgi, { ...none, gunicorn: true, uvicorn: true, uvicornWorkerPackage: true })).toEqual({ server: "gunicorn", command: gunicorn("-k uvicorn_worker.UvicornWorker main:app") });
  });

  it("at runtime nothing is installed: without its server the app's script runs with python", async () => {
    const dir = await tree({ "app.py": flask() });
    expect(await detectPythonStartCommand(dir)).toBe("python app.py");
    await mkdir(path.join(dir, "antenv", "bin"), { recursive: true });
    await writeFile(path.join(dir, "antenv", "bin", "gunicorn"), "");
    expect(await detectPythonStartCommand(dir)).toBe(gunicorn("app:app"));
    expect(await detectPythonStartCommand(await tree({ "worker.py": "" }))).toBeUndefined();
  });
});
