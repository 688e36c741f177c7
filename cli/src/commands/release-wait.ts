import type { InstanceResponse, ReleaseResponse } from "@slipway/shared/light";
import type { ApiClient } from "../client";
import { appPath } from "../context";

export type ReleaseOutcome =
  | { outcome: "running"; instances: InstanceResponse[] }
  | { outcome: "failed"; instances: InstanceResponse[]; reason: string }
  | { outcome: "timeout"; instances: InstanceResponse[] };

/**
 * How long a release with no instance reporting at all waits for one: an agent that never served
 * the app reports only once it starts restoring the release, a moment after it is announced.
 */
const FIRST_REPORT_GRACE_MS = 5000;

/**
 * Polls the app's instances until every one that reports (a stale heartbeat does not) runs
 * `version` or a newer release, or the release fails: on an instance, or as a halted rollout.
 */
export async function waitForRelease(client: ApiClient, app: string, version: number, timeoutMs: number, pollMs = 1000): Promise<ReleaseOutcome> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  for (;;) {
    const instances = await client.json<InstanceResponse[]>("GET", `${appPath(app)}/instances`);
    const failed = instances.find((i) => i.state === "failed" && i.release === version);
    if (failed) return { outcome: "failed", instances, reason: onInstance(failed) };
    // A rollout halted on its first instance leaves the others on the old release: only the release
    // says so, and the instance that failed it may already be back to serving the old one (with its error).
    const releases = await client.json<ReleaseResponse[]>("GET", `${appPath(app)}/releases?limit=10`);
    if (releases.find((r) => r.version === version)?.state === "failed") {
      const halted = instances.find((i) => i.error);
      return { outcome: "failed", instances, reason: halted ? onInstance(halted) : "its rollout was halted" };
    }
    const reporting = instances.filter((i) => i.state !== "unknown");
    const settled = reporting.every((i) => i.state === "running" && (i.release ?? 0) >= version);
    if (settled && (reporting.length > 0 || Date.now() - started >= Math.min(FIRST_REPORT_GRACE_MS, timeoutMs))) return { outcome: "running", instances };
    if (Date.now() >= deadline) return { outcome: "timeout", instances };
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** The same words whether the CLI saw the instance fail or only the halted rollout it left. */
function onInstance(instance: InstanceResponse): string {
  return `on ${instance.instanceId}: ${firstLine(instance.error) ?? "it did not start"}`;
}

function firstLine(text: string | undefined): string | undefined {
  return text?.split("\n")[0];
}
