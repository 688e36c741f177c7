/**
 * A failure that will happen again on retry (bad archive, failing install, unsupported version):
 * the build fails at once, with this message as its error.
 */
export class BuildFailure extends Error {
  override name = "BuildFailure";
}

/**
 * The build was stopped from outside: canceled by a user, out of time, or its worker is shutting
 * down (then the job goes back to the queue for another worker).
 */
export class BuildAborted extends Error {
  override name = "BuildAborted";
  constructor(readonly reason: "canceled" | "timeout" | "shutdown", message: string) {
    super(message);
  }
}

/** What a disk that filled up says: errno ENOSPC in node, "No space left on device" from a command or tar. */
const DISK_FULL = /ENOSPC|No space left on device/i;

/**
 * The build's failure as its user reads it. A full disk otherwise shows as a raw errno line
 * ("ENOSPC: no space left on device, write") or only as a command's exit code.
 */
export function failureMessage(error: unknown, scratchDir: string): string {
  const message = (error as Error).message;
  if (!DISK_FULL.test(message) && (error as NodeJS.ErrnoException).code !== "ENOSPC") return message;
  return `the build ran out of disk space: ${scratchDir} (SCRATCH_DIR) is full; free space there or give the worker a larger disk (${message.split("\n")[0]})`;
}

/** Whether a command's output line says the disk is full. */
export const saysDiskFull = (line: string): boolean => /No space left on device/i.test(line);
