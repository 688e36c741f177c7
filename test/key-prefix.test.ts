import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniqueApp } from "./harness/env";
import { startInProcessStack, type InProcessStack } from "./harness/stack";

// Two stacks on the harness's one Redis, each with a QUEUE_PREFIX of its own (startInProcessStack's default).
let first: InProcessStack;
let second: InProcessStack;
beforeAll(async () => {
  [first, second] = await Promise.all([startInProcessStack({}, { worker: false }), startInProcessStack({}, { worker: false })]);
});
afterAll(async () => {
  await Promise.all([first?.close(), second?.close()]);
});

describe("QUEUE_PREFIX separates records as well as queues", () => {
  it("an app created on one stack is invisible to a stack with another prefix on the same Redis", async () => {
    expect(first.env.REDIS_URL).toBe(second.env.REDIS_URL);
    expect(first.env.QUEUE_PREFIX).not.toBe(second.env.QUEUE_PREFIX);
    const app = uniqueApp("prefixed");
    const created = await fetch(`${first.baseUrl}/v1/apps/${app}`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: "{}" });
    expect(created.status).toBe(201);

    expect((await fetch(`${first.baseUrl}/v1/apps/${app}`)).status).toBe(200);
    expect((await fetch(`${second.baseUrl}/v1/apps/${app}`)).status).toBe(404);
    const listed = (await (await fetch(`${second.baseUrl}/v1/apps?limit=100`)).json()) as { name: string }[];
    expect(listed.map((a) => a.name)).not.toContain(app);
    // The record sits under the first stack's prefix, not the default one.
    expect(await first.api.redis.exists(`${first.env.QUEUE_PREFIX}:app:${app}`)).toBe(1);
    expect(await first.api.redis.exists(`slipway:app:${app}`)).toBe(0);
  });
});
