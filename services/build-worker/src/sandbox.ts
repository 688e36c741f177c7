import { mkdir } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import type { WorkerConfig } from "@slipway/shared";
import { PASS_THROUGH } from "@slipway/shared";
import { hostToolchains, indexExceptions, runOnHost, sandboxPath, sandboxUid, spawnSandboxed, type SandboxMode, type SandboxSpec } from "@slipway/shared/sandbox";
import { BuildAborted, BuildFailure, saysDiskFull } from "./errors";

export interface RunOptions {
  cwd: string;
  /** The complete environment of the command: nothing of the worker's own is inherited. */
  env: Record<string, string>;
  /** Every output line, stdout and stderr interleaved as they arrive. */
  onLine: (line: string) => void;
  signal: AbortSignal;
  /** Says what failed, for the build's error: "pip install". */
  label: string;
}

/** How long a command gets between SIGTERM and the end of its sandbox. */
const KILL_GRACE_MS = 2000;

/**
 * Where one build's commands run: every command of the build gets a sandbox of the same shape
 * (same uid, same binds, same limits); the build tree and a private home are all it can write.
 */
export interface BuildSandbox {
  readonly mode: SandboxMode;
  readonly spec: SandboxSpec;
  /** The build's HOME (pip's and npm's caches live there): private to the build, removed with it. */
  readonly home: string;
  /** The PATH commands start from. */
  readonly path: string;
  /** Hands what the worker itself wrote (the extracted source, a restored cache layer) to the sandbox's uid. */
  own(dir: string): Promise<void>;
  /** Binds `dir` (a tool from the tool cache) read-only into the sandbox's later commands. */
  allowReading(dir: string): void;
}

export { PASS_THROUGH } from "@slipway/shared";

export async function prepareBuildSandbox(config: WorkerConfig, buildId: string, sourceDir: string, resolvConf: string): Promise<BuildSandbox> {
  return prepareSandbox(config, { kind: "build", id: buildId, workDir: sourceDir, resolvConf });
}

/**
 * A sandbox whose only writable places are `workDir` and a private home beside it (`<workDir>.home`),
 * for a build, or for installing a tool into the worker's tool cache.
 */
export async function prepareSandbox(config: WorkerConfig, options: { kind: "build" | "tool"; id: string; workDir: string; resolvConf: string }): Promise<BuildSandbox> {
  const mode = config.SANDBOX;
  const home = `${options.workDir}.home`;
  await mkdir(home, { recursive: true });
  const uid = sandboxUid("build", options.kind === "build" ? options.id : `tool:${options.id}`, config.SANDBOX_UID_BASE);
  const toolchains = mode === "on" ? await hostToolchains() : [];
  const spec: SandboxSpec = {
    name: `${options.kind}-${options.id}`,
    uid,
    writable: [options.workDir, home],
    // A local wheelhouse the operator points pip at is configuration, not build input: readable.
    readOnly: [...toolchains, ...localFindLinks(config.PIP_FIND_LINKS ?? process.env.PIP_FIND_LINKS)],
    network: "isolated",
    // The package indexes the worker is configured with stay reachable wherever they are.
    egress: await indexExceptions(PASS_THROUGH.map((key) => config[key] ?? process.env[key] ?? "")),
    limits: { memoryBytes: config.BUILD_MEMORY_MB * 1024 * 1024, maxProcesses: config.BUILD_MAX_PROCESSES, maxFileBytes: config.BUILD_MAX_FILE_MB * 1024 * 1024 },
    resolvConf: options.resolvConf,
  };
  const sandbox: BuildSandbox = {
    mode,
    spec,
    home,
    path: mode === "on" ? sandboxPath(toolchains) : (process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin"),
    own: (dir) => (mode === "on" ? chownTree(dir, uid) : Promise.resolve()),
    allowReading: (dir) => {
      if (!spec.readOnly.includes(dir)) spec.readOnly.push(dir);
    },
  };
  await sandbox.own(home);
  return sandbox;
}

/**
 * Runs one build command in the build's sandbox. Cancel and timeout end the whole sandbox, and
 * so does the command's own end: nothing it started (a double-forked daemon included) survives it.
 */
export async function runCommand(command: string, args: string[], sandbox: BuildSandbox, options: RunOptions): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const outcome = await runOnce(command, args, sandbox, options);
    if (outcome === "ran") return;
    // bwrap itself failed while setting the sandbox up (a loaded kernel has refused its loopback
    // address, say): the command never started, so starting it again is safe.
    if (attempt >= SETUP_ATTEMPTS) throw new BuildFailure(`${options.label} failed: the sandbox could not be set up (${outcome.setupError})`);
    options.onLine(`(the sandbox could not be set up: ${outcome.setupError}; trying again)`);
  }
}

const SETUP_ATTEMPTS = 3;
/** What bwrap prints when it fails before the command runs. */
const BWRAP_ERROR = /^bwrap: /;

function runOnce(command: string, args: string[], sandbox: BuildSandbox, options: RunOptions): Promise<"ran" | { setupError: string }> {
  return new Promise((resolve, reject) => {
    if (options.signal.aborted) return reject(abortError(options.signal));
    const child = spawnSandboxed({ command, args, cwd: options.cwd, env: options.env }, sandbox.spec, sandbox.mode);
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      child.terminate("SIGTERM");
      killTimer = setTimeout(() => child.kill(), KILL_GRACE_MS);
    };
    options.signal.addEventListener("abort", onAbort, { once: true });

    const lines = [createInterface({ input: child.stdout }), createInterface({ input: child.stderr })];
    const printed: string[] = [];
    let diskFull = false;
    for (const reader of lines) {
      reader.on("line", (line: string) => {
        if (printed.length < 2) printed.push(line);
        diskFull ||= saysDiskFull(line);
        options.onLine(line);
      });
    }
    const outputDone = Promise.all(lines.map((reader) => new Promise((r) => reader.once("close", r))));

    void child.exited.then(async (exit) => {
      options.signal.removeEventListener("abort", onAbort);
      if (killTimer) clearTimeout(killTimer);
      await outputDone;
      if (exit.survivorsKilled > 0) options.onLine(`(${exit.survivorsKilled} processes ${options.label} left running were killed)`);
      if (options.signal.aborted) reject(abortError(options.signal));
      else if (exit.limitReason) reject(new BuildFailure(`${options.label} failed: ${exit.limitReason}`));
      else if (exit.code === 0) resolve("ran");
      else if (sandbox.mode === "on" && exit.code === 1 && printed.length === 1 && BWRAP_ERROR.test(printed[0]!)) resolve({ setupError: printed[0]! });
      else if (exit.code === null && exit.signal === null) reject(new BuildFailure(`${options.label}: could not start ${command}`));
      else reject(new BuildFailure(`${options.label} failed (${exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`})${diskFull ? ": No space left on device" : ""}`));
    });
  });
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof BuildAborted ? signal.reason : new BuildAborted("canceled", "the build was canceled");
}

/** Absolute directories among PIP_FIND_LINKS (URLs stay URLs: the sandbox's network reaches them). */
function localFindLinks(value: string | undefined): string[] {
  return (value ?? "")
    .split(/\s+/)
    .map((entry) => entry.replace(/^file:\/\//, ""))
    .filter((entry) => path.isAbsolute(entry));
}

export function chownTree(dir: string, uid: number): Promise<void> {
  // -h and no -L: links are re-owned themselves, never followed out of the tree.
  return runOnHost("chown", ["-R", "-h", `${uid}:${uid}`, dir]);
}

