import { randomUUID } from "node:crypto";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { AppRepository, InstanceRepository, PlacementRepository, recordKeys, type HostRecord, type InstanceReport } from "../src/index";
import { redisFor, serviceEnv } from "../../test/harness/env";

const redis = redisFor(serviceEnv());
afterAll(() => redis.disconnect());

let keys: ReturnType<typeof recordKeys>;
let placements: PlacementRepository;
let apps: AppRepository;
let instances: InstanceRepository;
beforeEach(() => {
  keys = recordKeys(`place-${randomUUID().slice(0, 8)}`);
  placements = new PlacementRepository(redis, keys);
  apps = new AppRepository(redis, keys);
  instances = new InstanceRepository(redis, keys);
});

const DEAD_MS = 15_000;
const host = (id: string, capacity = 10): HostRecord => ({ id, address: `10.0.0.${id.length}`, capacity, memoryMb: 1024, labels: {}, startedAt: new Date().toISOString() });
const place = (app: string, desired?: number, mayDeclareLost = true) => placements.place(app, { deadMs: DEAD_MS, mayDeclareLost, defaultInstances: 1, ...(desired === undefined ? {} : { desired }) });

/** Instances per host for `app`, by host id. */
async function spread(app: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const hostId of (await placements.hostsOf(app)).values()) counts[hostId] = (counts[hostId] ?? 0) + 1;
  return counts;
}

/** Makes `id`'s last heartbeat a minute old, as if it had gone silent. */
const silence = (id: string) => redis.zadd(keys.hostBeats, Date.now() - 60_000, id);

const running = (instanceId: string, hostId: string): InstanceReport => ({ instanceId, release: 1, buildId: "b-12345678", state: "running", appPath: "/x", lastHeartbeatAt: new Date().toISOString(), host: hostId, address: "a", port: 1 });

