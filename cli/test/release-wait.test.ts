import { describe, expect, it } from "vitest";
import type { InstanceResponse, ReleaseResponse } from "@slipway/shared/light";
import type { ApiClient } from "../src/client";
import { waitForRelease } from "../src/commands/release-wait";

/** An API that answers the instances and releases it is given, as the real one would at that moment. */
function apiShowing(instances: Partial<InstanceResponse>[], releases: Partial<ReleaseResponse>[]): ApiClient {
  return {
    json: async (_method: string, path: string) => (path.endsWith("/instances") ? instances : releases),
  } as unknown as ApiClient;
}

describe("waiting for a release", () => {
  it("names the instance that failed it, whether caught failing or already back on the old release", async () => {
    const failing = apiShowing([{ instanceId: "i-1", state: "failed", release: 2, error: "exited with code 3\nmore" }], [{ version: 2, state: "rolling" }]);
    expect(await waitForRelease(failing, "demo", 2, 1000, 1)).toMatchObject({ outcome: "failed", reason: "on i-1: exited with code 3" });

    const halted = apiShowing([{ instanceId: "i-1", state: "running", release: 1, error: "exited with code 3" }], [{ version: 2, state: "failed" }]);
    expect(await waitForRelease(halted, "demo", 2, 1000, 1)).toMatchObject({ outcome: "failed", reason: "on i-1: exited with code 3" });

    const silent = apiShowing([{ instanceId: "i-1", state: "running", release: 1 }], [{ version: 2, state: "failed" }]);
    expect(await waitForRelease(silent, "demo", 2, 1000, 1)).toMatchObject({ outcome: "failed", reason: "its rollout was halted" });
  });

  it("is done when every reporting instance runs the release or a newer one, and times out otherwise", async () => {
    const done = apiShowing([{ instanceId: "i-1", state: "running", release: 3 }], [{ version: 3, state: "complete" }]);
    expect((await waitForRelease(done, "demo", 2, 1000, 1)).outcome).toBe("running");
    const behind = apiShowing([{ instanceId: "i-1", state: "running", release: 1 }], [{ version: 2, state: "rolling" }]);
    expect((await waitForRelease(behind, "demo", 2, 20, 1)).outcome).toBe("timeout");
  });
});
