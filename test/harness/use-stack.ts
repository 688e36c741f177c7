import { mkdtempSync } from "node:fs";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll } from "vitest";
import { freePort, storageKeys } from "@slipway/shared";
import { spawnAgent, startInProcessStack, uploadDir, waitForBuild, type BuildView, type InProcessStack } from "./stack";

type Env = Record<string, string>;
type Agent = ReturnType<typeof spawnAgent>;

export interface StackOptions {
  /** The services' extra environment; a function of the work directory to prepare files there first (wheels, say). */
  env?: Env | ((work: string) => Env | Promise<Env>);
  worker?: boolean;
  /** The start-up hook's timeout, for stacks that prepare slow things. */
  timeoutMs?: number;
}

export interface UsedStack {
  /** The file's stack: usable from its tests (and later hooks) on, not while the file is collected. */
  stack: InProcessStack;
  /** A directory of the file's own, removed after its tests. */
  work: string;
  /** A runtime agent process on the stack, stopped after the file's tests. */
  spawnAgent(env: Parameters<typeof spawnAgent>[1]): Agent;
  /** Uploads `dir` as a build of `app` and waits for it to end; answers it with its stored log. */
  deploy(app: string, dir: string, timeoutMs?: number): Promise<{ build: BuildView; log: string }>;
  /** Starts instance i-1 of `app` on a free port (health timeout 60 s); answers its URL without waiting for it. */
  serve(app: string, agentEnv?: Env): Promise<{ url: string; agent: Agent }>;
}

/**
 * One in-process stack (API and build worker) for a test file: registers the hooks that start it
 * and a work directory before the file's tests and stop both, and the agents it spawned, after.
 */
export function useStack(name: string, options: StackOptions = {}): UsedStack {
  const work = mkdtempSync(path.join(os.tmpdir(), `slipway-${name}-`));
  const agents: Agent[] = [];
  let started: InProcessStack | undefined;
  const stack = new Proxy({} as InProcessStack, {
    get: (_target, key) => {
      if (!started) throw new Error(`the ${name} stack is used before its beforeAll hook started it`);
      return Reflect.get(started, key);
    },
  });
  beforeAll(async () => {
    const env = typeof options.env === "function" ? await options.env(work) : options.env;
    started = await startInProcessStack(env, { worker: options.worker });
  }, options.timeoutMs);
  afterAll(async () => {
    for (const agent of agents) agent.child.kill("SIGTERM");
    await Promise.all(agents.map((agent) => agent.exited));
    await started?.close();
    // Retried: a process of the stack still stopping may write a last file while the tree goes.
    await rm(work, { recursive: true, force: true, maxRetries: 5 });
  });
  const spawn = (env: Parameters<typeof spawnAgent>[1]) => {
    const agent = spawnAgent(stack, env);
    agents.push(agent);
    return agent;
  };
  return {
    stack,
    work,
    spawnAgent: spawn,
    deploy: async (app, dir, timeoutMs) => {
      const build = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir)).id, timeoutMs);
      return { build, log: await stack.api.store.getText(storageKeys.buildLog(app, build.id)) };
    },
    serve: async (app, agentEnv = {}) => {
      const port = await freePort();
      const agent = spawn({ APP: app, INSTANCE_ID: "i-1", PORT: String(port), RUNTIME_ROOT: path.join(work, `runtime-${app}`), HEALTH_TIMEOUT_S: "60", ...agentEnv });
      return { url: `http://127.0.0.1:${port}`, agent };
    },
  };
}

