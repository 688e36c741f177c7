import { runOnHost } from "../sandbox/process-io";

/**
 * Makes a release tree safe to share between instances of different uids: every file readable,
 * nobody's to write (root, who owns them, is not held back, but no sandboxed app is root), no
 * set-id bits. Directories are open to all (0777): an app seeing the tree through its overlay may
 * then add files anywhere in it, as it could in a copy of its own, while every such write lands
 * in its own upper directory. Only root reaches a restored tree itself (the host cache's
 * directories above it are root's 0700), and an instance's copy closes them again. The worker
 * seals a build's output before packing it, so a restore of a trusted artifact finds it sealed.
 * One GNU find: on trees of thousands of files one process beats thousands of round trips
 * through node's thread pool.
 */
export async function sealTree(dir: string): Promise<void> {
  await runOnHost("find", [dir, "(", "-type", "d", "-exec", "chmod", "0777", "{}", "+", ")", "-o", "(", "-type", "f", "-exec", "chmod", "a+rX,a-w,ug-s", "{}", "+", ")"]);
}

/** The mode sealTree gives an entry of find's type letter `type` that has `mode`: applied twice, the same. */
export function sealedMode(type: string, mode: number): number {
  if (type === "d") return 0o777;
  if (type !== "f") return mode;
  const readable = mode | 0o444 | (mode & 0o111 ? 0o111 : 0);
  return readable & ~0o222 & ~0o6000;
}
