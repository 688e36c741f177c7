import { randomUUID } from "node:crypto";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { DomainRepository, InvalidDomainError, recordKeys, RouterRepository, ROUTER_DEAD_MS } from "../src/index";
import { redisFor, serviceEnv } from "../../test/harness/env";

const redis = redisFor(serviceEnv());
afterAll(() => redis.disconnect());

let keys: ReturnType<typeof recordKeys>;
beforeEach(() => {
  keys = recordKeys(`front-${randomUUID().slice(0, 8)}`);
});

describe("what routers say they serve", () => {
  it("is caught up once every live router serves records read at or after the time asked about, and ignores a silent one", async () => {
    const routers = new RouterRepository(redis, keys);
    const since = await routers.now();
    expect(await routers.allCaughtUp(since)).toBe(true); // no router: nothing to wait for
    await routers.applied("a", since - 1000);
    await routers.applied("b", since + 5);
    expect(await routers.allCaughtUp(since)).toBe(false);
    expect(await routers.waitCaughtUp(since, 200, 20)).toBe(false);
    await routers.applied("a", since);
    expect(await routers.allCaughtUp(since)).toBe(true);
    // A router that stopped beating (killed, cut off) holds no instance's stop up.
    await redis.hset(keys.routers, "gone", JSON.stringify({ snapshotAt: since - 60_000, beatAt: since - ROUTER_DEAD_MS - 1000 }));
    expect(await routers.allCaughtUp(since)).toBe(true);
    await routers.applied("a", since - 1);
    await routers.remove("a");
    expect(await routers.allCaughtUp(since)).toBe(true);
  });
});

describe("custom domains", () => {
  it("belong to one app, normalised as users type them; another app cannot take one", async () => {
    const domains = new DomainRepository(redis, keys);
    expect(await domains.add("shop", "WWW.Example.COM.")).toEqual({ added: true });
    expect(await domains.add("shop", "www.example.com")).toEqual({ added: true });
    expect(await domains.add("blog", "www.example.com")).toEqual({ added: false, owner: "shop" });
    expect(await domains.list("shop")).toEqual(["www.example.com"]);
    expect(await domains.remove("blog", "www.example.com")).toBe(false);
    expect(await domains.remove("shop", "www.example.com")).toBe(true);
    expect(await domains.add("blog", "www.example.com")).toEqual({ added: true });
    await domains.add("blog", "blog.example.com");
    await domains.removeAll("blog");
    expect(await domains.list("blog")).toEqual([]);
    expect(await redis.hlen(keys.domains)).toBe(0);
    for (const bad of ["*.example.com", "localhost", "a..b", "exa mple.com", "-x.example.com", `${"a".repeat(64)}.com`]) {
      await expect(domains.add("shop", bad)).rejects.toBeInstanceOf(InvalidDomainError);
    }
  });
});
