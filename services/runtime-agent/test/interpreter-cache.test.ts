import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BuildManifest } from "@slipway/shared";
import { probePython } from "@slipway/shared/sandbox";
import { requireInterpreter } from "../src/interpreter";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "slipway-interpreter-cache-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A python3 that counts its runs in `runs`, then is the host's own. */
async function countingPython(bin: string, runs: string, extra = ""): Promise<string> {
  const real = (await probePython("python3"))!;
  await mkdir(bin, { recursive: true });
  const python = path.join(bin, "python3");
  await writeFile(python, `#!/bin/sh\n${extra}echo run >> '${runs}'\nexec '${real.command}' "$@"\n`);
  await chmod(python, 0o755);
  return python;
}

const runCount = (runs: string) => readFile(runs, "utf8").then((text) => text.split("\n").filter(Boolean).length, () => 0);

describe("a release's interpreter", () => {
  it("is probed once and remembered across agent starts while its executable stays the same file; a replaced one is probed again", async () => {
    const runs = path.join(dir, "runs");
    const python = await countingPython(path.join(dir, "bin"), runs);
    const version = (await probePython("python3"))!.version;
    const manifest = { pythonInterpreterPath: python, pythonVersion: version } as BuildManifest;
    const runtimeRoot = path.join(dir, "runtime");
    const sandbox = { allowReading: () => undefined };

    await requireInterpreter(manifest, sandbox, runtimeRoot);
    expect(await runCount(runs)).toBe(1);
    // A restarted agent reads what the last one found.
    await requireInterpreter(manifest, sandbox, runtimeRoot);
    expect(await runCount(runs)).toBe(1);

    await countingPython(path.join(dir, "bin"), runs, "# reinstalled\n");
    await requireInterpreter(manifest, sandbox, runtimeRoot);
    expect(await runCount(runs)).toBe(2);

    // A damaged memory is a probe, not a failure.
    await writeFile(path.join(runtimeRoot, "interpreters.json"), JSON.stringify({ [python]: { identity: "x", found: { command: "relative" } } }));
    await requireInterpreter(manifest, sandbox, runtimeRoot);
    expect(await runCount(runs)).toBe(3);
  });

  it("is never a file of a release or the host cache: refused without running it", async () => {
    const runs = path.join(dir, "runs-shipped");
    const runtimeRoot = path.join(dir, "runtime-shipped");
    const hostCache = path.join(dir, "host-cache");
    const version = (await probePython("python3"))!.version;
    for (const bin of [path.join(runtimeRoot, "releases", "b1", "antenv", "bin"), path.join(hostCache, "app", "b1", "tree", "antenv", "bin")]) {
      const python = await countingPython(bin, runs);
      const manifest = { pythonInterpreterPath: python, pythonVersion: version } as BuildManifest;
      await expect(requireInterpreter(manifest, { allowReading: () => undefined }, runtimeRoot, [runtimeRoot, hostCache])).rejects.toThrow(/a file of a release, not an installed Python/);
    }
    expect(await runCount(runs)).toBe(0);
  });

  it("one that no longer runs is still refused after it was remembered", async () => {
    const runs = path.join(dir, "runs-broken");
    const python = await countingPython(path.join(dir, "bin-broken"), runs);
    const manifest = { pythonInterpreterPath: python, pythonVersion: (await probePython("python3"))!.version } as BuildManifest;
    const runtimeRoot = path.join(dir, "runtime-broken");
    await requireInterpreter(manifest, { allowReading: () => undefined }, runtimeRoot);
    await writeFile(python, "#!/bin/sh\nexit 1\n");
    await expect(requireInterpreter(manifest, { allowReading: () => undefined }, runtimeRoot)).rejects.toThrow(/needs Python/);
  });
});
