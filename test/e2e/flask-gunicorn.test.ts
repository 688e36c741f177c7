import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniqueApp } from "../harness/env";
import { eventually, startLocalStack, type LocalStack } from "../harness/local-stack";
import { uploadDir, waitForBuild } from "../harness/stack";

let work: string;
let stack: LocalStack;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-flask-"));
  // Open on loopback (API_INSECURE=1): this test is about the app, not the token (test/security/api-token).
  stack = await startLocalStack(uniqueApp("flask"), { instances: 1, env: { API_INSECURE: "1" } });
}, 90_000);

afterAll(async () => {
  await stack?.stop();
  await rm(work, { recursive: true, force: true });
});

describe("a real Flask app, installed from the package index", () => {
  it("builds with pip, and the runtime serves it with gunicorn from the relocated venv", async () => {
    const dir = path.join(work, "flask-app");
    await mkdir(dir);
    await writeFile(
      path.join(dir, "app.py"),
      [
        "import os",
        "from flask import Flask, jsonify",
        "",
        "app = Flask(__name__)",
        "",
        "@app.get('/')",
        "def index():",
        "    return jsonify(message='hello from flask', app_path=os.environ['APP_PATH'])",
        "",
      ].join("\n"),
    );
    await writeFile(path.join(dir, "requirements.txt"), "flask==3.1.*\ngunicorn==23.*\n");

    const build = await waitForBuild(stack.apiUrl, (await uploadDir(stack.apiUrl, stack.app, dir)).id, 240_000);
    expect(build.error).toBeUndefined();
    expect(build).toMatchObject({ status: "succeeded", release: 1, platform: "python" });

    expect(build.manifestKey).toMatch(/oryx-manifest\.toml$/);
    const { server, body } = await eventually(async () => {
      const response = await fetch(stack.instanceUrls[0]!);
      if (!response.ok) return undefined;
      return { server: response.headers.get("server"), body: (await response.json()) as { message: string; app_path: string } };
    }, 90_000, "the Flask app to answer");
    expect(server).toMatch(/gunicorn/i);
    expect(body.message).toBe("hello from flask");
    expect(body.app_path.startsWith(stack.dataDir)).toBe(true);
  }, 300_000);
});
