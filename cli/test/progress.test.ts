import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { progressPrinter, uploadProgress } from "../src/progress";

/** Pushes `chunks` through the progress pass-through with every tick reported; answers what the sink got. */
async function upload(isTTY: boolean, chunks: number[]): Promise<string> {
  let written = "";
  const sink = { isTTY, write: (text: string) => (written += text) };
  const total = chunks.reduce((a, b) => a + b, 0);
  await pipeline(
    Readable.from(chunks.map((n) => Buffer.alloc(n))),
    uploadProgress(total, progressPrinter(sink), -1),
    new Writable({ write: (_chunk, _encoding, done) => done() }),
  );
  return written;
}

describe("upload progress", () => {
  it("redraws one line on a terminal: carriage return and erase before each, 100% once, one newline at the end", async () => {
    const out = await upload(true, [1000, 1000, 1000, 1000]);
    const draws = out.split("\r\x1b[2K").slice(1);
    expect(out.startsWith("\r\x1b[2K")).toBe(true);
    expect(draws.map((d) => d.match(/\((\d+)%\)/)![1])).toEqual(["25", "50", "75", "100"]);
    expect(out.match(/100%/g)).toHaveLength(1);
    expect(out.match(/\n/g)).toHaveLength(1);
    expect(out.endsWith("/s\n")).toBe(true);
  });

  it("prints only the final line when not a terminal", async () => {
    const out = await upload(false, [1000, 1000, 1000]);
    expect(out).toMatch(/^uploading 2\.9 KB \/ 2\.9 KB \(100%\) at .*\/s\n$/);
  });
});
