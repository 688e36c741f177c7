import path from "node:path";
import type { PythonInterpreter } from "@slipway/shared/sandbox";
import type { ToolSpec } from "../tools";
import type { PlatformContext } from "./platform";
import { array, normalizeName, parseTomlFile, pythonTool, table, type InstallTarget, type Plan, type Pyproject } from "./python-install-common";
import { defaultPython } from "./python-versions";

export const UV_VERSION = "0.13.6";

/**
 * The sha256 of each Linux wheel of uv UV_VERSION as PyPI serves it (x86_64 and aarch64, glibc and
 * musl): the tool every requirements build runs is installed only from one of these files.
 */
export const UV_WHEEL_SHA256 = [
  "22759b8895e1103578de6fb4cd27e94b4399d021023378d29f01333717751fba",
  "7ec5486476d67a4214c460b5492393ee2300d84e1de17b293100a019b413568b",
  "d1efed1d15102ffdbf5e0fd49a440643dda2d921a2ad856792ae42ccd43c253f",
];

/** uv.lock: `uv sync --locked` into the venv, the project itself (when a package) after the dependencies. */
export function uvPlan(ctx: PlatformContext, target: InstallTarget, pyproject: Pyproject, lock: string): Plan {
  const packaged = uvIsPackage(pyproject);
  const uvCommand = uvBinary(ctx);
  const env = { ...uvEnvironment(target), UV_PROJECT_ENVIRONMENT: target.venv };
  // Exactness is pip's venv plus the lock: --inexact keeps pip (the runtime and later steps use it).
  const sync = ["sync", "--locked", "--no-default-groups", "--inexact", "--no-editable", ...(noIndex(target.env) ? ["--no-index"] : [])];
  return {
    installer: "uv",
    inputs: { installer: `uv ${UV_VERSION}`, lock },
    packages: uvLockPackages(lock),
    dependencies: async () => {
      const command = await uvCommand();
      ctx.log(`Installing dependencies from uv.lock with uv ${UV_VERSION} (uv sync --locked --no-install-project) ...`);
      await ctx.run(command, [...sync, "--no-install-workspace"], { env, label: "uv sync" });
    },
    verify: async () => {
      const command = await uvCommand();
      ctx.log("Checking uv.lock against pyproject.toml and the restored venv (uv sync --locked --no-install-project) ...");
      await ctx.run(command, [...sync, "--no-install-workspace"], { env, label: "uv sync" });
    },
    project: async () => {
      if (!packaged) {
        ctx.log("The project is not a package (no [build-system], or tool.uv.package = false): installed its dependencies only");
        return;
      }
      const command = await uvCommand();
      ctx.log("Installing the project itself, not editable (uv sync --no-editable) ...");
      await ctx.run(command, sync, { env, label: "uv sync (the project)" });
    },
  };
}

/** uv from the tool cache, installed there on first use; answers the same promise every call. */
export function uvBinary(ctx: PlatformContext): () => Promise<string> {
  let uv: Promise<string> | undefined;
  return () => (uv ??= (async () => path.join(await ctx.tool(uvTool(await defaultPython(ctx))), "bin", "uv"))());
}

/** How every uv command of a build runs: the build's interpreter and index settings, copies, bytecode. */
export function uvEnvironment(target: InstallTarget): Record<string, string> {
  return {
    ...target.env,
    UV_PYTHON: target.python.command,
    // The build's interpreter only: uv never downloads one, nor picks another.
    UV_PYTHON_DOWNLOADS: "never",
    UV_PYTHON_PREFERENCE: "only-system",
    // Copies, not links into uv's cache in the build's home (which goes with the build).
    UV_LINK_MODE: "copy",
    UV_COMPILE_BYTECODE: "1",
    UV_NO_PROGRESS: "1",
    // The host's trust store (an operator's proxy CA), as pip's requests does, not uv's bundled roots.
    UV_SYSTEM_CERTS: "1",
    ...uvIndexSettings(target.env),
  };
}

/** uv's own rule: `tool.uv.package` when set, else whether the project has a build system. */
export function uvIsPackage(pyproject: Pyproject): boolean {
  const explicit = table(table(pyproject.tool).uv).package;
  return typeof explicit === "boolean" ? explicit : pyproject["build-system"] !== undefined;
}

/** The build's index settings, in uv's words (uv reads no PIP_* variable); PIP_NO_INDEX is `--no-index`. */
function uvIndexSettings(env: Record<string, string>): Record<string, string> {
  const settings: Record<string, string> = {};
  if (env.PIP_INDEX_URL) settings.UV_DEFAULT_INDEX = env.PIP_INDEX_URL;
  if (env.PIP_EXTRA_INDEX_URL) settings.UV_INDEX = env.PIP_EXTRA_INDEX_URL;
  // pip separates find-links with whitespace, uv with commas.
  if (env.PIP_FIND_LINKS) settings.UV_FIND_LINKS = env.PIP_FIND_LINKS.split(/\s+/).filter(Boolean).join(",");
  if (env.PIP_TRUSTED_HOST) settings.UV_INSECURE_HOST = env.PIP_TRUSTED_HOST;
  return settings;
}

/** PIP_NO_INDEX, which uv takes only as a flag. */
export const noIndex = (env: Record<string, string>) => !!env.PIP_NO_INDEX && !/^(0|false|no|off)$/i.test(env.PIP_NO_INDEX);

/** The packages the project's main dependencies lock to: those reachable from the project's own entry. */
export function uvLockPackages(lock: string): string[] {
  const packages = (array(parseTomlFile(lock, "uv.lock").package) as Record<string, unknown>[]).filter((p) => typeof p.name === "string");
  const byName = new Map(packages.map((p) => [normalizeName(p.name as string), p]));
  const root = packages.find((p) => {
    const source = table(p.source);
    return source.editable === "." || source.virtual === ".";
  });
  if (!root) return [...byName.keys()];
  const seen = new Set<string>();
  const queue = [root];
  while (queue.length) {
    for (const dep of array(queue.pop()!.dependencies) as Record<string, unknown>[]) {
      const name = typeof dep.name === "string" ? normalizeName(dep.name) : undefined;
      if (!name || seen.has(name)) continue;
      seen.add(name);
      const next = byName.get(name);
      if (next) queue.push(next);
    }
  }
  seen.delete(normalizeName(root.name as string));
  return [...seen];
}

export function uvTool(base: PythonInterpreter): ToolSpec {
  // uv is one static binary: the venv it comes in only carries it.
  return { ...pythonTool("uv", UV_VERSION, base, [`uv==${UV_VERSION}`], UV_WHEEL_SHA256), version: UV_VERSION };
}
