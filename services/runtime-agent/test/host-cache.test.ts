import { mkdtemp, readFile, rm, stat, chmod, appendFile, writeFile, utimes, mkdir, readdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, freePort } from "@slipway/shared";
import { uniqueApp } from "../../../test/harness/env";
import { eventually } from "../../../test/harness/local-stack";
import { spawnAgent, startInProcessStack, uploadDir, waitForBuild, writeTree, type InProcessStack } from "../../../test/harness/stack";
import { HostCache } from "../src/host-cache";
import { treeFingerprint } from "../src/release-tree";

/**
 * Agents on one host (real processes, real Redis and MinIO) share one extraction per release
 * through HOST_CACHE_DIR, each instance's app seeing it through an overlay of its own (or, where
 * no sandbox mounts one, a hard-link copy of its own).
 */

// Serves static/data.txt; on /write reports what the app may change in its release directory.
const APP = `
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
root = os.environ["APP_PATH"]
def attempt(change):
    try:
        change()
        return "ok"
    except Exception as error:
        return type(error).__name__
def append(name):
    with open(os.path.join(root, name), "a") as f:
        f.write("changed by the app\\n")
def create(name):
    with open(os.path.join(root, name), "w") as f:
        f.write("mine\\n")
def replace(name):
    with open(os.path.join(root, name + ".new"), "w") as f:
        f.write("replaced\\n")
    os.replace(os.path.join(root, name + ".new"), os.path.join(root, name))
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/write":
            body = json.dumps({
                "append to a shipped file": attempt(lambda: append("app.py")),
                "append to a shipped nested file": attempt(lambda: append("static/data.txt")),
                "create a file": attempt(lambda: create("mine.txt")),
                "replace a shipped nested file": attempt(lambda: replace("static/data.txt")),
            }).encode()
        else:
            body = open(os.path.join(root, "static", "data.txt"), "rb").read()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;

const EXTRACTED = /"msg":"release extracted into the host cache"/g;
const extractions = (output: string) => output.match(EXTRACTED)?.length ?? 0;

let stack: InProcessStack;
let work: string;
const app = uniqueApp("hostcache");
let buildId: string;
const agents: ReturnType<typeof spawnAgent>[] = [];

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-host-cache-"));
  stack = await startInProcessStack();
  const dir = await writeTree(path.join(work, "src"), { "app.py": APP, "static/data.txt": "shipped\n" });
  const built = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir)).id);
  expect(built.status).toBe("succeeded");
  buildId = built.id;
}, 180_000);

afterAll(async () => {
  for (const agent of agents) agent.child.kill("SIGTERM");
  await Promise.all(agents.map((agent) => agent.exited));
  await stack.close();
  await rm(work, { recursive: true, force: true });
});

/** An agent on its own RUNTIME_ROOT, serving the release; answers its URL, release directory and output. */
async function serve(id: string, hostCache: string, extra: Record<string, string> = {}) {
  const port = await freePort();
  const agent = spawnAgent(stack, { APP: app, INSTANCE_ID: id, PORT: String(port), RUNTIME_ROOT: path.join(work, `rt-${id}`), HOST_CACHE_DIR: hostCache, LOG_LEVEL: "info", ...extra });
  agents.push(agent);
  const url = `http://127.0.0.1:${port}`;
  await eventually(async () => ((await fetch(url).then((r) => r.text(), () => "")) === "shipped\n" ? true : undefined), 120_000, `${id} serving\n${agent.output()}`);
  const report = await eventually(async () => (await stack.api.instances.list(app)).find((i) => i.instanceId === id && i.appPath), 30_000, `${id}'s report`);
  return { url, appPath: report.appPath!, output: agent.output };
}

