import { mkdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { replaceFile, type Logger } from "@slipway/shared";
import { hostToolchains } from "@slipway/shared/sandbox";

/** Beside `releases/`, in the agent's own root-owned directory: no app can write it. */
const CACHE_FILE = "toolchains.json";
/** The background probe waits this long, so it does not compete with the app's own start. */
const REPROBE_DELAY_MS = 10_000;

interface CacheKey {
  path: string;
  execPath: string;
}

/**
 * The host's toolchains as the last start found them, when nothing says they moved. Probing every
 * python3.x on PATH (through pyenv's shims, a shell script each) takes most of a second, which an
 * agent restart should not spend before its app serves. The probe still runs, a little later;
 * `onChange` hears what it finds when that differs, and the file is rewritten for the next start.
 * Without a usable cache (first start, another PATH, a toolchain gone) the probe is awaited.
 */
export async function knownToolchains(runtimeRoot: string, logger: Logger, onChange: (toolchains: string[]) => void): Promise<string[]> {
  const file = path.join(runtimeRoot, CACHE_FILE);
  const key: CacheKey = { path: process.env.PATH ?? "", execPath: process.execPath };
  const probe = async () => {
    const found = await hostToolchains();
    await mkdir(runtimeRoot, { recursive: true });
    await replaceFile(file, JSON.stringify({ ...key, toolchains: found }));
    return found;
  };
  const cached = await readCache(file, key);
  if (!cached) return probe();
  setTimeout(() => {
    probe().then(
      (found) => {
        if (found.join("\0") === cached.join("\0")) return;
        logger.info({ toolchains: found }, "the host's toolchains changed since the agent last started");
        onChange(found);
      },
      (error) => logger.warn({ err: error }, "could not probe the host's toolchains"),
    );
  }, REPROBE_DELAY_MS).unref();
  return cached;
}

async function readCache(file: string, key: CacheKey): Promise<string[] | undefined> {
  try {
    const saved = JSON.parse(await readFile(file, "utf8")) as Partial<CacheKey> & { toolchains?: unknown };
    if (saved.path !== key.path || saved.execPath !== key.execPath || !Array.isArray(saved.toolchains)) return undefined;
    const toolchains = saved.toolchains.filter((dir): dir is string => typeof dir === "string" && path.isAbsolute(dir));
    // A toolchain removed since must not be bound: the sandbox could not be set up.
    const present = await Promise.all(toolchains.map((dir) => stat(dir).then((info) => info.isDirectory(), () => false)));
    return present.every(Boolean) && toolchains.length === saved.toolchains.length ? toolchains : undefined;
  } catch {
    return undefined;
  }
}
