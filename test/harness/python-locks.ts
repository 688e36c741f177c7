import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { loadWorkerConfig } from "@slipway/shared";
import { findPythons, writeSandboxResolvConf } from "@slipway/shared/sandbox";
import { pipenvTool, poetryTool, uvTool } from "../../services/build-worker/src/platforms/python-installers";
import { ToolCache } from "../../services/build-worker/src/tools";
import { listen } from "./http";

/**
 * Lock files made by the real uv, Poetry and Pipenv, the very versions builds use (from the
 * worker's tool cache, installed from the package index on first use), so tests deploy locks as
 * users make them. Run on the host, as a developer's machine would.
 */
export interface LockTools {
  uv: string;
  /** The Python of Poetry's and Pipenv's venvs: run as `<python> -m poetry`. */
  poetryPython: string;
  pipenvPython: string;
}

export async function installerTools(env: Record<string, string>): Promise<LockTools> {
  const config = loadWorkerConfig(env);
  const tools = new ToolCache(config, await writeSandboxResolvConf(os.tmpdir()));
  const base = (await findPythons()).default!;
  const signal = new AbortController().signal;
  const [uv, poetry, pipenv] = await Promise.all([uvTool(base), poetryTool(base), pipenvTool(base)].map((spec) => tools.ensure(spec, () => undefined, signal)));
  return { uv: path.join(uv!, "bin", "uv"), poetryPython: path.join(poetry!, "bin", "python"), pipenvPython: path.join(pipenv!, "bin", "python") };
}

/** Runs a locking command in `cwd` with a throwaway home; rejects with its output. */
export async function lockWith(command: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<string> {
  const home = await mkdtemp(path.join(os.tmpdir(), "slipway-lock-home-"));
  try {
    return await new Promise<string>((resolve, reject) =>
      execFile(
        command,
        args,
        { cwd, timeout: 300_000, maxBuffer: 16 * 1024 * 1024, env: { PATH: process.env.PATH!, HOME: home, LANG: "C.UTF-8", ...env } },
        (error, stdout, stderr) => (error ? reject(new Error(`${path.basename(command)} ${args.join(" ")} failed: ${stderr || stdout}`)) : resolve(stdout)),
      ),
    );
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/**
 * A PEP 503 simple index of the wheels in `dir` on loopback, for Poetry and Pipenv, which lock only
 * against an index (uv locks against the directory itself). Builds never reach it: they install
 * the locked wheels from PIP_FIND_LINKS.
 */
export async function serveSimpleIndex(dir: string): Promise<{ url: string; close: () => Promise<void> }> {
  const normalize = (name: string) => name.toLowerCase().replace(/[-_.]+/g, "-");
  return listen(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const files = (await readdir(dir)).filter((f) => f.endsWith(".whl") || f.endsWith(".tar.gz"));
    const project = /^\/simple\/([^/]+)\/?$/.exec(url.pathname)?.[1];
    if (url.pathname === "/simple/" || url.pathname === "/simple") {
      const names = [...new Set(files.map((f) => normalize(f.split("-")[0]!)))];
      res.setHeader("Content-Type", "text/html");
      return res.end(names.map((n) => `<a href="/simple/${n}/">${n}</a>`).join("\n"));
    }
    if (project) {
      const links = await Promise.all(
        files
          .filter((f) => normalize(f.split("-")[0]!) === normalize(project))
          .map(async (f) => `<a href="/files/${f}#sha256=${createHash("sha256").update(await readFile(path.join(dir, f))).digest("hex")}">${f}</a>`),
      );
      if (!links.length) return res.writeHead(404).end();
      res.setHeader("Content-Type", "text/html");
      return res.end(`<!DOCTYPE html><html><body>\n${links.join("\n")}\n</body></html>`);
    }
    const file = /^\/files\/([^/]+)$/.exec(url.pathname)?.[1];
    if (file && files.includes(file)) return res.end(await readFile(path.join(dir, file)));
    res.writeHead(404).end();
  });
}
