import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, freePort, loadAgentConfig, recordKeys, type AppLogEntry } from "@slipway/shared";
import { uniqueApp } from "../../../test/harness/env";
import { eventually } from "../../../test/harness/local-stack";
import { logTail, startInProcessStack, uploadDir, waitForBuild, writeTree, type InProcessStack } from "../../../test/harness/stack";
import { RuntimeAgent } from "../src/agent";

let stack: InProcessStack;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-app-logs-"));
  stack = await startInProcessStack();
});
afterAll(async () => {
  await stack.close();
  await rm(work, { recursive: true, force: true });
});

/** Prints a line to each stream at start, `said <word>` on /say/<word>, and floods stdout on /flood/<n> (/flooded tells when done). */
const chattyApp = `
import os, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
print("hello from stdout", flush=True)
print("hello from stderr", file=sys.stderr, flush=True)
done = threading.Event()
def flood(n):
    for i in range(n):
        sys.stdout.write(f"flood line {i} " + "x" * 40 + "\\n")
    sys.stdout.flush()
    done.set()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok"
        if self.path.startswith("/say/"):
            print("said " + self.path[5:], flush=True)
        elif self.path.startswith("/flood/"):
            threading.Thread(target=flood, args=(int(self.path[7:]),), daemon=True).start()
        elif self.path == "/flooded":
            body = b"yes" if done.is_set() else b"no"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;

async function deploy(app: string): Promise<void> {
  const dir = await writeTree(path.join(work, `${app}-${Date.now()}`), { "app.py": chattyApp });
  const build = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir)).id);
  if (build.error) throw new Error(`build ${build.id} failed: ${build.error}${await logTail(stack.baseUrl, build.id)}`);
}

async function startAgent(app: string, extra: Record<string, string> = {}) {
  const port = await freePort();
  const instanceId = `i-${port}`;
  const config = loadAgentConfig({ ...stack.env, APP: app, INSTANCE_ID: instanceId, PORT: String(port), RUNTIME_ROOT: path.join(work, `${app}-runtime-${port}`), HEALTH_TIMEOUT_S: "20", ...extra });
  const agent = new RuntimeAgent(config, stack.api.redis, stack.api.store, createLogger("agent", "silent"));
  await agent.start();
  const url = `http://127.0.0.1:${port}`;
  await eventually(async () => ((await fetch(url).catch(() => undefined))?.ok ? true : undefined), 60_000, `${instanceId} to serve`);
  return { agent, url, instanceId };
}

const logsUrl = (app: string, query = "") => `${stack.baseUrl}/v1/apps/${app}/logs${query}`;
const jsonLogs = async (app: string, query = "") => (await (await fetch(logsUrl(app, query), { headers: { Accept: "application/json" } })).json()) as AppLogEntry[];

interface ServerSentEvent {
  id?: string;
  data: string;
}

