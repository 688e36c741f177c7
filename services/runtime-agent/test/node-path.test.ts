import { describe, expect, it } from "vitest";
import type { BuildManifest } from "@slipway/shared";
import { withShippedNodeTools } from "../src/node-path";

const manifest = (nodeBinDir?: string): BuildManifest => ({ platformName: "nodejs", compressDestinationDir: true, other: {}, ...(nodeBinDir ? { nodeBinDir } : {}) });

describe("the Node tools a build shipped", () => {
  it("go first on the app's PATH when the manifest names them", () => {
    const env = { PATH: "/usr/bin:/bin", PORT: "1" };
    expect(withShippedNodeTools(env, "/rt/releases/b1", manifest(".slipway/node/bin"))).toEqual({ PATH: "/rt/releases/b1/.slipway/node/bin:/usr/bin:/bin", PORT: "1" });
    expect(withShippedNodeTools(env, "/rt/releases/b1", manifest())).toBe(env);
  });

  it("must lie inside the release", () => {
    for (const dir of ["../other/bin", "/usr/local/bin", "."]) {
      expect(() => withShippedNodeTools({ PATH: "/bin" }, "/rt/releases/b1", manifest(dir))).toThrow(/is not a directory of the release/);
    }
  });
});
