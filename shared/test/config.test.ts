import { describe, expect, it } from "vitest";
import { ConfigError, hostCacheDir, loadAgentConfig, loadApiConfig, loadWorkerConfig } from "../src/config";

const base = { REDIS_URL: "redis://127.0.0.1:6379", S3_ENDPOINT: "http://127.0.0.1:9000", S3_ACCESS_KEY: "k", S3_SECRET_KEY: "s" };

describe("config", () => {
  it("fills documented defaults", () => {
    const api = loadApiConfig({ ...base, API_TOKEN: "t" });
    expect(api).toMatchObject({ API_PORT: 8080, API_HOST: "0.0.0.0", S3_BUCKET: "slipway", MAX_SOURCE_BYTES: 512 * 1024 * 1024, LOG_LEVEL: "info" });
    expect(loadApiConfig({ ...base, API_HOST: "127.0.0.1" }).API_TOKEN).toBeUndefined();
    expect(loadWorkerConfig(base)).toMatchObject({ WORKER_CONCURRENCY: 1, SCRATCH_DIR: "/tmp/slipway/build" });
    expect(loadAgentConfig({ ...base, APP: "demo", INSTANCE_ID: "i-1", PORT: "8081", RUNTIME_ROOT: "/srv" })).toMatchObject({
      PORT: 8081,
      HEALTH_PATH: "/",
      KEEP_RELEASES: 2,
    });
  });

  it("fails with one line naming the variable", () => {
    expect(() => loadApiConfig({ ...base, REDIS_URL: "localhost:6379" })).toThrow(/^invalid configuration: REDIS_URL must be a URL/);
    expect(() => loadApiConfig({ ...base, API_PORT: "eighty" })).toThrow(ConfigError);
    expect(() => loadWorkerConfig({ ...base, S3_SECRET_KEY: undefined })).toThrow("invalid configuration: S3_SECRET_KEY is required");
    expect(() => loadAgentConfig({ ...base, APP: "Bad_Name", INSTANCE_ID: "i", PORT: "1", RUNTIME_ROOT: "/x" })).toThrow(/APP must be a valid app name/);
    try {
      loadApiConfig({});
    } catch (error) {
      expect((error as Error).message).not.toContain("\n");
    }
  });

  it("puts the agents' host cache beside RUNTIME_ROOT unless HOST_CACHE_DIR, an absolute path, says where", () => {
    const agent = { ...base, APP: "demo", INSTANCE_ID: "i-1", PORT: "8081" };
    expect(hostCacheDir(loadAgentConfig({ ...agent, RUNTIME_ROOT: "/srv/slipway/demo-i-1" }))).toBe("/srv/slipway/host-cache");
    expect(hostCacheDir(loadAgentConfig({ ...agent, RUNTIME_ROOT: "/srv/slipway/demo-i-1", HOST_CACHE_DIR: "/var/cache/releases" }))).toBe("/var/cache/releases");
    expect(() => loadAgentConfig({ ...agent, RUNTIME_ROOT: "/srv", HOST_CACHE_DIR: "cache" })).toThrow("invalid configuration: HOST_CACHE_DIR must be an absolute path");
  });

  it("treats empty variables as unset", () => {
    expect(loadApiConfig({ ...base, API_HOST: "::1", API_TOKEN: "" }).API_TOKEN).toBeUndefined();
    expect(() => loadApiConfig({ ...base, API_TOKEN: "" })).toThrow(/API_TOKEN is required/);
  });
});
