import type { RunOptions } from "../sandbox";

/** What a platform gets to build with. */
export interface PlatformContext {
  /** The extracted source; the build writes its output (a venv, node_modules) in place. */
  sourceDir: string;
  /** The environment every build command starts from: clean, with the pass-through variables. */
  baseEnv: Record<string, string>;
  log: (line: string) => void;
  run: (command: string, args: string[], options?: Partial<Pick<RunOptions, "env" | "cwd" | "label">>) => Promise<void>;
}

/** What a platform reports for the manifest. */
export interface PlatformResult {
  /** Oryx's `PlatformName`: "python" or "nodejs". */
  name: string;
  version: string;
  /** Extra Oryx manifest keys (`PythonVersion`, `virtualEnvName`, ...), as manifest fields. */
  manifest: { pythonVersion?: string; nodeVersion?: string; virtualEnvName?: string };
  frameworks: string[];
  startupCommand?: string;
}

export interface Platform {
  readonly name: string;
  detect(sourceDir: string): Promise<boolean>;
  build(ctx: PlatformContext): Promise<PlatformResult>;
}