describe("host cache", () => {
  const hostCache = () => path.join(work, "host-cache");
  const cached = (...parts: string[]) => path.join(hostCache(), app, buildId, ...parts);

  /**
   * What `one`'s app may change in its release directory: no shipped file in place, but files of
   * its own and replacements, which land in its own directory and nowhere else.
   */
  async function expectWritesKeptApart(one: Awaited<ReturnType<typeof serve>>, two: Awaited<ReturnType<typeof serve>>) {
    const outcomes = (await (await fetch(`${one.url}/write`)).json()) as Record<string, string>;
    expect(outcomes).toEqual({
      "append to a shipped file": "PermissionError",
      "append to a shipped nested file": "PermissionError",
      "create a file": "ok",
      "replace a shipped nested file": "ok",
    });
    expect(await (await fetch(one.url)).text()).toBe("replaced\n");
    expect(await (await fetch(two.url)).text()).toBe("shipped\n");
    expect(await readFile(cached("tree", "static", "data.txt"), "utf8")).toBe("shipped\n");
    expect(await readFile(cached("tree", "app.py"), "utf8")).toBe(APP);
    expect(await readFile(path.join(one.appPath, "mine.txt"), "utf8")).toBe("mine\n");
    await expect(stat(path.join(two.appPath, "mine.txt"))).rejects.toThrow(/ENOENT/);
    await expect(stat(cached("tree", "mine.txt"))).rejects.toThrow(/ENOENT/);
  }

  it("two agents on one host extract a release once; each serves it through its own overlay, nothing copied, and what one app writes the other never sees", async () => {
    const [one, two] = await Promise.all([serve("i-1", hostCache()), serve("i-2", hostCache())]);
    expect(extractions(one.output()) + extractions(two.output())).toBe(1);
    expect(one.appPath).not.toBe(two.appPath);
    // Each release directory is an overlay's upper directory over the cache's tree: the agent's
    // own files only, no copy of the release.
    for (const instance of [one, two]) {
      const marker = JSON.parse(await readFile(path.join(instance.appPath, ".slipway", "restored.json"), "utf8")) as { lower?: string };
      expect(marker.lower).toBe(cached("tree"));
      // The agent's files, and the venv files relocation rewrote; none of the shipped app.
      expect((await readdir(instance.appPath)).sort()).toEqual([".slipway", "antenv"]);
      expect((await readdir(path.join(instance.appPath, "antenv"), { recursive: true })).length).toBeLessThan((await readdir(cached("tree", "antenv"), { recursive: true })).length / 4);
    }
    expect((await stat(cached("tree", "app.py"))).uid).toBe(0);

    await expectWritesKeptApart(one, two);
  }, 300_000);

  it("with RELEASE_LAYOUT=copy each instance serves its own hard-linked copy of the cached tree, and what one app writes the other never sees", async () => {
    const copy = { RELEASE_LAYOUT: "copy" };
    const [one, two] = await Promise.all([serve("c-1", hostCache(), copy), serve("c-2", hostCache(), copy)]);
    // The same inode three times: the cache's, and each instance's link to it.
    const inode = (await stat(cached("tree", "app.py"))).ino;
    expect((await stat(path.join(one.appPath, "app.py"))).ino).toBe(inode);
    expect((await stat(path.join(two.appPath, "app.py"))).ino).toBe(inode);
    // The copy's directories are the instance's own, closed to others again.
    expect((await stat(path.join(one.appPath, "static"))).mode & 0o777).toBe(0o755);

    await expectWritesKeptApart(one, two);
  }, 300_000);

  const tampering: [string, () => Promise<void>][] = [
    [
      "a file changed in the cached tree",
      async () => {
        await chmod(cached("tree", "static", "data.txt"), 0o644);
        await appendFile(cached("tree", "static", "data.txt"), "tampered\n");
      },
    ],
    ["its marker removed", () => rm(cached("marker.json"))],
    [
      "a marker naming another sha256",
      async () => {
        const marker = JSON.parse(await readFile(cached("marker.json"), "utf8")) as Record<string, unknown>;
        await writeFile(cached("marker.json"), JSON.stringify({ ...marker, outputSha256: "0".repeat(64) }));
      },
    ],
  ];
  it.each(tampering.map(([what, tamper], index) => ({ what, tamper, index })))("a host cache entry with $what is refused and extracted again", async ({ tamper, index }) => {
    await tamper();
    const next = await serve(`i-t${index}`, hostCache());
    expect(extractions(next.output())).toBe(1);
    expect(await (await fetch(next.url)).text()).toBe("shipped\n");
    expect(await readFile(cached("tree", "static", "data.txt"), "utf8")).toBe("shipped\n");
  }, 300_000);
});

