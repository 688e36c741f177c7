import { describe, expect, it } from "vitest";
import { storageKeys } from "@slipway/shared";
import { uniqueApp } from "../../../test/harness/env";
import { eventually } from "../../../test/harness/local-stack";
import { useStack } from "../../../test/harness/use-stack";
import { buildVersions } from "./gc-builds";

const { stack, work } = useStack("gc-schedule", { env: { GC_INTERVAL_S: "1" } });

describe("garbage collection on a schedule", () => {
  it("takes what falls out of retention, keeping a release an instance runs until it no longer does", async () => {
    const app = uniqueApp("gcsched");
    // Nothing is collected while the builds are made.
    await stack.api.apps.upsert(app, { retention: 100 });
    const builds = await buildVersions(stack.baseUrl, work, app, 3);
    const report = (release: number) =>
      stack.api.instances.report(app, { instanceId: "i-1", release, buildId: builds[release - 1]!.id, state: "running", appPath: "/x", lastHeartbeatAt: new Date().toISOString() });
    await report(1);
    const exists = (n: number) => stack.api.store.exists(builds[n - 1]!.artifact!.key);

    // Stored as an upload is, before its build is recorded: no build refers to it yet.
    const fresh = storageKeys.source(app, "f".repeat(64));
    await stack.api.store.putBuffer(fresh, "an upload whose build is about to be recorded");

    await stack.api.apps.upsert(app, { retention: 1 });
    await eventually(async () => ((await exists(2)) ? undefined : true), 20_000, "the scheduled gc to collect v2");
    expect(await exists(1)).toBe(true);
    expect(await exists(3)).toBe(true);
    // A run that collected v2 saw that source unreferenced; it is kept while it is this recent.
    expect(await stack.api.store.exists(fresh)).toBe(true);

    // Once no instance runs v1, a later run takes it too.
    await report(3);
    await eventually(async () => ((await exists(1)) ? undefined : true), 20_000, "the scheduled gc to collect v1");
    expect(await exists(3)).toBe(true);
  }, 120_000);
});
