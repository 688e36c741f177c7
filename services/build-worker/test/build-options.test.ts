import { describe, expect, it } from "vitest";
import { parseBuildEnv } from "../src/build-options";
import { requirementNames } from "../src/platforms/python";
import { parseRequestedVersion } from "../src/platforms/python-versions";

describe("build options", () => {
  it("parses build.env lines, quotes, export and comments, and reports the rest", () => {
    const { values, ignored } = parseBuildEnv(`# comment\nA=1\nexport B="two words"\nC='x=y'\n\nnot an assignment\n=nokey\n`);
    expect(values).toEqual({ A: "1", B: "two words", C: "x=y" });
    expect(ignored).toEqual(["not an assignment", "=nokey"]);
  });

  it("reads requested Python versions the way Oryx writes them", () => {
    expect(parseRequestedVersion("python-3.11")).toBe("3.11");
    expect(parseRequestedVersion("3.11.7\n")).toBe("3.11.7");
    expect(parseRequestedVersion("python-latest")).toBeUndefined();
  });

  it("names requirements without versions, extras or markers", () => {
    expect(requirementNames("Flask>=3\n# c\n-r other.txt\nDjango[argon2]==5.1 ; python_version>'3'\nmy_pkg @ file:///x\n")).toEqual(["flask", "django", "my-pkg"]);
  });
});

describe("build environment", () => {
  it("passes the pip and npm index settings through and nothing of Slipway's own", async () => {
    const { buildEnvironment } = await import("../src/steps/build-sandbox");
    const { loadWorkerConfig } = await import("@slipway/shared");
    const host = {
      PATH: "/usr/bin:/bin",
      HOME: "/home/worker",
      REDIS_URL: "redis://127.0.0.1:6379",
      S3_ENDPOINT: "http://127.0.0.1:9000",
      S3_ACCESS_KEY: "access-key-value",
      S3_SECRET_KEY: "secret-key-value",
      API_TOKEN: "api-token-value",
      PIP_INDEX_URL: "http://127.0.0.1:3141/simple",
      npm_config_registry: "http://127.0.0.1:4873/",
      SOMETHING_ELSE: "x",
    };
    const env = buildEnvironment(loadWorkerConfig(host), { path: "/sandbox/bin:/usr/bin", home: "/scratch/b1.home" }, host);
    expect(env).toEqual({
      PATH: "/sandbox/bin:/usr/bin",
      HOME: "/scratch/b1.home",
      LANG: "C.UTF-8",
      PIP_INDEX_URL: "http://127.0.0.1:3141/simple",
      npm_config_registry: "http://127.0.0.1:4873/",
    });
  });
});
