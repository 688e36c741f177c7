import { execFile } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { accessSync, constants } from "node:fs";
import { access, chmod, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { ConfigError } from "../config";
import { replaceFile } from "../replace-file";
import { cgroupsUsable } from "./cgroup";
import { spawnSandboxed } from "./spawn";

/** Size of the host uid range sandboxes take their uids from: builds the lower half, apps the upper. */
export const SANDBOX_UID_SPAN = 65_536;

/**
 * The host uid a sandbox runs as: derived from what it runs (a build id, an app instance), so
 * concurrent sandboxes, on one host or several, almost never share one, and none is the platform's.
 * `step` walks on from it, through its half of the range, when a host finds it taken.
 */
export function sandboxUid(kind: "build" | "app", id: string, base: number, step = 0): number {
  const half = SANDBOX_UID_SPAN / 2;
  const hash = createHash("sha256").update(`${kind}\0${id}`).digest().readUInt32BE(0) % half;
  return base + (kind === "app" ? half : 0) + ((hash + step) % half);
}

/** Where `command` is found on PATH as an executable (looked up here: a shell per command cost a start ~10 ms each). */
function which(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (!dir) continue;
    try {
      accessSync(path.join(dir, command), constants.X_OK);
      return path.join(dir, command);
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

const has = (command: string) => which(command) !== undefined;

const resolvedCommands = new Map<string, string>();

/**
 * The absolute path of `command` on this service's own PATH: what runs as root to set a sandbox
 * up is never looked up on the PATH of the environment it runs with (node's spawn would search the
 * app's, whose first directory is the app's own venv).
 */
export function hostCommand(command: string): string {
  let found = resolvedCommands.get(command);
  if (!found) {
    found = which(command);
    if (!found) throw new SandboxUnavailableError(`sandbox unavailable: ${command} not installed`);
    resolvedCommands.set(command, found);
  }
  return found;
}

/**
 * Why sandboxes cannot run here, in one line, or undefined when they can. Checked at start-up by
 * every service that runs untrusted code, which then refuses to start rather than run it bare.
 */
export async function sandboxUnavailable(needs: { network: boolean }): Promise<string | undefined> {
  return toolsMissing(needs) ?? (await namespacesUnavailable(needs));
}

/** Why bwrap cannot set a sandbox up here, found by starting one; undefined when it can. */
async function namespacesUnavailable(needs: { network: boolean }): Promise<string | undefined> {
  const probe = await bwrapProbe(["--unshare-pid", "--unshare-ipc", "--unshare-uts", ...(needs.network ? ["--unshare-net"] : []), "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]);
  if (probe.status !== 0) {
    const reason = (probe.stderr || probe.error || `exit ${probe.status}`).trim().split("\n").pop();
    return `sandbox unavailable: bwrap cannot create namespaces here (${reason}); a container needs --cap-add SYS_ADMIN (or --privileged) and an unconfined seccomp/AppArmor profile`;
  }
  return undefined;
}

/** What the namespace probe needs and cannot be remembered: the tools there, and root. */
function toolsMissing(needs: { network: boolean }): string | undefined {
  const missing = ["bwrap", "setpriv", "prlimit", "bash", ...(needs.network ? ["slirp4netns", "nsenter", "iptables-restore"] : [])].filter((command) => !has(command));
  if (missing.length) return `sandbox unavailable: ${missing.join(", ")} not installed (Debian: bubblewrap, util-linux, bash${needs.network ? ", slirp4netns, iptables" : ""})`;
  if (process.getuid?.() !== 0) return "sandbox unavailable: the service must run as root to give each sandbox its own unprivileged uid";
  return undefined;
}

/** How long the probe sandbox may take: it runs `true`, so only a host in trouble comes near. */
const PROBE_TIMEOUT_MS = 30_000;

/**
 * Runs bwrap off the event loop, bounded: a synchronous spawn that hung would hold the whole
 * service, a stop signal included.
 */
function bwrapProbe(args: string[]): Promise<{ status: number | null; stderr: string; error?: string }> {
  return new Promise((resolve) => {
    execFile("bwrap", args, { encoding: "utf8", timeout: PROBE_TIMEOUT_MS, killSignal: "SIGKILL" }, (error, _stdout, stderr) => {
      if (!error) return resolve({ status: 0, stderr });
      const failed = error as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
      if (failed.killed) return resolve({ status: null, stderr, error: `no answer within ${PROBE_TIMEOUT_MS / 1000} s` });
      resolve({ status: typeof failed.code === "number" ? failed.code : null, stderr, error: failed.message });
    });
  });
}

/**
 * Throws one line when sandboxes cannot run. Answers whether per-sandbox cgroups (memory and
 * process limits) work too: without them only prlimit's per-uid process and file-size limits apply;
 * and, given `overlayIn` (a directory on the filesystem of the overlays' upper directories),
 * whether a sandbox can mount an overlay there.
 */
export async function checkSandboxSupport(needs: { network: boolean }, options: { rememberIn?: string; overlayIn?: string } = {}): Promise<{ cgroups: boolean; overlay: boolean }> {
  const refuse = (reason: string) => new SandboxUnavailableError(`${reason}; set SANDBOX=off to run untrusted code without one (not for production)`);
  const missing = toolsMissing(needs);
  if (missing) throw refuse(missing);
  const file = options.rememberIn && path.join(options.rememberIn, PROBE_FILE);
  const key = file ? await probeKey(needs, options.overlayIn) : undefined;
  if (file && key) {
    const saved = await readFile(file, "utf8").then((text) => JSON.parse(text) as { key?: string; cgroups?: unknown; overlay?: unknown }, () => undefined);
    if (saved?.key === key && typeof saved.cgroups === "boolean" && typeof saved.overlay === "boolean") return { cgroups: saved.cgroups, overlay: saved.overlay };
  }
  const reason = await namespacesUnavailable(needs);
  if (reason) throw refuse(reason);
  const found = { cgroups: await cgroupsUsable(), overlay: options.overlayIn ? await overlayUsable(options.overlayIn) : false };
  if (file && key) await replaceFile(file, JSON.stringify({ key, ...found })).catch(() => undefined);
  return found;
}

/** Where `checkSandboxSupport` remembers a probe that passed. */
const PROBE_FILE = "sandbox-probe.json";

/**
 * What a passed probe holds for: this boot of the host (namespaces, seccomp and cgroups are
 * settled at boot), the same bwrap executable, and the same needs. The probe starts a sandbox,
 * tens of milliseconds an agent restart would otherwise spend before its app serves.
 */
async function probeKey(needs: { network: boolean }, overlayIn: string | undefined): Promise<string | undefined> {
  const bootId = await readFile("/proc/sys/kernel/random/boot_id", "utf8").catch(() => undefined);
  const bwrap = which("bwrap");
  if (!bootId || !bwrap) return undefined;
  const info = await stat(bwrap).catch(() => undefined);
  if (!info) return undefined;
  return [bootId.trim(), `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`, needs.network ? "net" : "nonet", `overlay:${overlayIn ?? "-"}`].join("/");
}

export class SandboxUnavailableError extends ConfigError {
  override name = "SandboxUnavailableError";
}

/**
 * Whether a sandbox can mount an overlay here (a kernel with overlayfs, an upper directory on a
 * filesystem overlay accepts: not overlayfs itself, as in a container's own layer). Tried once
 * with a real sandbox, as nobody, in a scratch directory of `dir` that is removed afterwards.
 */
export async function overlayUsable(dir: string): Promise<boolean> {
  const probe = path.join(dir, `.overlay-probe-${randomUUID().slice(0, 8)}`);
  try {
    const [lower, upper] = [path.join(probe, "lower"), path.join(probe, "upper")];
    await mkdir(lower, { recursive: true });
    await mkdir(upper);
    await writeFile(path.join(lower, "shipped"), "");
    // The root of the merged tree is the upper directory's: open to the probe's uid, as own() opens it to an app's.
    await chmod(upper, 0o1777);
    const run = { command: "/bin/sh", args: ["-c", "test -e shipped && : > written"], cwd: upper, env: { PATH: "/usr/bin:/bin" } };
    const limits = { memoryBytes: 64 * 1024 ** 2, maxProcesses: 64, maxFileBytes: 1024 ** 2 };
    const overlay = { lower, upper, scratch: path.join(probe, "scratch") };
    const exit = await spawnSandboxed(run, { name: "overlay-probe", uid: NOBODY, writable: [], readOnly: [], network: "host", limits, overlay }, "on").exited;
    return exit.code === 0 && (await exists(path.join(upper, "written"))) && !(await exists(path.join(lower, "written")));
  } catch {
    return false;
  } finally {
    await rm(probe, { recursive: true, force: true });
  }
}

const NOBODY = 65534;
const exists = (file: string) => access(file).then(() => true, () => false);
