import { createHash } from "node:crypto";
import { parse, stringify } from "smol-toml";

export const MANIFEST_FILE_NAME = "oryx-manifest.toml";

/**
 * The build manifest, as Oryx and Slipway write it. Oryx's own keys come first, then Slipway's.
 * Every Slipway key is optional on read, because real Oryx builds do not write them.
 */
export interface BuildManifest {
  platformName: string;
  pythonVersion?: string;
  /** The interpreter the venv was made with (Slipway's): an instance without it cannot run the release. */
  pythonInterpreterPath?: string;
  nodeVersion?: string;
  virtualEnvName?: string;
  /** Slipway: the output's directory (relative) of the Node tools the build used, first on the app's PATH. */
  nodeBinDir?: string;
  frameworks?: string[];
  compressDestinationDir: boolean;
  operationId?: string;
  sourceDirectoryInBuildContainer?: string;
  appName?: string;
  buildId?: string;
  sourceSha256?: string;
  outputFileName?: string;
  outputSha256?: string;
  outputBytes?: number;
  /** What the output unpacks to (regular files' bytes) and how many entries it holds: restores stop past either. */
  outputUnpackedBytes?: number;
  outputEntryCount?: number;
  /**
   * Slipway: the sha256 of each `outputChunkBytes` of the output file in turn. Bytes checked
   * against them can be extracted as they arrive: the packer vetted them already.
   */
  outputChunkSha256s?: string[];
  outputChunkBytes?: number;
  /** Slipway: the output was packed with the modes a restore gives it (see `sealTree`), so a trusted restore need not walk it to seal it. */
  outputModesSealed?: boolean;
  startupCommand?: string;
  buildStartedAt?: string;
  buildFinishedAt?: string;
  /** Keys this version does not know, kept so a manifest survives a read/write round trip. */
  other: Record<string, string>;
}

export class ManifestError extends Error {
  override name = "ManifestError";
}

const stringKeys = {
  PythonVersion: "pythonVersion",
  PythonInterpreterPath: "pythonInterpreterPath",
  NodeVersion: "nodeVersion",
  virtualEnvName: "virtualEnvName",
  NodeBinDir: "nodeBinDir",
  OperationId: "operationId",
  SourceDirectoryInBuildContainer: "sourceDirectoryInBuildContainer",
  AppName: "appName",
  BuildId: "buildId",
  SourceSha256: "sourceSha256",
  OutputFileName: "outputFileName",
  OutputSha256: "outputSha256",
  StartupCommand: "startupCommand",
  BuildStartedAt: "buildStartedAt",
  BuildFinishedAt: "buildFinishedAt",
} as const satisfies Record<string, keyof BuildManifest>;

type StringField = (typeof stringKeys)[keyof typeof stringKeys];

const countKeys = {
  OutputBytes: "outputBytes",
  OutputUnpackedBytes: "outputUnpackedBytes",
  OutputEntryCount: "outputEntryCount",
  OutputChunkBytes: "outputChunkBytes",
} as const satisfies Record<string, keyof BuildManifest>;

type CountField = (typeof countKeys)[keyof typeof countKeys];

const handledKeys = new Set<string>([...Object.keys(stringKeys), ...Object.keys(countKeys), "PlatformName", "Frameworks", "CompressDestinationDir", "OutputChunkSha256s", "OutputModesSealed"]);
const SHA256_HEX = /^[0-9a-f]{64}$/;

