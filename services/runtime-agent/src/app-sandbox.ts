import { chmod, chown, mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { hostCacheDir, sandboxUidDir, type AgentConfig, type Logger } from "@slipway/shared";
import { claimAppUid } from "./app-uid";
import { knownToolchains } from "./toolchain-cache";
import { checkSandboxSupport, InstanceNetwork, instanceNetworkOwner, reapSandboxLeftovers, runOnHost, SANDBOX_UID_SPAN, sandboxPath, sandboxUid, writeSandboxResolvConf, type SandboxMode, type SandboxSpec } from "@slipway/shared/sandbox";

/** An instance's `APP_DATA_PATH`: beside its `releases/`, never inside one. */
export const appDataPath = (runtimeRoot: string): string => path.join(runtimeRoot, "data");

/** Where the overlays' work directories go: on the filesystem of `releases/`, never inside it. */
const overlayScratch = (runtimeRoot: string): string => path.join(runtimeRoot, "overlay-work");

/** The agent's own files inside a release directory (restore marker, profile.sh): never the app's to change. */
const AGENT_DIR = ".slipway";

/**
 * How this instance's app runs: in a sandbox as the instance's own uid, seeing only its release
 * directory and its data directory (writable) and the toolchains (read-only). An instance a host
 * agent runs has a network of its own (InstanceNetwork: the agent's proxy reaches the app at its
 * address there); one run by hand keeps the host's network, its proxy reaching it on loopback.
 */
export class AppSandbox {
  /** Interpreter prefixes releases need beyond the host's toolchains (pyenv versions a build chose). */
  private readonly extraReadOnly: string[] = [];

  private constructor(
    readonly mode: SandboxMode,
    readonly uid: number,
    private toolchains: string[],
    private readonly config: AgentConfig,
    /**
     * Whether this instance's apps see their release as an overlay over the host cache's tree
     * (no copy of it made) rather than a hard-link copy. Only a sandbox can mount one.
     */
    readonly overlay = false,
    private readonly network?: { instance: InstanceNetwork; resolvConf: string },
  ) {}

  /** Where the app's port is reached: its own network's address, or this host's loopback. */
  get appAddress(): string {
    return this.network?.instance.address ?? "127.0.0.1";
  }

  /** Removes what the sandbox holds beyond its processes: the instance's network. */
  async close(): Promise<void> {
    await this.network?.instance.close();
  }

  /** Refuses (one line) when apps cannot be sandboxed here, unless the operator said SANDBOX=off. */
  static async prepare(config: AgentConfig, logger: Logger): Promise<AppSandbox> {
    const id = `${config.APP}/${config.INSTANCE_ID}`;
    if (config.SANDBOX === "off") {
      const uid = sandboxUid("app", id, config.SANDBOX_UID_BASE);
      logger.warn("SANDBOX=off: the app runs as this agent's own user, beside its credentials. Never do this in production.");
      const sandbox = new AppSandbox("off", uid, [], config);
      await sandbox.prepareData();
      return sandbox;
    }
    let sandbox: AppSandbox | undefined;
    // A change the later probe finds applies to the app's next start.
    const toolchainsChanged = (found: string[]) => {
      if (sandbox) sandbox.toolchains = found;
    };
    // The root exists before the claim (a claim whose root is missing counts as abandoned), and
    // before the probe, which remembers there that it passed.
    await mkdir(config.RUNTIME_ROOT, { recursive: true });
    const overlayIn = config.RELEASE_LAYOUT === "auto" ? overlayScratch(config.RUNTIME_ROOT) : undefined;
    const [{ cgroups, overlay }, toolchains] = await Promise.all([
      checkSandboxSupport({ network: Boolean(config.HOST_ID) }, { rememberIn: config.RUNTIME_ROOT, ...(overlayIn ? { overlayIn } : {}) }),
      knownToolchains(config.RUNTIME_ROOT, logger, toolchainsChanged),
    ]);
    const uid = await claimAppUid(sandboxUidDir(config), id, config.RUNTIME_ROOT, config.SANDBOX_UID_BASE);
    if (!cgroups) logger.warn("cgroups are not writable here: the app gets prlimit's process limit but no memory limit");
    // Off the start's path: what it removes names no live process, so no sandbox started meanwhile.
    void reapSandboxLeftovers().then(
      (reaped) => reaped.cgroups && logger.info(reaped, "removed the cgroups of sandboxes whose agent was killed outright"),
      (error: unknown) => logger.warn({ err: error }, "could not look for sandbox leftovers"),
    );
    if (overlayIn && !overlay) logger.warn("a sandbox cannot mount an overlay here: each release directory is a hard-link copy of the host cache's tree");
    let network: { instance: InstanceNetwork; resolvConf: string } | undefined;
    if (config.HOST_ID) {
      // The uid is unique on the machine (claimed in the shared SANDBOX_UID_DIR): so is its slot.
      const slot = uid - config.SANDBOX_UID_BASE - SANDBOX_UID_SPAN / 2;
      const [instance, resolvConf] = await Promise.all([InstanceNetwork.create(instanceNetworkOwner(config.HOST_ID, hostCacheDir(config)), config.INSTANCE_ID, slot), writeSandboxResolvConf(config.RUNTIME_ROOT)]);
      network = { instance, resolvConf };
    }
    sandbox = new AppSandbox("on", uid, toolchains, config, overlay, network);
    await sandbox.prepareData();
    return sandbox;
  }

  /**
   * `$RUNTIME_ROOT/data`, the app's `APP_DATA_PATH`: outside `releases/`, so pruning and new
   * releases never touch it; the one place this instance's app keeps files across releases.
   */
  get dataPath(): string {
    return appDataPath(this.config.RUNTIME_ROOT);
  }

  /** Creates the data directory if needed; the app's uid owns it and no other sandbox may enter it. */
  async prepareData(): Promise<void> {
    await mkdir(this.dataPath, { recursive: true });
    if (this.mode === "off") return;
    await chown(this.dataPath, this.uid, this.uid);
    await chmod(this.dataPath, 0o700);
  }

  /** Removes the overlay work directories of sandboxes an earlier run of the agent left (none of its apps runs now). */
  async removeOverlayLeftovers(): Promise<void> {
    await rm(overlayScratch(this.config.RUNTIME_ROOT), { recursive: true, force: true });
  }

  /** The PATH the app starts from (before its venv). */
  get path(): string {
    return this.mode === "on" ? sandboxPath(this.toolchains) : (process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin");
  }

  /** `lower`: the host cache tree `appPath` lies over, when the release was restored as an overlay. */
  spec(appPath: string, lower?: string): SandboxSpec {
    return {
      name: `app-${this.config.APP}-${this.config.INSTANCE_ID}`,
      uid: this.uid,
      ...(lower ? { overlay: { lower, upper: appPath, scratch: overlayScratch(this.config.RUNTIME_ROOT) } } : {}),
      writable: lower ? [this.dataPath] : [appPath, this.dataPath],
      links: legacyPaths(appPath),
      readOnly: [...this.toolchains, ...this.extraReadOnly],
      ...(this.network ? { network: { namespace: this.network.instance.namespace }, resolvConf: this.network.resolvConf } : { network: "host" as const }),
      limits: { memoryBytes: this.config.APP_MEMORY_MB * 1024 * 1024, maxProcesses: this.config.APP_MAX_PROCESSES, maxFileBytes: 16 * 1024 ** 3 },
    };
  }

  /** Binds `dir` (an interpreter's prefix) read-only into this instance's apps from now on. */
  allowReading(dir: string): void {
    if (!this.toolchains.includes(dir) && !this.extraReadOnly.includes(dir)) this.extraReadOnly.push(dir);
  }

  /**
   * The release's files are the host cache's, shared with every instance on the host: they stay
   * root's and read-only. In a hard-link copy (`overlaid` false) the directories are this
   * instance's own: the app owns them and may add files or replace one (a new inode, seen here
   * only). Over an overlay the cache's directories, open to all (see sealTree), take the same
   * writes into this instance's upper directory, the release directory on the host, with no walk
   * of the tree. Either way the top directory stays root's with the sticky bit, so the agent's
   * `.slipway/` (which an operator sources as root) can be neither changed nor renamed away by the
   * app, nor can a file the release shipped at the top be swapped. Runs once, over a new release
   * directory before it is renamed into place: root's walk never meets a tree an app can change.
   */
  async own(appPath: string, overlaid = false): Promise<void> {
    const agentDir = path.join(appPath, AGENT_DIR);
    const ownDirectories = this.mode === "off" ? [] : ["-exec", "chown", "-h", `${this.uid}:${this.uid}`, "{}", "+"];
    // A copy's directories are the cache's open ones: closed again for a tree of one instance's own.
    if (!overlaid) await runOnHost("find", [appPath, "-mindepth", "1", "-path", agentDir, "-prune", "-o", "-type", "d", ...ownDirectories, "-exec", "chmod", "0755", "{}", "+"]);
    if (this.mode === "off") return;
    await chown(appPath, 0, this.uid);
    await chmod(appPath, 0o1770);
  }
}


/**
 * Where App Service's images kept an app before the build/runtime split this project reproduces:
 * the app at /home/site/wwwroot, its venv at /antenv. Startup scripts written for them
 * (`source /antenv/bin/activate`, `cd /home/site/wwwroot`) broke when apps moved to a per-instance
 * `$APP_PATH`; inside an instance's sandbox both paths lead to the release, so they keep working
 * (the build log still says how to write them with `$APP_PATH`).
 */
export function legacyPaths(appPath: string): { path: string; target: string }[] {
  return [
    { path: "/home/site/wwwroot", target: appPath },
    { path: "/antenv", target: path.join(appPath, "antenv") },
  ];
}
