import type { Readable } from "node:stream";

/** An output line longer than this is cut: one endless line must not grow the agent's memory. */
export const MAX_LINE_BYTES = 8 * 1024;
const NEWLINE = 0x0a;

/**
 * Calls `onLine` for each line `input` carries, cut to `maxBytes` (marked with …). Unlike readline,
 * it never holds more than `maxBytes` of a line that has not ended yet.
 */
export function eachLine(input: Readable, onLine: (line: string) => void, maxBytes = MAX_LINE_BYTES): void {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let truncated = false;

  const emit = () => {
    let text = Buffer.concat(pending, pendingBytes).toString("utf8");
    if (text.endsWith("\r")) text = text.slice(0, -1);
    onLine(truncated ? `${text}…` : text);
    pending = [];
    pendingBytes = 0;
    truncated = false;
  };
  const keep = (piece: Buffer) => {
    const room = maxBytes - pendingBytes;
    if (piece.length > room) truncated = true;
    const kept = piece.length > room ? piece.subarray(0, Math.max(0, room)) : piece;
    if (kept.length === 0) return;
    // A copy: the chunk's memory must not be held for a line's sake.
    pending.push(Buffer.from(kept));
    pendingBytes += kept.length;
  };

  input.on("data", (chunk: Buffer) => {
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end !== -1; end = chunk.indexOf(NEWLINE, start)) {
      keep(chunk.subarray(start, end));
      emit();
      start = end + 1;
    }
    if (start < chunk.length) keep(chunk.subarray(start));
  });
  input.on("end", () => {
    if (pendingBytes > 0 || truncated) emit();
  });
}
