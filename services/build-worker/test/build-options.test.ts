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