describe("placement", () => {
  it("scale 0→6 on three hosts places 2/2/2, and each host's beat answers exactly its own", async () => {
    for (const id of ["h-a", "h-b", "h-c"]) await placements.beat(host(id));
    await apps.upsert("web");
    expect(await place("web", 6)).toEqual({ desired: 6, placed: 6 });
    expect(await spread("web")).toEqual({ "h-a": 2, "h-b": 2, "h-c": 2 });
    const answered = await Promise.all(["h-a", "h-b", "h-c"].map(async (id) => (await placements.beat(host(id))).map((p) => p.instanceId)));
    expect(answered.flat().sort()).toEqual([...(await placements.hostsOf("web")).keys()].sort());
  });

  it("a new app gets the default count from the next pass, and a deleted app keeps nothing", async () => {
    await placements.beat(host("h-a"));
    await apps.upsert("fresh");
    expect(await redis.smembers(keys.appsUnsettled)).toEqual(["fresh"]);
    expect(await place("fresh")).toEqual({ desired: 1, placed: 1 });
    expect(await redis.smembers(keys.appsUnsettled)).toEqual([]);
    await apps.delete("fresh", []);
    expect(await place("fresh")).toEqual({ desired: 0, placed: 0 });
    expect(await placements.beat(host("h-a"))).toEqual([]);
  });

  it("concurrent passes never place one instance twice", async () => {
    for (const id of ["h-a", "h-b", "h-c"]) await placements.beat(host(id));
    await apps.upsert("web");
    await redis.hset(keys.scale("web"), "desired", 6);
    await Promise.all(Array.from({ length: 20 }, () => place("web")));
    expect((await placements.hostsOf("web")).size).toBe(6);
    const onHosts = await Promise.all(["h-a", "h-b", "h-c"].map((id) => redis.hlen(keys.hostPlacements(id))));
    expect(onHosts.reduce((a, b) => a + b)).toBe(6);
  });

  it("scaling down takes from the most loaded host first", async () => {
    for (const id of ["h-a", "h-b", "h-c"]) await placements.beat(host(id));
    await apps.upsert("web");
    await apps.upsert("busy");
    await place("web", 3);
    // Another app fills h-c: it is the most loaded host now.
    await placements.beat(host("h-a", 1));
    await placements.beat(host("h-b", 1));
    await place("busy", 2);
    expect(await spread("busy")).toEqual({ "h-c": 2 });
    await place("web", 2);
    expect(await spread("web")).toEqual({ "h-a": 1, "h-b": 1 });
  });

  it("an app that does not fit says how many were placed, and stays for the next pass", async () => {
    for (const id of ["h-a", "h-b"]) await placements.beat(host(id, 2));
    await apps.upsert("big");
    expect(await place("big", 5)).toEqual({ desired: 5, placed: 4 });
    expect(await placements.scaleOf("big", 1)).toEqual({ desired: 5, placed: 4 });
    expect(await redis.smembers(keys.appsUnsettled)).toContain("big");
    await placements.beat(host("h-c", 2));
    expect(await place("big")).toEqual({ desired: 5, placed: 5 });
    expect(await redis.smembers(keys.appsUnsettled)).not.toContain("big");
  });

  it("a lost host's instances are placed on the others, and a report from the lost host is refused", async () => {
    for (const id of ["h-a", "h-b", "h-c"]) await placements.beat(host(id));
    await apps.upsert("web");
    await place("web", 3);
    const onC = [...(await placements.hostsOf("web"))].find(([, h]) => h === "h-c")![0];
    expect(await instances.report("web", running(onC, "h-c"))).toBe(true);
    await silence("h-c");
    // Right after a Redis restart no host is declared lost: its instances stay where they are.
    await place("web", undefined, false);
    expect(await spread("web")).toEqual({ "h-a": 1, "h-b": 1, "h-c": 1 });
    expect(await placements.appsToPlace(await placements.hostsNeedingMoves(DEAD_MS))).toEqual(["web"]);
    await place("web");
    expect(await spread("web")).toEqual({ "h-a": 2, "h-b": 1 });
    expect(await instances.report("web", running(onC, "h-c"))).toBe(false);
    expect((await instances.list("web")).map((i) => i.instanceId)).not.toContain(onC);
    // Back, h-c learns from its beat that it holds nothing.
    expect(await placements.beat(host("h-c"))).toEqual([]);
    expect((await placements.hosts(DEAD_MS)).map((h) => [h.id, h.state])).toEqual([["h-a", "ready"], ["h-b", "ready"], ["h-c", "ready"]]);
  });

  it("a drained host keeps its instances until their replacements run, then holds none and takes none", async () => {
    for (const id of ["h-a", "h-b"]) await placements.beat(host(id));
    await apps.upsert("web");
    await redis.set(keys.currentRelease("web"), "1");
    await place("web", 2);
    expect(await placements.setDraining("h-a", true)).toBe(true);
    await place("web");
    const byHost = () => placements.hostsOf("web");
    // The replacement is placed on h-b beside the one still on h-a.
    expect(await spread("web")).toEqual({ "h-a": 1, "h-b": 2 });
    for (const [instanceId, hostId] of await byHost()) if (hostId === "h-b") await instances.report("web", { ...running(instanceId, hostId), state: "starting" });
    await place("web");
    expect(await spread("web")).toEqual({ "h-a": 1, "h-b": 2 });
    for (const [instanceId, hostId] of await byHost()) if (hostId === "h-b") await instances.report("web", running(instanceId, hostId));
    await place("web");
    expect(await spread("web")).toEqual({ "h-b": 2 });
    expect((await placements.hosts(DEAD_MS)).find((h) => h.id === "h-a")).toMatchObject({ state: "draining", instances: [] });
    await place("web", 4);
    expect(await spread("web")).toEqual({ "h-b": 4 });
    expect(await placements.setDraining("h-nope", true)).toBe(false);
  });
});
