import type { RunOptions } from "../sandbox";
import type { ToolSpec } from "../tools";

/** Names one dependency layer and everything that decides its content. */
export interface CacheKey {
  /** What the layer is: "antenv", "node_modules". */
  layer: string;
  /** Everything that decides the layer's content: lock file text, runtime version, ... */
  inputs: Record<string, string>;
}

/** The dependency cache as a platform sees it. */
export interface LayerCache {
  /** Restores the layer into `dir` (which must not exist yet); answers whether it did. */
  restore(key: CacheKey, dir: string): Promise<boolean>;
  /** Saves `dir` as the layer for `key`; a failure is logged, never fatal. */
  save(key: CacheKey, dir: string): Promise<void>;
}

/** What a platform gets to build with. */
export interface PlatformContext {
  /** The extracted source; the build writes its output (a venv, node_modules) in place. */
  sourceDir: string;
  /** The environment every build command starts from: clean, plus pass-through and build options. */
  baseEnv: Record<string, string>;
  /** Build options: the repo's build.env overridden by the app's buildEnv (PYTHON_VERSION, ...). */
  options: Record<string, string>;
  cache: LayerCache;
  /** A tool from the worker's tool cache (installed on first use), readable by the build's later commands. */
  tool: (spec: ToolSpec) => Promise<string>;
  /** Binds a host directory (the prefix of the interpreter the build chose) read-only into the build's later commands. */
  allowReading: (dir: string) => void;
  /** Where the worker's operator installed language runtimes beyond those on its PATH. */
  toolchains: { pythonInstallsDir?: string };
  log: (line: string) => void;
  /** Times `work` as a phase of its own in the build's record ("framework steps"), apart from the install around it. */
  phase: <T>(name: string, work: () => Promise<T>) => Promise<T>;
  /** The app's own startupCommand as the build started: a server it names is installed if the app lacks it. */
  startupCommand?: string;
  /** Runs a command in the build's sandbox, its output in the log (and seen by `watch`, which reads why it failed). */
  run: (command: string, args: string[], options?: Partial<Pick<RunOptions, "env" | "cwd" | "label">> & { watch?: (line: string) => void }) => Promise<void>;
}

/** What a platform reports for the manifest. */
export interface PlatformResult {
  /** Oryx's `PlatformName`: "python" or "nodejs". */
  name: string;
  version: string;
  /** Oryx's own per-platform manifest keys. */
  manifest: { pythonVersion?: string; pythonInterpreterPath?: string; nodeVersion?: string; virtualEnvName?: string; nodeBinDir?: string };
  frameworks: string[];
  startupCommand?: string;
}

/**
 * "strong": a marker file this platform owns (requirements.txt, package.json).
 * "weak": only a hint (a stray *.py), used when no platform is strongly detected.
 */
export type Detection = "strong" | "weak" | false;

export interface Platform {
  readonly name: string;
  detect(sourceDir: string): Promise<Detection>;
  build(ctx: PlatformContext): Promise<PlatformResult>;
}
