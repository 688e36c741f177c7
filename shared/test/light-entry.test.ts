import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const HEAVY = ["minio", "ioredis", "pino", "tar", "bullmq"];

/**
 * A resolve hook, registered after tsx's and so asked first, that refuses any heavy package: an
 * import of the entry then fails naming the package and the file that asked for it.
 */
const refuseHeavy = (heavy: string[]) => `
const heavy = ${JSON.stringify(heavy)};
export async function resolve(specifier, context, next) {
  const name = specifier.split("/")[0];
  if (heavy.includes(name)) throw new Error("loaded " + specifier + " from " + context.parentURL);
  return next(specifier, context);
}`;

/** Imports `entry` in a fresh Node (with tsx, as the CLI runs) under the hook above; answers the error, if any. */
async function importError(entry: string, heavy = HEAVY): Promise<string | undefined> {
  const script = `
import { register } from "node:module";
register("data:text/javascript," + encodeURIComponent(${JSON.stringify(refuseHeavy(heavy))}));
await import(${JSON.stringify(entry)});`;
  try {
    await promisify(execFile)(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: root });
    return undefined;
  } catch (error) {
    return (error as { stderr?: string }).stderr ?? String(error);
  }
}

describe("the light entries", () => {
  it("the check works: the server entry loads the heavy clients", async () => {
    expect(await importError("@slipway/shared")).toMatch(/loaded (minio|ioredis|pino|tar|bullmq)/);
  });

  it.each(["@slipway/shared/light", "@slipway/shared/contracts"])("%s loads no Redis, storage, logging or archive client", async (entry) => {
    expect(await importError(entry)).toBeUndefined();
  });

  it("@slipway/shared/boot, what the agent opens its port with, loads a logger but no Redis, storage or archive client", async () => {
    expect(await importError("@slipway/shared/boot", HEAVY.filter((name) => name !== "pino"))).toBeUndefined();
  });
});
