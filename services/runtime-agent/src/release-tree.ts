import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { stat } from "node:fs/promises";
import path from "node:path";
import { sealedMode } from "@slipway/shared";
import { runOnHost } from "@slipway/shared/sandbox";

/**
 * The filesystem work on a release tree that the host cache and each instance's copy share.
 * GNU find/chmod/cp do it: on trees of thousands of files one process beats thousands of
 * round trips through node's thread pool.
 */

/**
 * A digest of the tree's shape: each entry's path, type and mode, and for files and links their
 * size, modification time and link target. A hard-link copy has the same digest as its source,
 * so a copy whose digest matches the one taken when the source was sealed got every file, and
 * none changed since (a write changes the time; only root could set it back). `asSealed`: the
 * digest the tree has once sealTree is done with it, taken while the sealing runs (a chmod
 * changes no time or size, and a mode read before or after it seals to the same).
 */
export function treeFingerprint(dir: string, options: { asSealed?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    // NUL-separated: a file name may hold a newline.
    const child = spawn("find", [dir, "-mindepth", "1", "(", "-type", "d", "-printf", "%P\\t%y\\t%m\\0", ")", "-o", "-printf", "%P\\t%y\\t%m\\t%s\\t%T@\\t%l\\0"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const chunks: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`find ${dir} failed: ${stderr.trim()}`));
      // find lists in directory order, which a copy need not share: sort.
      let entries = Buffer.concat(chunks).toString("utf8").split("\0").filter(Boolean);
      if (options.asSealed) {
        entries = entries.map((entry) => {
          const [name, type, mode, ...rest] = entry.split("\t");
          return [name, type, sealedMode(type!, parseInt(mode!, 8)).toString(8), ...rest].join("\t");
        });
      }
      entries.sort();
      const hash = createHash("sha256");
      for (const entry of entries) hash.update(entry).update("\0");
      resolve(hash.digest("hex"));
    });
  });
}

/**
 * Copies `from` to the new directory `to`: directories created fresh, files hard-linked (the
 * same inodes), or copied whole when the two are on different filesystems.
 */
export async function linkTree(from: string, to: string): Promise<"linked" | "copied"> {
  const sameFilesystem = (await stat(from)).dev === (await stat(path.dirname(to))).dev;
  await runOnHost("cp", [sameFilesystem ? "-al" : "-a", "--", from, to]);
  return sameFilesystem ? "linked" : "copied";
}

/** Whether any file in `dir` has a hard link elsewhere: an instance's hard-link copy still uses it. */
export function hasLinkedFile(dir: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn("find", [dir, "-type", "f", "-links", "+1", "-print", "-quit"], { stdio: ["ignore", "pipe", "ignore"] });
    let found = "";
    child.stdout.on("data", (chunk: Buffer) => (found += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(found.length > 0) : reject(new Error(`find ${dir} failed (exit ${code})`))));
  });
}
