import { randomUUID } from "node:crypto";
import { link, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import lockfile from "proper-lockfile";
import { replaceFile } from "@slipway/shared";
import { SANDBOX_UID_SPAN, sandboxUid } from "@slipway/shared/sandbox";

interface Claim {
  id: string;
  runtimeRoot: string;
}

/**
 * The sandbox uid of this app instance, unique on the host: the one derived from its name
 * (`sandboxUid`), or, when another instance on the host holds that one, the next free one after
 * it. Derivation alone lets two instances share a uid (one pair in 32,768, so likely among a few
 * hundred instances); two apps of one uid share its process limit (RLIMIT_NPROC counts per uid,
 * host-wide), and each owns the other's files wherever both could reach them: today the sandbox's
 * mounts keep them apart, and the uid is the line that holds if a mount ever does not. A claim is
 * a file named by the uid in the host-wide `dir`, put there whole
 * (hard-linked from a finished file, which fails if the name exists); it stays the instance's
 * across restarts, and is taken over once the instance's runtime root is gone.
 */
export async function claimAppUid(dir: string, id: string, runtimeRoot: string, base: number): Promise<number> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const mine: Claim = { id, runtimeRoot: path.resolve(runtimeRoot) };
  for (let step = 0; step < SANDBOX_UID_SPAN / 2; step++) {
    const uid = sandboxUid("app", id, base, step);
    const file = path.join(dir, String(uid));
    if (await place(file, mine)) return uid;
    const claim = await readClaim(file);
    if (claim && sameClaim(claim, mine)) return uid;
    if (claim && !(await exists(claim.runtimeRoot)) && (await takeOver(file, claim, mine))) return uid;
  }
  throw new Error(`no free sandbox uid left in ${dir}`);
}

/** Creates `file` holding `claim`, complete, unless it exists. */
async function place(file: string, claim: Claim): Promise<boolean> {
  const temporary = `${file}.${randomUUID().slice(0, 8)}.tmp`;
  await writeFile(temporary, JSON.stringify(claim), { mode: 0o600 });
  try {
    await link(temporary, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  } finally {
    await rm(temporary, { force: true });
  }
}

/** Replaces a stale claim with `mine`, under a lock, unless someone replaced it first. */
async function takeOver(file: string, stale: Claim, mine: Claim): Promise<boolean> {
  const unlock = await lockfile.lock(file, { realpath: false, retries: { retries: 20, minTimeout: 50, maxTimeout: 200 } });
  try {
    const current = await readClaim(file);
    if (!current || !sameClaim(current, stale)) return current !== undefined && sameClaim(current, mine);
    await replaceFile(file, JSON.stringify(mine), 0o600);
    return true;
  } finally {
    await unlock();
  }
}

async function readClaim(file: string): Promise<Claim | undefined> {
  try {
    const claim = JSON.parse(await readFile(file, "utf8")) as Partial<Claim>;
    return typeof claim.id === "string" && typeof claim.runtimeRoot === "string" && path.isAbsolute(claim.runtimeRoot) ? (claim as Claim) : undefined;
  } catch {
    return undefined;
  }
}

const sameClaim = (a: Claim, b: Claim) => a.id === b.id && a.runtimeRoot === b.runtimeRoot;
const exists = (file: string) => stat(file).then(() => true, () => false);
