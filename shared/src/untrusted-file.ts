import { constants } from "node:fs";
import { open } from "node:fs/promises";

/**
 * Reads a text file that untrusted code could have written (a build's tree after its commands
 * ran, an app's release directory) without following a link out of the tree, blocking on a FIFO,
 * or reading without bound: undefined unless it is a regular file, at most `maxBytes` of it.
 */
export async function readUntrustedText(file: string, maxBytes = 1024 * 1024): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    if (!(await handle.stat()).isFile()) return undefined;
    const buffer = Buffer.alloc(maxBytes);
    const { bytesRead } = await handle.read(buffer, 0, maxBytes, 0);
    return buffer.subarray(0, bytesRead).toString("utf8");
  } finally {
    await handle.close();
  }
}