export function parseManifest(text: string): BuildManifest {
  let table: Record<string, unknown>;
  try {
    table = parse(text);
  } catch (error) {
    throw new ManifestError(`${MANIFEST_FILE_NAME} does not parse: ${(error as Error).message.split("\n")[0]}`);
  }
  // Oryx writes every value as a string; accept TOML scalars of other types the same way.
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(table)) {
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") values[key] = String(value);
  }
  const platformName = values.PlatformName;
  if (!platformName) throw new ManifestError(`${MANIFEST_FILE_NAME} has no PlatformName`);

  const manifest: BuildManifest = {
    platformName,
    compressDestinationDir: (values.CompressDestinationDir ?? "false").toLowerCase() === "true",
    other: {},
  };
  for (const [tomlKey, field] of Object.entries(stringKeys) as [string, StringField][]) {
    if (values[tomlKey] !== undefined) manifest[field] = values[tomlKey];
  }
  if (values.Frameworks) manifest.frameworks = values.Frameworks.split(",").map((f) => f.trim()).filter(Boolean);
  for (const [tomlKey, field] of Object.entries(countKeys) as [string, CountField][]) {
    if (values[tomlKey] === undefined) continue;
    const count = Number(values[tomlKey]);
    if (values[tomlKey].trim() === "" || !Number.isSafeInteger(count) || count < 0) throw new ManifestError(`${MANIFEST_FILE_NAME}: ${tomlKey} is not a count`);
    manifest[field] = count;
  }
  if (values.OutputChunkSha256s !== undefined) {
    const chunks = values.OutputChunkSha256s.split(",");
    if (!chunks.every((chunk) => SHA256_HEX.test(chunk))) throw new ManifestError(`${MANIFEST_FILE_NAME}: OutputChunkSha256s is not a list of sha256 digests`);
    manifest.outputChunkSha256s = chunks;
  }
  if (values.OutputModesSealed !== undefined) manifest.outputModesSealed = values.OutputModesSealed.toLowerCase() === "true";
  for (const [key, value] of Object.entries(values)) if (!handledKeys.has(key)) manifest.other[key] = value;
  return manifest;
}

export function serializeManifest(manifest: BuildManifest): string {
  const ordered: Record<string, string> = { PlatformName: manifest.platformName };
  const put = (key: string, value: string | undefined) => {
    if (value !== undefined) ordered[key] = value;
  };
  put("PythonVersion", manifest.pythonVersion);
  put("NodeVersion", manifest.nodeVersion);
  put("virtualEnvName", manifest.virtualEnvName);
  put("NodeBinDir", manifest.nodeBinDir);
  put("Frameworks", manifest.frameworks?.length ? manifest.frameworks.join(",") : undefined);
  put("CompressDestinationDir", String(manifest.compressDestinationDir));
  put("OperationId", manifest.operationId);
  put("SourceDirectoryInBuildContainer", manifest.sourceDirectoryInBuildContainer);
  put("AppName", manifest.appName);
  put("BuildId", manifest.buildId);
  put("SourceSha256", manifest.sourceSha256);
  put("OutputFileName", manifest.outputFileName);
  put("OutputSha256", manifest.outputSha256);
  for (const [tomlKey, field] of Object.entries(countKeys) as [string, CountField][]) put(tomlKey, manifest[field]?.toString());
  put("OutputChunkSha256s", manifest.outputChunkSha256s?.join(","));
  put("OutputModesSealed", manifest.outputModesSealed === undefined ? undefined : String(manifest.outputModesSealed));
  put("PythonInterpreterPath", manifest.pythonInterpreterPath);
  put("StartupCommand", manifest.startupCommand);
  put("BuildStartedAt", manifest.buildStartedAt);
  put("BuildFinishedAt", manifest.buildFinishedAt);
  for (const [key, value] of Object.entries(manifest.other)) if (!(key in ordered)) ordered[key] = value;
  return stringify(ordered) + "\n";
}

/**
 * The sha256 of everything the manifest records of its output file: name, digests (whole and per
 * chunk), sizes, counts and modes. The worker keeps it in the build's record in Redis, which
 * storage cannot forge: a manifest whose record matches it describes exactly what the trusted
 * packer wrote. Undefined when the manifest records no chunks (Oryx's, older Slipway ones).
 */
export function outputRecordSha256(manifest: BuildManifest): string | undefined {
  const { outputFileName, outputSha256, outputBytes, outputUnpackedBytes, outputEntryCount, outputChunkBytes, outputChunkSha256s, outputModesSealed } = manifest;
  if (!outputFileName || !outputSha256 || outputBytes === undefined || outputUnpackedBytes === undefined || outputEntryCount === undefined || !outputChunkBytes || !outputChunkSha256s) return undefined;
  const record = [outputFileName, outputSha256, outputBytes, outputUnpackedBytes, outputEntryCount, outputChunkBytes, outputChunkSha256s, outputModesSealed === true];
  return createHash("sha256").update(JSON.stringify(record)).digest("hex");
}

/** Oryx's default when a manifest names no output file but says the output is compressed. */
export const DEFAULT_OUTPUT_FILE_NAME = "output.tar.gz";