describe("host cache pruning", () => {
  const extract = async (into: string) => {
    await writeFile(path.join(into, "app.py"), "print('hi')\n");
    return { sealed: false, verifiedBy: "sha256" as const };
  };

  it("removes an entry once no instance's release directory links to it, and keeps one that is linked", async () => {
    const dir = path.join(work, "prune-cache");
    const cache = new HostCache(dir, createLogger("host-cache-test", "silent"));
    await mkdir(path.join(work, "instances"), { recursive: true });
    const copy = (buildId: string) => path.join(work, "instances", buildId);
    for (const id of ["build-kept", "build-unused"]) await cache.copyInto({ app: "pruned", buildId: id, outputSha256: null, extract }, copy(id));
    await rm(copy("build-unused"), { recursive: true });
    // Both were used just now: kept for a while, as a copy may be under way.
    expect(await cache.prune()).toEqual([]);
    const longAgo = new Date(Date.now() - 3600_000);
    for (const id of ["build-kept", "build-unused"]) await utimes(path.join(dir, "pruned", id, "marker.json"), longAgo, longAgo);
    expect(await cache.prune()).toEqual([path.join(dir, "pruned", "build-unused")]);
    expect((await readdir(path.join(dir, "pruned"))).filter((name) => !name.endsWith(".lock"))).toEqual(["build-kept"]);
    expect(await readFile(path.join(copy("build-kept"), "app.py"), "utf8")).toBe("print('hi')\n");
  });

  it("keeps an entry while a release directory that lies over it exists, and removes it once that is gone", async () => {
    const dir = path.join(work, "prune-leases");
    const cache = new HostCache(dir, createLogger("host-cache-test", "silent"));
    const release = (buildId: string) => path.join(work, "overlaid", buildId);
    for (const id of ["build-kept", "build-gone"]) {
      expect(await cache.lease({ app: "leased", buildId: id, outputSha256: null, extract }, release(id))).toBe(path.join(dir, "leased", id, "tree"));
      await mkdir(release(id), { recursive: true });
    }
    await rm(release("build-gone"), { recursive: true });
    expect(await cache.prune()).toEqual([]);
    const longAgo = new Date(Date.now() - 3600_000);
    for (const id of ["build-kept", "build-gone"]) await utimes(path.join(dir, "leased", id, "marker.json"), longAgo, longAgo);
    expect(await cache.prune()).toEqual([path.join(dir, "leased", "build-gone")]);
    expect(await readFile(path.join(dir, "leased", "build-kept", "tree", "app.py"), "utf8")).toBe("print('hi')\n");
    await rm(release("build-kept"), { recursive: true });
    expect(await cache.prune()).toEqual([path.join(dir, "leased", "build-kept")]);
  });
});

describe("host cache entries extracted already sealed", () => {
  it("are used at once, keep their lock until the marker is written, and are extracted again when left with no marker", async () => {
    const dir = path.join(work, "sealed-cache");
    const logger = createLogger("host-cache-test", "silent");
    let extractions = 0;
    const extract = async (into: string) => {
      extractions += 1;
      await writeFile(path.join(into, "app.py"), "print('hi')\n", { mode: 0o444 });
      await chmod(into, 0o777);
      return { sealed: true, verifiedBy: "chunks" as const };
    };
    const release = (name: string) => path.join(work, "sealed-releases", name);
    const sealedRelease = { app: "sealed", buildId: "build-1", outputSha256: null, extract };
    const first = new HostCache(dir, logger);
    const tree = await first.lease(sealedRelease, release("a"));
    // Another agent asking now waits for the lock the fingerprint holds, then takes the entry as it is.
    const second = new HostCache(dir, logger);
    expect(await second.lease(sealedRelease, release("b"))).toBe(tree);
    expect(extractions).toBe(1);
    await first.settled();
    const marker = JSON.parse(await readFile(path.join(dir, "sealed", "build-1", "marker.json"), "utf8")) as { fingerprint: string; verifiedBy: string };
    expect(marker.fingerprint).toBe(await treeFingerprint(tree));
    expect(marker.verifiedBy).toBe("chunks");
    // As an agent that died between placing the entry and writing its marker leaves it.
    await rm(path.join(dir, "sealed", "build-1", "marker.json"));
    expect(await second.lease(sealedRelease, release("c"))).toBe(tree);
    expect(extractions).toBe(2);
    await second.settled();
    expect(await readFile(path.join(tree, "app.py"), "utf8")).toBe("print('hi')\n");
  });
});
