import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppLogStream, recordKeys } from "@slipway/shared";
import { uniqueApp } from "../harness/env";
import { startInProcessStack, uploadDir, waitForBuild, writeTree, type InProcessStack } from "../harness/stack";
import { terminalSafe } from "../../cli/src/terminal";

/**
 * A build's and an app's output reach the operator's terminal through `slipway builds logs` and
 * `slipway logs`. Terminals obey what they print: an app could clear the screen, retitle the
 * window, write the operator's clipboard (OSC 52) or overwrite earlier lines.
 */
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const slipwayBin = path.join(root, "cli/bin/slipway.mjs");
const ESC = "\x1b";
const HOSTILE = [`${ESC}[2J`, `${ESC}]0;pwned-title\x07`, `${ESC}]52;c;cHduZWQ=\x07`, `${ESC}[1A`, "\r"];
const COLOURED = `${ESC}[31mred${ESC}[0m`;

let stack: InProcessStack;
let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-terminal-"));
  stack = await startInProcessStack();
});
afterAll(async () => {
  await stack?.close();
  await rm(work, { recursive: true, force: true });
});

function slipway(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(slipwayBin, args, { cwd: work, env: { ...process.env, SLIPWAY_URL: stack.baseUrl }, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const expectSafe = (text: string) => {
  for (const sequence of HOSTILE) expect(text).not.toContain(sequence);
  expect(text).toContain(COLOURED);
};

describe("the CLI prints app and build output", () => {
  it("builds logs: without the build's control sequences but with its colours, unless --raw", async () => {
    const app = uniqueApp("escapes");
    await stack.api.apps.upsert(app, { buildEnv: { PRE_BUILD_COMMAND: `printf '\\033[2J\\033]0;pwned-title\\007\\033]52;c;cHduZWQ=\\007\\033[1A\\r\\033[31mred\\033[0m done\\n'` } });
    const built = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, await writeTree(path.join(work, app), { "app.py": "" }))).id);
    expect(built.status).toBe("succeeded");

    for (const args of [["builds", "logs", built.id], ["builds", "logs", built.id, "--follow"]]) {
      const shown = await slipway(args);
      expect(shown.code, shown.stderr).toBe(0);
      expectSafe(shown.stdout);
      expect(shown.stdout).toContain("red\x1b[0m done");
    }
    const raw = await slipway(["--raw", "builds", "logs", built.id]);
    expect(raw.stdout).toContain(`${ESC}]52;c;cHduZWQ=\x07`);
  });

  it("logs: an app's lines the same way", async () => {
    const app = uniqueApp("applog");
    await stack.api.apps.upsert(app, {});
    const logs = new AppLogStream(stack.api.redis, recordKeys(stack.env.QUEUE_PREFIX));
    await logs.append(app, [{ time: new Date().toISOString(), instanceId: "i-1", release: null, stream: "stdout", line: `${HOSTILE.join("")}${COLOURED} from the app` }], { maxLines: 100, maxAgeS: 3600 });
    const shown = await slipway(["logs", "--app", app]);
    expect(shown.code, shown.stderr).toBe(0);
    expectSafe(shown.stdout);
    expect(shown.stdout).toContain("from the app");
  });

  it("keeps tabs, newlines and every colour form, and drops lone controls and C1 sequences", () => {
    expect(terminalSafe(`a\tb\n${ESC}[1;38;5;208morange${ESC}[m`)).toBe(`a\tb\n${ESC}[1;38;5;208morange${ESC}[m`);
    expect(terminalSafe(`x\x9b2Jy\x07z\x08${ESC}Pq#0${ESC}\\w`)).toBe("xyzw");
  });
});
