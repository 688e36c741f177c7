import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxUid } from "@slipway/shared/sandbox";
import { storageKeys } from "@slipway/shared";
import { uniqueApp } from "../harness/env";
import { parseProbe, PROBE_SOURCE } from "./probe";
import { processRunning, spawnWorker, startInProcessStack, uploadDir, waitForBuild, writeTree, type InProcessStack } from "../harness/stack";

/**
 * Each attack a hostile build tried, run as a real build by a real worker process whose own
 * environment holds the platform's secrets, and shown to fail with its target unchanged.
 */
const API_TOKEN = `api-token-${Math.random().toString(36).slice(2)}`;

let stack: InProcessStack;
let worker: ReturnType<typeof spawnWorker>;
let work: string;
let victim: { dir: string; file: string; content: string };

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-security-"));
  stack = await startInProcessStack({ API_TOKEN }, { worker: false });
  worker = spawnWorker(stack, { API_TOKEN });
  // Stands for everything of the host a build must not touch: another build's tree, a runtime root.
  victim = { dir: path.join(stack.env.SCRATCH_DIR!, "another-build"), file: "", content: "another build's file\n" };
  await mkdir(victim.dir, { recursive: true });
  victim.file = path.join(victim.dir, "app.py");
  await writeFile(victim.file, victim.content);
});

afterAll(async () => {
  worker?.kill("SIGKILL");
  await stack.close();
  await rm(work, { recursive: true, force: true });
});

const auth = { Authorization: `Bearer ${API_TOKEN}` };

async function build(files: Record<string, string>, buildEnv: Record<string, string>) {
  const app = uniqueApp("sec");
  await fetch(`${stack.baseUrl}/v1/apps/${app}`, { method: "PUT", headers: { ...auth, "Content-Type": "application/json" }, body: JSON.stringify({ buildEnv }) });
  const dir = await writeTree(path.join(work, app), files);
  const queued = await upload(app, dir);
  return { app, queued };
}

async function upload(app: string, dir: string) {
  const { packDirectory } = await import("@slipway/shared");
  const packed = await packDirectory(dir, path.join(work, `${app}.tar.gz`));
  const response = await fetch(`${stack.baseUrl}/v1/apps/${app}/builds`, { method: "POST", headers: { ...auth, "Content-Type": "application/gzip" }, body: await readFile(packed.file) });
  expect(response.status).toBe(202);
  return (await response.json()) as { id: string };
}

