import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { checkSandboxSupport, SandboxUnavailableError } from "../src/sandbox/index";

let root: string;
const file = () => path.join(root, "sandbox-probe.json");
const remembered = async () => JSON.parse(await readFile(file(), "utf8")) as { key: string; cgroups: boolean };

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "slipway-sandbox-probe-"));
});
afterEach(() => rm(root, { recursive: true, force: true }));

describe("the sandbox probe, remembered", () => {
  it("is remembered for this boot and this bwrap once it passed, and answered from memory after that", async () => {
    const probed = await checkSandboxSupport({ network: false }, { rememberIn: root });
    const saved = await remembered();
    const bootId = (await readFile("/proc/sys/kernel/random/boot_id", "utf8")).trim();
    expect(saved).toMatchObject({ cgroups: probed.cgroups });
    expect(saved.key.startsWith(`${bootId}/`)).toBe(true);
    // An answer the probe would never give: only the memory can give it.
    await writeFile(file(), JSON.stringify({ ...saved, cgroups: !probed.cgroups }));
    expect(await checkSandboxSupport({ network: false }, { rememberIn: root })).toEqual({ cgroups: !probed.cgroups, overlay: false });
  });

  it("tries an overlay mount in a sandbox when asked, and remembers the answer with the rest", async () => {
    const overlayIn = path.join(root, "overlay-work");
    const probed = await checkSandboxSupport({ network: false }, { rememberIn: root, overlayIn });
    // This machine's kernel has overlayfs and the directory is on a filesystem an overlay takes.
    expect(probed.overlay).toBe(true);
    expect(await readdir(overlayIn)).toEqual([]);
    const saved = await remembered();
    await writeFile(file(), JSON.stringify({ ...saved, overlay: false }));
    expect(await checkSandboxSupport({ network: false }, { rememberIn: root, overlayIn })).toEqual({ cgroups: probed.cgroups, overlay: false });
    // Without the question, the answer remembered for it is not reused.
    expect((await checkSandboxSupport({ network: false }, { rememberIn: root })).overlay).toBe(false);
  });

  it("probes again after a reboot, or for other needs", async () => {
    const probed = await checkSandboxSupport({ network: false }, { rememberIn: root });
    const saved = await remembered();
    await writeFile(file(), JSON.stringify({ key: saved.key.replace(/^[^/]+/, "another-boot"), cgroups: !probed.cgroups }));
    expect(await checkSandboxSupport({ network: false }, { rememberIn: root })).toEqual(probed);
    expect((await remembered()).key).toBe(saved.key);
    await writeFile(file(), JSON.stringify({ ...saved, cgroups: !probed.cgroups }));
    expect(await checkSandboxSupport({ network: true }, { rememberIn: root })).toEqual(probed);
  });

  it("still refuses at once when bwrap is gone, whatever it remembers", async () => {
    await checkSandboxSupport({ network: false }, { rememberIn: root });
    const pathBefore = process.env.PATH;
    process.env.PATH = root;
    try {
      await expect(checkSandboxSupport({ network: false }, { rememberIn: root })).rejects.toThrow(SandboxUnavailableError);
    } finally {
      process.env.PATH = pathBefore;
    }
  });
});
