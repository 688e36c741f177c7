import { chmod, chown, mkdir } from "node:fs/promises";
import path from "node:path";
import { sandboxUidDir, type AgentConfig, type Logger } from "@slipway/shared";
import { claimAppUid } from "./app-uid";
import { knownToolchains } from "./toolchain-cache";
import { checkSandboxSupport, runOnHost, sandboxPath, sandboxUid, type SandboxMode, type SandboxSpec } from "@slipway/shared/sandbox";

/** An instance's `APP_DATA_PATH`: beside its `releases/`, never inside one. */
export const appDataPath = (runtimeRoot: string): string => path.join(runtimeRoot, "data");

/** The agent's own files inside a release directory (restore marker, profile.sh): never the app's to change. */
const AGENT_DIR = ".slipway";

/**
 * How this instance's app runs: in a sandbox as the instance's own uid, seeing only its release
 * directory and its data directory (writable) and the toolchains (read-only), with the host's
 * network so the agent's proxy reaches it.
 */
export class AppSandbox {
  /** Interpreter prefixes releases need beyond the host's toolchains (pyenv versions a build chose). */
  private readonly extraReadOnly: string[] = [];

  private constructor(
    readonly mode: SandboxMode,
    readonly uid: number,
    private toolchains: string[],
    private readonly config: AgentConfig,
  ) {}

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
    const [{ cgroups }, toolchains] = await Promise.all([
      checkSandboxSupport({ network: false }, { rememberIn: config.RUNTIME_ROOT }),
      knownToolchains(config.RUNTIME_ROOT, logger, toolchainsChanged),
    ]);
    const uid = await claimAppUid(sandboxUidDir(config), id, config.RUNTIME_ROOT, config.SANDBOX_UID_BASE);
    if (!cgroups) logger.warn("cgroups are not writable here: the app gets prlimit's process limit but no memory limit");
    sandbox = new AppSandbox("on", uid, toolchains, config);
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

  /** The PATH the app starts from (before its venv). */
  get path(): string {
    return this.mode === "on" ? sandboxPath(this.toolchains) : (process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin");
  }

  spec(appPath: string): SandboxSpec {
    return {
      name: `app-${this.config.APP}-${this.config.INSTANCE_ID}`,
      uid: this.uid,
      writable: [appPath, this.dataPath],
      readOnly: [...this.toolchains, ...this.extraReadOnly],
      network: "host",
      limits: { memoryBytes: this.config.APP_MEMORY_MB * 1024 * 1024, maxProcesses: this.config.APP_MAX_PROCESSES, maxFileBytes: 16 * 1024 ** 3 },
    };
  }

  /** Binds `dir` (an interpreter's prefix) read-only into this instance's apps from now on. */
  allowReading(dir: string): void {
    if (!this.toolchains.includes(dir) && !this.extraReadOnly.includes(dir)) this.extraReadOnly.push(dir);
  }

  /**
   * The release's files are hard links to the host cache's, shared with every instance on the
   * host: they stay root's and read-only, never chowned. The directories are this instance's own,
   * so the app owns them and may add files or replace one (a new inode, seen here only), but the
   * top directory stays root's with the sticky bit, so the agent's `.slipway/` (which an operator
   * sources as root) can be neither changed nor renamed away by the app, nor can a file the
   * release shipped at the top be swapped.
   */
  async own(appPath: string): Promise<void> {
    if (this.mode === "off") return;
    const agentDir = path.join(appPath, AGENT_DIR);
    await runOnHost("find", [appPath, "-mindepth", "1", "-path", agentDir, "-prune", "-o", "-type", "d", "-exec", "chown", `${this.uid}:${this.uid}`, "{}", "+"]);
    await chown(appPath, 0, this.uid);
    await chmod(appPath, 0o1770);
  }
}