async function finished(id: string) {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const response = await fetch(`${stack.baseUrl}/v1/builds/${id}`, { headers: auth });
    const build = (await response.json()) as { id: string; status: string; error?: string };
    if (["succeeded", "failed", "canceled"].includes(build.status)) return build;
    if (Date.now() > deadline) throw new Error(`build ${id} still ${build.status}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const logOf = (id: string) => fetch(`${stack.baseUrl}/v1/builds/${id}/logs`, { headers: auth }).then((r) => r.text());


function hostAddresses(): string[] {
  return Object.values(os.networkInterfaces())
    .flat()
    .filter((a) => a && a.family === "IPv4")
    .map((a) => a!.address);
}

describe("build sandbox", () => {
  it("a build reads no platform secret, reaches neither Redis, storage nor the API, and touches nothing of the host", async () => {
    const ports = [new URL(stack.env.REDIS_URL!).port, new URL(stack.env.S3_ENDPOINT!).port, new URL(stack.baseUrl).port];
    const hosts = [...new Set(["127.0.0.1", "10.0.2.2", ...hostAddresses()])];
    const { queued } = await build(
      { "probe.py": PROBE_SOURCE, "app.py": "" },
      {
        PRE_BUILD_COMMAND: "python3 probe.py",
        PROBE_CONNECT: hosts.flatMap((host) => ports.map((port) => `${host}:${port}`)).join(" "),
        PROBE_WRITE: [victim.file, path.join(victim.dir, "new.txt"), "/etc/passwd", "/usr/bin/python3"].join(" "),
        PROBE_READ: [victim.file, "/etc/shadow", "/root/.bashrc", "/proc/1/environ"].join(" "),
      },
    );
    const result = await finished(queued.id);
    expect(result.error).toBeUndefined();
    const log = await logOf(queued.id);
    const probe = parseProbe(log);

    // Its own unprivileged uid, derived from the build, and only its own processes in sight.
    expect(probe.uid).toBe(sandboxUid("build", queued.id, 200_000));
    expect(probe.uid).not.toBe(process.getuid!());
    expect(probe.pids.length).toBeLessThan(6);
    // (The access key is a user name, often a plain word; the secret is what must not leak.)
    for (const secret of [stack.env.S3_SECRET_KEY!, API_TOKEN, stack.env.REDIS_URL!]) {
      expect(log).not.toContain(secret);
      expect(probe.environ).not.toContain(secret);
    }
    for (const [target, outcome] of Object.entries(probe.connect)) expect(outcome, target).not.toMatch(/^connected/);
    for (const [file, outcome] of Object.entries(probe.write)) expect(outcome, file).not.toBe("written");
    for (const [file, outcome] of Object.entries(probe.read)) expect(outcome, file).not.toBe("read");
    expect(await readFile(victim.file, "utf8")).toBe(victim.content);
    expect(existsSync(path.join(victim.dir, "new.txt"))).toBe(false);
  });

  it("build options never reach what the worker runs on its host: a PATH or NODE_OPTIONS of the app's runs nothing outside the sandbox", async () => {
    // Stands for a path an attacker learnt on the worker's host: only a host-side run could use it.
    const evil = path.join(work, "evil");
    const pwned = path.join(evil, "pwned");
    await mkdir(path.join(evil, "bin"), { recursive: true });
    await writeFile(path.join(evil, "evil.js"), `require("fs").writeFileSync(${JSON.stringify(pwned)}, "node ran evil.js")\n`);
    for (const tool of ["node", "npm", "python3"]) {
      await writeFile(path.join(evil, "bin", tool), `#!/bin/sh\necho "${tool} from PATH" > '${pwned}'\nexec /usr/bin/${tool} "$@"\n`, { mode: 0o755 });
    }
    const { queued } = await build(
      { "package.json": JSON.stringify({ name: "evil", version: "1.0.0", engines: { node: ">=18" } }), "server.js": "" },
      { PATH: `${path.join(evil, "bin")}:/usr/bin:/bin`, NODE_OPTIONS: `--require ${path.join(evil, "evil.js")}`, LD_PRELOAD: path.join(evil, "nothing.so") },
    );
    await finished(queued.id);
    expect(existsSync(pwned), existsSync(pwned) ? await readFile(pwned, "utf8") : "").toBe(false);
  });

  it("still reaches the package index: pip installs from it inside the sandbox", async () => {
    const { queued } = await build({ "app.py": "import six\n", "requirements.txt": "six==1.16.0\n" }, { PYTHON_INSTALLER: "pip" });
    const result = await finished(queued.id);
    expect(result.error).toBeUndefined();
    expect(await logOf(queued.id)).toMatch(/Successfully installed six-1\.16\.0/);
  });

  it("still reaches the package index: uv (requirements files' default installer) installs from it inside the sandbox", async () => {
    const { queued } = await build({ "app.py": "import six\n", "requirements.txt": "six==1.16.0\n" }, {});
    const result = await finished(queued.id);
    expect(result.error).toBeUndefined();
    const log = await logOf(queued.id);
    expect(log).toMatch(/^ \+ six==1\.16\.0$/m);
    expect(log).not.toContain("uv could not install");
  });

  it("nothing a build starts outlives it: a double-forked setsid child is gone when the build succeeds", async () => {
    const marker = `slipway-survivor-${Math.random().toString(36).slice(2)}`;
    const { queued } = await build({ "app.py": "" }, { PRE_BUILD_COMMAND: `setsid sh -c 'sleep 600; echo ${marker}' > /dev/null 2>&1 < /dev/null & echo started-${marker}` });
    const result = await finished(queued.id);
    expect(result.status).toBe("succeeded");
    expect(await logOf(queued.id)).toContain(`started-${marker}`);
    expect(processRunning(marker)).toBe(false);
  });

  it("nothing a build starts outlives a cancel", async () => {
    const marker = `slipway-canceled-${Math.random().toString(36).slice(2)}`;
    const { queued } = await build({ "app.py": "" }, { PRE_BUILD_COMMAND: `setsid sh -c 'sleep 600; echo ${marker}' > /dev/null 2>&1 < /dev/null & echo started-${marker}; sleep 600` });
    const deadline = Date.now() + 60_000;
    while (!processRunning(marker)) {
      if (Date.now() > deadline) throw new Error(`the build never started its child:\n${await logOf(queued.id)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await fetch(`${stack.baseUrl}/v1/builds/${queued.id}/cancel`, { method: "POST", headers: auth })).status).toBe(202);
    expect((await finished(queued.id)).status).toBe("canceled");
    const gone = Date.now() + 10_000;
    while (processRunning(marker) && Date.now() < gone) await new Promise((r) => setTimeout(r, 100));
    expect(processRunning(marker)).toBe(false);
  });
});

describe("build limits", () => {
  let limited: InProcessStack;
  beforeAll(async () => {
    limited = await startInProcessStack({ BUILD_MAX_PROCESSES: "64", BUILD_MEMORY_MB: "128" });
  });
  afterAll(async () => {
    await limited?.close();
  });

  async function limitedBuild(command: string) {
    const app = uniqueApp("limits");
    await limited.api.apps.upsert(app, { buildEnv: { PRE_BUILD_COMMAND: command } });
    const dir = await writeTree(path.join(work, app), { "app.py": "" });
    const built = await waitForBuild(limited.baseUrl, (await uploadDir(limited.baseUrl, app, dir)).id);
    return { built, log: await limited.api.store.getText(storageKeys.buildLog(app, built.id)) };
  }

  it("a fork bomb fails its build with the process limit as the reason, and the worker builds the next one", async () => {
    const { built } = await limitedBuild("bomb() { bomb | bomb & }; bomb; sleep 3");
    expect(built.status).toBe("failed");
    expect(built.error).toMatch(/PRE_BUILD_COMMAND failed: too many processes \(limit 64\)/);
    const { built: next } = await limitedBuild("echo fine");
    expect(next.status).toBe("succeeded");
  });

  it("a memory hog fails its build as out of memory", async () => {
    const { built } = await limitedBuild(`python3 -c "b = bytearray(768 * 1024 * 1024); print(len(b))"`);
    expect(built.status).toBe("failed");
    expect(built.error).toMatch(/PRE_BUILD_COMMAND failed: out of memory \(limit 128 MiB\)/);
  });
});
