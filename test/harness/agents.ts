import { createLogger, loadAgentConfig, RELEASE_CHANNEL } from "@slipway/shared";
import { RuntimeAgent } from "@slipway/runtime-agent";
import { existsSync } from "node:fs";
import { fetchHelper } from "./entries";
import type { ServiceStack } from "./services";

/** What names one instance; the rest of an agent's environment comes from the stack's, which `env` may override. */
export type AgentEnv = { APP: string; INSTANCE_ID: string; PORT: string; RUNTIME_ROOT: string } & Record<string, string>;

/**
 * A runtime agent in this process on the stack's Redis and storage, started (first reconcile
 * done). With slipway-fetch, as the compiled agent finds it beside itself, unless `env` says otherwise.
 */
export async function startAgentOn(stack: Pick<ServiceStack, "env" | "api">, env: AgentEnv): Promise<RuntimeAgent> {
  const helper = existsSync(fetchHelper) ? { FETCH_HELPER: fetchHelper } : {};
  const agent = new RuntimeAgent(loadAgentConfig({ ...helper, ...stack.env, ...env }), stack.api.redis, stack.api.store, createLogger("agent-test", "silent"));
  await agent.start();
  return agent;
}

/** Makes `buildId` the app's release by hand and tells the instances, as a release message would; answers its version. */
export async function releaseByHand(stack: Pick<ServiceStack, "api">, app: string, buildId: string): Promise<number> {
  const { release } = (await stack.api.releases.create(app, buildId, "manual"))!;
  await stack.api.redis.publish(RELEASE_CHANNEL, JSON.stringify({ app, version: release.version, buildId }));
  return release.version;
}
