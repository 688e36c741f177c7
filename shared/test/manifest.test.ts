import { describe, expect, it } from "vitest";
import { ManifestError, outputRecordSha256, parseManifest, serializeManifest, type BuildManifest } from "../src/manifest";

const oryxPython = `PythonVersion="3.10.8"
pythonBuildCommandsFile="/tmp/zipdeploy/extracted/oryx-build-commands.txt"
virtualEnvName="antenv"
OperationId="0e6c33fab7f06ded"
SourceDirectoryInBuildContainer="/tmp/8db55bf3173cc79"
PlatformName="python"
CompressDestinationDir="true"
`;

const oryxNode = `NodeVersion="20.11.1"
nodeBuildCommandsFile="/tmp/zipdeploy/extracted/oryx-build-commands.txt"
Frameworks="Express"
compressedNodeModulesFile="node_modules.tar.gz"
OperationId="52b2db98d29329e8"
SourceDirectoryInBuildContainer="/tmp/8dc468296f8427e"
PlatformName="nodejs"
CompressDestinationDir="false"
`;

describe("manifest", () => {
  it("reads a manifest written by Oryx for a Python app", () => {
    const manifest = parseManifest(oryxPython);
    expect(manifest).toMatchObject({
      platformName: "python",
      pythonVersion: "3.10.8",
      virtualEnvName: "antenv",
      compressDestinationDir: true,
      operationId: "0e6c33fab7f06ded",
      sourceDirectoryInBuildContainer: "/tmp/8db55bf3173cc79",
    });
    expect(manifest.buildId).toBeUndefined();
    expect(manifest.outputSha256).toBeUndefined();
    expect(manifest.other.pythonBuildCommandsFile).toBe("/tmp/zipdeploy/extracted/oryx-build-commands.txt");
  });

  it("reads a manifest written by Oryx for a Node app", () => {
    const manifest = parseManifest(oryxNode);
    expect(manifest).toMatchObject({ platformName: "nodejs", nodeVersion: "20.11.1", frameworks: ["Express"], compressDestinationDir: false });
    expect(manifest.other.compressedNodeModulesFile).toBe("node_modules.tar.gz");
  });

  it("writes Oryx keys first, then Slipway's, as flat string keys, and reads them back", () => {
    const manifest: BuildManifest = {
      platformName: "python",
      pythonVersion: "3.11.7",
      virtualEnvName: "antenv",
      frameworks: ["Flask", "Django"],
      compressDestinationDir: true,
      operationId: "b-1",
      sourceDirectoryInBuildContainer: "/tmp/slipway/build/b-1",
      appName: "hello",
      buildId: "b-1",
      sourceSha256: "a".repeat(64),
      outputFileName: "output.tar.gz",
      outputSha256: "b".repeat(64),
      outputBytes: 12345,
      pythonInterpreterPath: "/opt/python/3.11.7/bin/python3",
      startupCommand: 'gunicorn --bind "0.0.0.0:$PORT" app:app',
      buildStartedAt: "2026-11-25T02:31:54Z",
      buildFinishedAt: "2026-11-25T02:32:54Z",
      other: {},
    };
    const text = serializeManifest(manifest);
    const keys = text.trim().split("\n").map((line) => line.split(" = ")[0]);
    expect(keys.slice(0, 7)).toEqual(["PlatformName", "PythonVersion", "virtualEnvName", "Frameworks", "CompressDestinationDir", "OperationId", "SourceDirectoryInBuildContainer"]);
    expect(text).toContain('OutputBytes = "12345"');
    expect(text).toContain('CompressDestinationDir = "true"');
    expect(text).toContain('Frameworks = "Flask,Django"');
    expect(text).toContain('PythonInterpreterPath = "/opt/python/3.11.7/bin/python3"');
    expect(parseManifest(text)).toEqual(manifest);
  });

  it("rejects text that is not TOML, and a manifest with no platform", () => {
    expect(() => parseManifest("PlatformName = \"python\"\nthis is not toml")).toThrow(ManifestError);
    expect(() => parseManifest('PythonVersion = "3.11"')).toThrow(/PlatformName/);
    expect(() => parseManifest('PlatformName = "python"\nOutputBytes = "lots"')).toThrow(/OutputBytes/);
  });
});

describe("outputRecordSha256", () => {
  const recorded: BuildManifest = {
    platformName: "python",
    compressDestinationDir: true,
    outputFileName: "output.tar.zst",
    outputSha256: "a".repeat(64),
    outputBytes: 5_000_000,
    outputUnpackedBytes: 9_000_000,
    outputEntryCount: 120,
    outputChunkBytes: 4 * 1024 * 1024,
    outputChunkSha256s: ["b".repeat(64), "c".repeat(64)],
    outputModesSealed: true,
    other: {},
  };

  it("survives the manifest's round trip through TOML", () => {
    const reread = parseManifest(serializeManifest(recorded));
    expect(reread).toMatchObject({ outputChunkSha256s: recorded.outputChunkSha256s, outputChunkBytes: recorded.outputChunkBytes, outputModesSealed: true });
    expect(outputRecordSha256(reread)).toBe(outputRecordSha256(recorded));
  });

  it("changes with every field of the output's record, and is undefined without chunk digests", () => {
    const changes: Partial<BuildManifest>[] = [
      { outputFileName: "output.tar.gz" },
      { outputSha256: "d".repeat(64) },
      { outputBytes: 5_000_001 },
      { outputUnpackedBytes: 1 },
      { outputEntryCount: 121 },
      { outputChunkBytes: 1024 },
      { outputChunkSha256s: ["c".repeat(64), "b".repeat(64)] },
      { outputModesSealed: false },
    ];
    const digests = new Set([outputRecordSha256(recorded), ...changes.map((change) => outputRecordSha256({ ...recorded, ...change }))]);
    expect(digests.size).toBe(changes.length + 1);
    expect(outputRecordSha256({ ...recorded, startupCommand: "gunicorn app:app" })).toBe(outputRecordSha256(recorded));
    expect(outputRecordSha256({ ...recorded, outputChunkSha256s: undefined })).toBeUndefined();
  });

  it("refuses chunk digests that are not sha256", () => {
    expect(() => parseManifest(`PlatformName="python"\nOutputChunkSha256s="abc,def"\n`)).toThrow(/OutputChunkSha256s is not a list of sha256 digests/);
  });
});
