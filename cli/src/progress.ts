import { Transform } from "node:stream";
import { formatBytes } from "./output";

/** Where progress goes: a terminal gets one line redrawn in place, anything else only the final line. */
export interface ProgressSink {
  isTTY?: boolean;
  write(text: string): unknown;
}

/** `\r` and "erase the whole line": a shorter redraw leaves nothing of the longer one behind. */
const REDRAW = "\r\x1b[2K";

/** Reports the line as it changes: redrawn on a terminal, printed once (when done) elsewhere. */
export function progressPrinter(sink: ProgressSink): (line: string, done: boolean) => void {
  return (line, done) => {
    if (sink.isTTY) sink.write(`${REDRAW}${line}${done ? "\n" : ""}`);
    else if (done) sink.write(`${line}\n`);
  };
}

/**
 * A pass-through that reports bytes sent and the rate, at most a few times a second; the 100%
 * line comes once, from the end of the stream.
 */
export function uploadProgress(total: number, report: (line: string, done: boolean) => void, intervalMs = 200): Transform {
  let sent = 0;
  const started = Date.now();
  let last = 0;
  const line = () => {
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    const percent = total ? Math.min(100, Math.floor((sent / total) * 100)) : 100;
    return `uploading ${formatBytes(sent)} / ${formatBytes(total)} (${percent}%) at ${formatBytes(sent / seconds)}/s`;
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      sent += chunk.length;
      if (sent < total && Date.now() - last > intervalMs) {
        last = Date.now();
        report(line(), false);
      }
      callback(null, chunk);
    },
    flush(callback) {
      report(line(), true);
      callback();
    },
  });
}
