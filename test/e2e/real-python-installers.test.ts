import { writeFile } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parseManifest, storageKeys } from "@slipway/shared";
import { uniqueApp } from "../harness/env";
import { eventually } from "../harness/local-stack";
import { installerTools, lockWith, type LockTools } from "../harness/python-locks";
import { useStack } from "../harness/use-stack";

/**
 * Projects made the way their tools make them (`poetry new`, `uv init`), with Flask and gunicorn
 * added and locked from the real package index, built (sandboxed, the installers from the tool
 * cache) and served by a real agent.
 */
const { stack, work, deploy, serve } = useStack("real-installers");
let tools: LockTools;

beforeAll(async () => {
  tools = await installerTools(stack.env);
}, 600_000);

/** The host's trust store for the tools' own downloads (pip's requests and uv would use their bundled roots). */
const TLS = { REQUESTS_CA_BUNDLE: "/etc/ssl/certs/ca-certificates.crt", UV_SYSTEM_CERTS: "1" };

const flaskModule = (name: string) =>
  [
    "import os",
    "from flask import Flask, jsonify",
    "",
    "app = Flask(__name__)",
    "",
    "@app.get('/')",
    "def index():",
    `    return jsonify(message='hello from ${name}', uid=os.getuid(), venv=os.environ.get('VIRTUAL_ENV'))`,
    "",
  ].join("\n");

async function deployAndServe(app: string, dir: string) {
  const { build, log } = await deploy(app, dir, 400_000);
  expect(build.error, log).toBeUndefined();
  const manifest = parseManifest(await stack.api.store.getText(storageKeys.manifest(app, build.id)));
  const { url } = await serve(app);
  const answer = await eventually(async () => {
    const response = await fetch(`${url}/`).catch(() => undefined);
    return response?.ok ? { server: response.headers.get("server"), body: (await response.json()) as { message: string; uid: number; venv: string } } : undefined;
  }, 120_000, `${app} to answer`);
  return { log, manifest, ...answer };
}

describe("real projects locked by their own tools build and serve", () => {
  it("a Poetry project (poetry new, poetry add flask gunicorn): locked main dependencies, then the package itself", async () => {
    const app = uniqueApp("poetry");
    await lockWith(tools.poetryPython, ["-m", "poetry", "new", "flask-poetry"], work);
    const dir = path.join(work, "flask-poetry");
    // This workplace's route to the package index serves its simple API but not the JSON API Poetry
    // reads for PyPI: the project names PyPI's simple API as its source, as for any mirror.
    await lockWith(tools.poetryPython, ["-m", "poetry", "source", "add", "--priority=primary", "pypi-simple", "https://pypi.org/simple/"], dir);
    await lockWith(tools.poetryPython, ["-m", "poetry", "add", "--lock", "flask>=3.1,<4", "gunicorn>=23"], dir, TLS);
    await writeFile(path.join(dir, "src", "flask_poetry", "app.py"), flaskModule("poetry"));
    await writeFile(path.join(dir, "Procfile"), "web: gunicorn --bind=127.0.0.1:$PORT flask_poetry.app:app\n");

    const { log, manifest, server, body } = await deployAndServe(app, dir);
    expect(log).toContain("Installing dependencies from poetry.lock with Poetry");
    expect(log).toContain("Installing the project itself, not editable (pip install --no-deps .) ...");
    expect(manifest.frameworks).toEqual(["Flask"]);
    expect(server).toMatch(/gunicorn/i);
    expect(body.message).toBe("hello from poetry");
    expect(body.uid).not.toBe(0);
    expect(body.venv).toMatch(/\/antenv$/);
  }, 600_000);

  it("a uv project (uv init, uv add flask gunicorn): uv sync from uv.lock, then the package itself", async () => {
    const app = uniqueApp("uv");
    await lockWith(tools.uv, ["init", "--vcs", "none", "flask-uv"], work, { UV_PYTHON_DOWNLOADS: "never" });
    const dir = path.join(work, "flask-uv");
    await lockWith(tools.uv, ["add", "--no-sync", "flask>=3.1,<4", "gunicorn>=23"], dir, { ...TLS, UV_PYTHON_DOWNLOADS: "never" });
    await writeFile(path.join(dir, "src", "flask_uv", "app.py"), flaskModule("uv"));
    await writeFile(path.join(dir, "Procfile"), "web: gunicorn --bind=127.0.0.1:$PORT flask_uv.app:app\n");

    const { log, manifest, server, body } = await deployAndServe(app, dir);
    expect(log).toMatch(/Using Python 3\.\d+\.\d+ \(.*\) for \.python-version/);
    expect(log).toContain("Installing dependencies from uv.lock with uv");
    expect(log).toContain("Installing the project itself, not editable (uv sync --no-editable) ...");
    expect(manifest.frameworks).toEqual(["Flask"]);
    expect(server).toMatch(/gunicorn/i);
    expect(body.message).toBe("hello from uv");
    expect(body.uid).not.toBe(0);
  }, 600_000);
});