/** Reads Server-Sent Events from `response` until `enough` says so; then closes the connection. */
async function readEvents(response: Response, enough: (events: ServerSentEvent[]) => boolean, timeoutMs = 30_000): Promise<ServerSentEvent[]> {
  const events: ServerSentEvent[] = [];
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const timer = setTimeout(() => void reader.cancel(), timeoutMs);
  let buffer = "";
  try {
    while (!enough(events)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the event stream ended (or timed out) after ${events.length} events: ${JSON.stringify(events.slice(-3))}`);
      buffer += decoder.decode(value, { stream: true });
      let boundary: number;
      while ((boundary = buffer.indexOf("\n\n")) !== -1) {
        const block = buffer.slice(0, boundary).split("\n");
        buffer = buffer.slice(boundary + 2);
        const id = block.find((l) => l.startsWith("id: "))?.slice(4);
        const data = block.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
        if (data) events.push({ ...(id ? { id } : {}), data });
      }
    }
    return events;
  } finally {
    clearTimeout(timer);
    await reader.cancel().catch(() => undefined);
  }
}
const lineOf = (event: ServerSentEvent) => (JSON.parse(event.data) as AppLogEntry).line;

describe("app logs", () => {
  it("collects stdout, stderr and lifecycle lines of two instances; text, JSON, instance filter and a live, resumable follow", async () => {
    const app = uniqueApp("logs");
    await deploy(app);
    const a = await startAgent(app);
    const b = await startAgent(app);
    try {
      const text = await eventually(async () => {
        const body = await (await fetch(logsUrl(app))).text();
        return [a, b].every(({ instanceId }) => body.includes(`${instanceId} stdout: hello from stdout`) && body.includes(`${instanceId} stderr: hello from stderr`)) ? body : undefined;
      }, 15_000, "both instances' output in the log");
      expect(text).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z i-\d+ (stdout|stderr|system): /m);

      const onlyA = await jsonLogs(app, `?instance=${a.instanceId}`);
      expect(onlyA.length).toBeGreaterThan(0);
      expect(onlyA.every((entry) => entry.instanceId === a.instanceId)).toBe(true);
      expect(onlyA).toContainEqual(expect.objectContaining({ stream: "stdout", line: "hello from stdout", release: 1 }));
      expect(onlyA).toContainEqual(expect.objectContaining({ stream: "stderr", line: "hello from stderr", release: 1 }));
      const system = onlyA.filter((entry) => entry.stream === "system").map((entry) => entry.line);
      expect(system).toEqual(
        expect.arrayContaining([expect.stringMatching(/^restoring v1 /), expect.stringMatching(/^starting v1 on port \d+: /), "v1 passed its health check (/)", "traffic switched to v1"]),
      );
      expect(await jsonLogs(app, "?limit=2")).toHaveLength(2);

      // A live follow of instance A: a line printed after the follow began arrives.
      const follow = await fetch(logsUrl(app, `?instance=${a.instanceId}&limit=1`), { headers: { Accept: "text/event-stream" } });
      expect(follow.headers.get("content-type")).toMatch(/^text\/event-stream/);
      let said = false;
      const live = await readEvents(follow, (events) => {
        if (events.length > 0 && !said) {
          said = true;
          void fetch(`${a.url}/say/first`);
          void fetch(`${b.url}/say/from-b`);
        }
        return events.some((event) => lineOf(event) === "said first");
      });
      expect(live.every((event) => (JSON.parse(event.data) as AppLogEntry).instanceId === a.instanceId)).toBe(true);
      const resumeFrom = live.find((event) => lineOf(event) === "said first")!.id!;

      // Resumed with Last-Event-ID: what came since, nothing twice.
      await fetch(`${a.url}/say/second`);
      const resumed = await readEvents(
        await fetch(logsUrl(app, `?instance=${a.instanceId}`), { headers: { Accept: "text/event-stream", "Last-Event-ID": resumeFrom } }),
        (events) => events.some((event) => lineOf(event) === "said second"),
      );
      expect(resumed.map(lineOf)).not.toContain("said first");
      expect(resumed.map(lineOf)).toContain("said second");
      expect(new Set(resumed.map((event) => event.id)).size).toBe(resumed.length);
    } finally {
      await a.agent.stop();
      await b.agent.stop();
    }
    const stopped = (await jsonLogs(app, `?instance=${a.instanceId}`)).filter((entry) => entry.stream === "system").map((entry) => entry.line);
    expect(stopped).toEqual(expect.arrayContaining([expect.stringMatching(/^stopping v1: /), expect.stringMatching(/^v1 stopped /)]));
  });

  it("a flood of output neither stalls the app nor grows the log past its bounds", async () => {
    const app = uniqueApp("flood");
    await deploy(app);
    const maxLines = 3000;
    const { agent, url } = await startAgent(app, { APP_LOG_MAX_LINES: String(maxLines) });
    try {
      await fetch(`${url}/flood/200000`);
      let slowest = 0;
      await eventually(async () => {
        const started = Date.now();
        const answer = await (await fetch(`${url}/flooded`)).text();
        slowest = Math.max(slowest, Date.now() - started);
        return answer === "yes" ? true : undefined;
      }, 60_000, "the app to finish printing 200,000 lines");
      expect(slowest).toBeLessThan(3000);

      const key = recordKeys(stack.env.QUEUE_PREFIX).appLogs(app);
      const entries = await eventually(async () => {
        const all = await jsonLogs(app, "?limit=10000");
        return all.some((entry) => entry.line === "flood line 199999 " + "x".repeat(40) || /^\d+ lines dropped/.test(entry.line)) ? all : undefined;
      }, 30_000, "the flood's end (or a dropped-lines marker) in the log");
      // MAXLEN ~ trims whole stream nodes (100 entries each), so the length may pass the bound by one node.
      expect(await stack.api.redis.xlen(key)).toBeLessThanOrEqual(maxLines + 100);
      expect(entries.length).toBeLessThanOrEqual(maxLines + 100);
    } finally {
      await agent.stop();
    }
  });

  it("answers 404 for an unknown app and 400 for a bad since", async () => {
    const missing = await fetch(logsUrl(uniqueApp("nobody")));
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("not_found");
    const app = uniqueApp("badsince");
    await stack.api.apps.upsert(app, {});
    const bad = await fetch(logsUrl(app, "?since=yesterday"));
    expect(bad.status).toBe(400);
    expect(await (await fetch(logsUrl(app))).text()).toBe("");
    expect(await jsonLogs(app, `?since=${new Date().toISOString()}`)).toEqual([]);
  });
});
