import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniqueApp } from "../harness/env";
import { eventually, startLocalStack, type LocalStack } from "../harness/local-stack";
import { uploadDir, waitForBuild } from "../harness/stack";
import { buildWheel } from "../harness/wheels";

let work: string;
let wheels: string;
let stack: LocalStack;

const appPy = (version: string) => `
import json, os, subprocess
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        tool = subprocess.run(["hello-tool"], capture_output=True, text=True).stdout.strip()
        body = json.dumps({"version": "${version}", "tool": tool, "appPath": os.environ["APP_PATH"],
                           "virtualEnv": os.environ["VIRTUAL_ENV"], "cwd": os.getcwd()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
`;

async function writeApp(version: string): Promise<string> {
  const dir = path.join(work, `app-${version}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "app.py"), appPy(version));
  await writeFile(path.join(dir, "requirements.txt"), "hello-tool==1.0\n");
  return dir;
}

interface AppAnswer {
  version: string;
  tool: string;
  appPath: string;
  virtualEnv: string;
  cwd: string;
}

const answerOf = async (url: string) => {
  const response = await fetch(url);
  return response.ok ? ((await response.json()) as AppAnswer) : undefined;
};

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-e2e-"));
  wheels = path.join(work, "wheels");
  await mkdir(wheels);
  buildWheel(wheels, { name: "hello-tool", version: "1.0", script: "hello-tool", message: "hello from the console script" });
  // Open on loopback (API_INSECURE=1): this test is about the app, not the token (test/security/api-token).
  stack = await startLocalStack(uniqueApp("e2e"), { env: { PIP_FIND_LINKS: wheels, PIP_NO_INDEX: "1", API_INSECURE: "1" } });
}, 90_000);

afterAll(async () => {
  const code = await stack?.stop();
  expect(code).toBe(0);
  await rm(work, { recursive: true, force: true });
});

describe("a Python app from REST upload to two serving instances", () => {
  it("serves v1 on both instances from a relocated venv, then switches both to v2", async () => {
    const build = await waitForBuild(stack.apiUrl, (await uploadDir(stack.apiUrl, stack.app, await writeApp("v1"))).id);
    expect(build).toMatchObject({ status: "succeeded", release: 1 });
    const buildDir = path.join(stack.env.SCRATCH_DIR!, build.id);

    for (const url of stack.instanceUrls) {
      const answer = await eventually(async () => {
        const a = await answerOf(url);
        return a?.version === "v1" ? a : undefined;
      }, 60_000, `v1 on ${url}`);
      // The console script installed by pip runs from the restored venv (the build dir is gone).
      expect(answer.tool).toBe("hello from the console script");
      expect(existsSync(buildDir)).toBe(false);
      expect(answer.appPath.startsWith(stack.dataDir)).toBe(true);
      expect(answer.virtualEnv).toBe(path.join(answer.appPath, "antenv"));
      expect(answer.cwd).toBe(answer.appPath);
      const activate = await readFile(path.join(answer.appPath, "antenv/bin/activate"), "utf8");
      expect(activate).toContain(`VIRTUAL_ENV="${answer.virtualEnv}"`);
      expect(activate).not.toContain(buildDir);
    }
    const paths = await Promise.all(stack.instanceUrls.map(async (url) => (await answerOf(url))!.appPath));
    expect(new Set(paths).size).toBe(2); // one local copy per instance

    const instances = await eventually(async () => {
      const list = (await (await fetch(`${stack.apiUrl}/v1/apps/${stack.app}/instances`)).json()) as { state: string; release: number }[];
      return list.length === 2 && list.every((i) => i.state === "running" && i.release === 1) ? list : undefined;
    }, 20_000, "both instances reported running release 1");
    expect(instances).toHaveLength(2);

    const v2 = await waitForBuild(stack.apiUrl, (await uploadDir(stack.apiUrl, stack.app, await writeApp("v2"))).id);
    expect(v2).toMatchObject({ status: "succeeded", release: 2 });
    for (const url of stack.instanceUrls) {
      const answer = await eventually(async () => {
        const a = await answerOf(url);
        return a?.version === "v2" ? a : undefined;
      }, 60_000, `v2 on ${url}`);
      expect(answer.tool).toBe("hello from the console script");
      expect(answer.appPath).not.toBe(paths[0]);
    }
    const releases = (await (await fetch(`${stack.apiUrl}/v1/apps/${stack.app}/releases`)).json()) as { version: number }[];
    expect(releases.map((r) => r.version)).toEqual([2, 1]);
    await eventually(async () => {
      const list = (await (await fetch(`${stack.apiUrl}/v1/apps/${stack.app}/instances`)).json()) as { state: string; release: number }[];
      return list.every((i) => i.state === "running" && i.release === 2) ? true : undefined;
    }, 20_000, "both instances reported running release 2");
  });

  it("answers at its URL on npm start's front door, as a user's curl asks for it", async () => {
    const url = `http://${stack.app}.localhost:${stack.frontDoorPort}/`;
    expect(await (await fetch(`${stack.apiUrl}/v1/apps/${stack.app}`)).json()).toMatchObject({ url });
    expect(stack.output()).toContain(`front door   http://${stack.app}.localhost:${stack.frontDoorPort}/`);
    const answer = await eventually(async () => {
      try {
        const body = execFileSync("curl", ["-sS", "--fail", "--max-time", "5", url], { encoding: "utf8" });
        return JSON.parse(body) as AppAnswer;
      } catch {
        return undefined;
      }
    }, 30_000, `an answer at ${url}`);
    expect(answer.version).toBe("v2");
  });
});
