import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, loadAgentConfig, type AppLogEntry } from "@slipway/shared";
import { AppLog } from "../src/app-log";
import { eachLine } from "../src/output-lines";

const config = loadAgentConfig({ REDIS_URL: "redis://127.0.0.1:1", S3_ENDPOINT: "http://127.0.0.1:1", S3_ACCESS_KEY: "k", S3_SECRET_KEY: "s", APP: "chatty", INSTANCE_ID: "i-1", PORT: "1", RUNTIME_ROOT: "/tmp/x" });

/** A log stream whose writes wait until released, as a slow Redis would. */
function slowStream() {
  const written: AppLogEntry[] = [];
  let release: () => void = () => undefined;
  let gate = new Promise<void>((resolve) => (release = resolve));
  return {
    written,
    open: () => {
      release();
      gate = Promise.resolve();
    },
    append: async (_app: string, entries: AppLogEntry[]) => {
      await gate;
      written.push(...entries);
    },
  };
}

describe("the app log buffer", () => {
  it("drops lines past its bound while a write is slow, never blocks, and then says how many it dropped", async () => {
    const stream = slowStream();
    const log = new AppLog(stream, config, createLogger("test", "silent"));
    const started = Date.now();
    for (let i = 0; i < 50_000; i++) log.output("stdout", `line ${i}`, 1);
    expect(Date.now() - started).toBeLessThan(2000);
    stream.open();
    await log.flush();
    const marker = stream.written.find((entry) => entry.stream === "system");
    expect(marker?.line).toMatch(/^\d+ lines dropped: /);
    const kept = stream.written.filter((entry) => entry.stream === "stdout").length;
    expect(kept + Number(marker!.line.split(" ")[0])).toBe(50_000);
    expect(stream.written.at(0)?.line).toBe("line 0");
  });

  it("keeps the order of lines across batches and counts a failed write as dropped", async () => {
    let fail = true;
    const written: string[] = [];
    const log = new AppLog({ append: async (_app, entries) => (fail ? Promise.reject(new Error("down")) : void written.push(...entries.map((e) => e.line))) }, config, createLogger("test", "silent"));
    log.output("stderr", "lost", 1);
    await log.flush();
    fail = false;
    for (let i = 0; i < 1200; i++) log.output("stdout", String(i), 1);
    await log.flush();
    expect(written.filter((line) => /^\d+$/.test(line)).map(Number)).toEqual(Array.from({ length: 1200 }, (_, i) => i));
    expect(written).toContainEqual(expect.stringMatching(/^1 lines dropped/));
  });
});

describe("output lines", () => {
  it("splits chunks into lines, cuts long ones to the bound and ends an unterminated last line", async () => {
    const input = new PassThrough();
    const lines: string[] = [];
    eachLine(input, (line) => lines.push(line), 16);
    input.write("one\r\ntw");
    input.write("o\n" + "x".repeat(40));
    input.write("y".repeat(40) + "\nlast");
    input.end();
    await new Promise((resolve) => input.on("end", resolve));
    expect(lines).toEqual(["one", "two", `${"x".repeat(16)}…`, "last"]);
  });
});
