import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { storageKeys } from "@slipway/shared";
import { uniqueApp } from "../../../test/harness/env";
import { extractArtifact, uploadDir, waitForBuild, writeTree } from "../../../test/harness/stack";
import { useStack } from "../../../test/harness/use-stack";

const { stack, work } = useStack("oryx-options");

async function build(files: Record<string, string>, buildEnv: Record<string, string>) {
  const app = uniqueApp("oryxopt");
  await stack.api.apps.upsert(app, { buildEnv });
  const dir = await writeTree(path.join(work, app), files);
  const built = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir)).id);
  const log = await stack.api.store.getText(storageKeys.buildLog(app, built.id));
  return { built, log };
}

describe("Oryx build options", () => {
  it("runs one hook per phase as Oryx does: a SCRIPT_PATH wins over its COMMAND, with SOURCE_DIR set", async () => {
    const { built, log } = await build(
      {
        "app.py": "",
        // Not executable, no interpreter line: run with bash, as Oryx does.
        "scripts/pre.sh": 'echo "pre-script $SOURCE_DIR ${BASH_VERSION:+bash}" >> order.txt\n',
        // Executable with its own interpreter line.
        "scripts/post.py": "#!/usr/bin/env python3\nopen('order.txt', 'a').write('post-script\\n')\n",
      },
      {
        PRE_BUILD_COMMAND: "chmod +x scripts/post.py; echo pre-command >> order.txt",
        PRE_BUILD_SCRIPT_PATH: "scripts/pre.sh",
        POST_BUILD_COMMAND: "echo post-command >> order.txt",
        POST_BUILD_SCRIPT_PATH: "scripts/post.py",
      },
    );
    expect(built.error).toBeUndefined();
    expect(log).toContain("Running PRE_BUILD_SCRIPT_PATH: scripts/pre.sh");
    expect(log).toContain("PRE_BUILD_SCRIPT_PATH is set: PRE_BUILD_COMMAND is not run");
    const out = await extractArtifact(stack, built, work);
    const lines = (await readFile(path.join(out, "order.txt"), "utf8")).trim().split("\n");
    expect(lines).toEqual([expect.stringMatching(/^pre-script \/.+ bash$/), "post-script"]);
  });

  it("a POST_BUILD_COMMAND naming a script without the exec bit runs it, with the app's virtualenv active", async () => {
    const { built, log } = await build(
      {
        "app.py": "",
        "requirements.txt": "",
        "scripts/collect.sh": 'python -c "import sys; print(sys.prefix)" > prefix.txt\necho "$VIRTUAL_ENV" > virtual_env.txt\n',
      },
      { POST_BUILD_COMMAND: "scripts/collect.sh" },
    );
    expect(built.error).toBeUndefined();
    expect(log).toContain("Running POST_BUILD_COMMAND: scripts/collect.sh (a script in the source)");
    const out = await extractArtifact(stack, built, work);
    expect((await readFile(path.join(out, "prefix.txt"), "utf8")).trim()).toMatch(/\/antenv$/);
    expect((await readFile(path.join(out, "virtual_env.txt"), "utf8")).trim()).toMatch(/\/antenv$/);
  });

  it("a script path outside the source, or missing, fails the build saying so", async () => {
    const outside = await build({ "app.py": "" }, { PRE_BUILD_SCRIPT_PATH: "../../etc/passwd" });
    expect(outside.built.status).toBe("failed");
    expect(outside.built.error).toBe('PRE_BUILD_SCRIPT_PATH "../../etc/passwd" is outside the source; give a path inside it, like scripts/prebuild.sh');
    const missing = await build({ "app.py": "" }, { POST_BUILD_SCRIPT_PATH: "nope.sh" });
    expect(missing.built.status).toBe("failed");
    expect(missing.built.error).toBe('POST_BUILD_SCRIPT_PATH "nope.sh" is not a file in the source; give the path of a script in it, like scripts/prebuild.sh');
  });

  it("a source whose files all sit in one folder (GitHub's Download ZIP) builds from inside it", async () => {
    const { built, log } = await build({ "hello-main/app.py": "", "hello-main/requirements.txt": "", "hello-main/hello-main/data.txt": "nested namesake\n", "__MACOSX/._app.py": "" }, {});
    expect(built).toMatchObject({ status: "succeeded", platform: "python" });
    expect(log).toContain("All of the source is in one folder, hello-main/");
    const out = await extractArtifact(stack, built, work);
    expect(existsSync(path.join(out, "app.py"))).toBe(true);
    expect(await readFile(path.join(out, "hello-main", "data.txt"), "utf8")).toBe("nested namesake\n");
  });

  it("PLATFORM_NAME picks the platform when the source has markers of both", async () => {
    const both = { "requirements.txt": "", "app.py": "", "package.json": JSON.stringify({ name: "both", version: "1.0.0", scripts: { start: "node server.js" } }), "server.js": "" };
    const detected = await build(both, {});
    expect(detected.built).toMatchObject({ status: "succeeded", platform: "python" });
    const forced = await build(both, { PLATFORM_NAME: "nodejs" });
    expect(forced.built).toMatchObject({ status: "succeeded", platform: "nodejs" });
    expect(forced.log).toContain("Platform: nodejs (PLATFORM_NAME)");
    const unknown = await build(both, { PLATFORM_NAME: "ruby" });
    expect(unknown.built.error).toBe('PLATFORM_NAME "ruby" is not a platform this worker builds (python, nodejs)');
  });

  it("Node: CUSTOM_BUILD_COMMAND replaces install and build; RUN_BUILD_COMMAND replaces only the build scripts", async () => {
    const pkg = { name: "custom", version: "1.0.0", scripts: { build: "echo from-build-script > built.txt", start: "node server.js" } };
    const files = { "package.json": JSON.stringify(pkg), "server.js": "" };
    const custom = await build(files, { CUSTOM_BUILD_COMMAND: "echo custom > built.txt" });
    expect(custom.built.error).toBeUndefined();
    expect(custom.log).toContain("Running CUSTOM_BUILD_COMMAND (instead of install and build): echo custom > built.txt");
    expect(custom.log).not.toMatch(/[Rr]unning npm (install|ci)/);
    expect(await readFile(path.join(await extractArtifact(stack, custom.built, work), "built.txt"), "utf8")).toBe("custom\n");

    const runBuild = await build(files, { RUN_BUILD_COMMAND: "echo run-build > built.txt" });
    expect(runBuild.built.error).toBeUndefined();
    expect(runBuild.log).toMatch(/[Rr]unning npm install/);
    expect(runBuild.log).toContain("Running RUN_BUILD_COMMAND (instead of the build scripts): echo run-build > built.txt");
    expect(await readFile(path.join(await extractArtifact(stack, runBuild.built, work), "built.txt"), "utf8")).toBe("run-build\n");
  });
});
