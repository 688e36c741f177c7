import { describe, expect, it } from "vitest";
import { storageKeys } from "@slipway/shared";
import { uniqueApp } from "../../../test/harness/env";
import { json } from "../../../test/harness/http";
import { useStack } from "../../../test/harness/use-stack";
import { buildVersions } from "./gc-builds";

// No scheduled collection here (GC_INTERVAL_S=0 turns it off): the on-demand one's report is all
// that deletes anything, and sources just stored may go (no grace). gc-schedule.test.ts covers the
// schedule and the grace.
const { stack, work } = useStack("gc", { env: { GC_INTERVAL_S: "0", GC_SOURCE_GRACE_S: "0" } });

describe("garbage collection", () => {
  it("deletes artifacts and sources beyond the app's retention, never what a retained release or a running instance uses", async () => {
    const app = uniqueApp("gc");
    const builds = await buildVersions(stack.baseUrl, work, app, 4);
    // An instance still runs v1.
    await stack.api.instances.report(app, { instanceId: "i-1", release: 1, buildId: builds[0]!.id, state: "running", appPath: "/x", lastHeartbeatAt: new Date().toISOString() });
    const sources = await stack.api.store.list(storageKeys.sourcesPrefix(app));
    expect(sources).toHaveLength(4);

    await stack.api.apps.upsert(app, { retention: 2 });
    const response = await fetch(`${stack.baseUrl}/v1/apps/${app}/gc`, { method: "POST" });
    expect(response.status).toBe(200);
    const report = await json<{ deletedBuilds: string[]; deletedSources: string[]; keptBuilds: string[] }>(response);
    expect(report.deletedBuilds).toEqual([builds[1]!.id]);
    expect(report.deletedSources).toEqual([builds[1]!.artifact && storageKeys.source(app, (builds[1] as unknown as { sourceSha256: string }).sourceSha256)]);
    expect(report.keptBuilds.sort()).toEqual([builds[0]!.id, builds[2]!.id, builds[3]!.id].sort());
    expect(await stack.api.store.exists(builds[1]!.artifact!.key)).toBe(false);
    expect(await stack.api.store.exists(storageKeys.manifest(app, builds[1]!.id))).toBe(false);
    for (const kept of [builds[0]!, builds[2]!, builds[3]!]) expect(await stack.api.store.exists(kept.artifact!.key)).toBe(true);

    const refused = await fetch(`${stack.baseUrl}/v1/apps/${app}/releases`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ buildId: builds[1]!.id }) });
    expect(refused.status).toBe(409);
    expect((await json<{ error: { code: string } }>(refused)).error.code).toBe("artifact_collected");
  }, 120_000);
});
