import { createHash, randomUUID } from "node:crypto";
import { access, chmod, mkdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { WorkerConfig } from "@slipway/shared";
import { runOnHost, sandboxEnvironment } from "@slipway/shared/sandbox";
import { chownTree, prepareSandbox, runCommand, type BuildSandbox } from "./sandbox";

/** Marks a tool directory as completely installed; a directory without it is never used. */
const COMPLETE = ".slipway-tool-complete";

/** Runs a command of a tool's installation inside its sandbox. */
export type ToolRun = (command: string, args: string[], options?: { env?: Record<string, string>; cwd?: string }) => Promise<void>;

export interface ToolSpec {
  /** Names the tool's directory: `uv`, `node`. */
  name: string;
  version: string;
  /**
   * What else identifies the tool's bytes (its source and their integrity): part of its cache
   * entry's name, so a tool from another source or with other bytes never stands in for it.
   */
  identity?: string;
  /** Installs the tool into `dir` (empty, writable), running whatever it must through `run`. */
  install(dir: string, run: ToolRun, sandbox: BuildSandbox, signal: AbortSignal): Promise<void>;
}

/**
 * Tools builds need but the worker's image does not carry (uv, Poetry, another Node), installed
 * once per worker host into `TOOLS_DIR` and shared by every build. The installation runs in a
 * sandbox like a build (it fetches from the package indexes), into a staging directory that is
 * then handed to root, made read-only and renamed into place: builds get it bound read-only, so
 * no build can change what the next one runs.
 */
export class ToolCache {
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    private readonly config: WorkerConfig,
    private readonly resolvConf: string,
  ) {}

  /** The tool's directory, installing it first when this host does not have it yet. */
  ensure(tool: ToolSpec, log: (line: string) => void, signal: AbortSignal): Promise<string> {
    const dir = path.join(this.config.TOOLS_DIR, toolEntryName(tool));
    let install = this.pending.get(dir);
    if (!install) {
      install = this.install(tool, dir, log, signal).finally(() => this.pending.delete(dir));
      this.pending.set(dir, install);
    }
    return install;
  }

  private async install(tool: ToolSpec, dir: string, log: (line: string) => void, signal: AbortSignal): Promise<string> {
    if (await exists(path.join(dir, COMPLETE))) return dir;
    log(`Installing ${tool.name} ${tool.version} into the worker's tool cache ...`);
    const staging = path.join(this.config.TOOLS_DIR, `.staging-${tool.name}-${tool.version}-${randomUUID().slice(0, 8)}`);
    await mkdir(staging, { recursive: true });
    try {
      const sandbox = await prepareSandbox(this.config, { kind: "tool", id: `${tool.name}-${tool.version}`, workDir: staging, resolvConf: this.resolvConf });
      await sandbox.own(staging);
      const run: ToolRun = (command, args, options = {}) =>
        runCommand(command, args, sandbox, {
          cwd: options.cwd ?? staging,
          env: { ...sandboxEnvironment(sandbox), ...options.env },
          label: `installing ${tool.name}`,
          onLine: log,
          signal,
        });
      await tool.install(staging, run, sandbox, signal);
      // From here on the tool is the worker's: root's, and nobody else may write it.
      if (this.config.SANDBOX === "on") await chownTree(staging, 0);
      await runOnHost("chmod", ["-R", "go-w", staging]);
      await chmod(staging, 0o755);
      await writeFile(path.join(staging, COMPLETE), `${tool.name} ${tool.version}\n`);
      await rename(staging, dir).catch(async (error: NodeJS.ErrnoException) => {
        // Another worker on this host finished the same tool first: theirs is as good.
        if (error.code !== "ENOTEMPTY" && error.code !== "EEXIST") throw error;
      });
      log(`Installed ${tool.name} ${tool.version}`);
      return dir;
    } finally {
      await Promise.all([rm(staging, { recursive: true, force: true }), rm(`${staging}.home`, { recursive: true, force: true })]);
    }
  }
}

/** `uv-0.13.6`, or with an identity `node-18.20.4-<12 hex of its sha256>`. */
export function toolEntryName(tool: Pick<ToolSpec, "name" | "version" | "identity">): string {
  const base = `${tool.name}-${tool.version}`;
  return tool.identity === undefined ? base : `${base}-${createHash("sha256").update(tool.identity).digest("hex").slice(0, 12)}`;
}

const exists = (file: string) => access(file).then(() => true, () => false);
