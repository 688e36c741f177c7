import { existsSync, realpathSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compareVersions, findPythons, probePython, pythonInstallDirs } from "../src/sandbox/pythons";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "slipway-pythons-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("finding Python interpreters", () => {
  it("the PATH's python3 is the default; each install of an installs directory is offered, what does not run as Python 3 is not", async () => {
    const installs = path.join(dir, "installs");
    const pathDefault = (await findPythons()).default!;
    expect(pathDefault.command).toMatch(/^\//);
    // A link to the PATH's own interpreter (same version: offered once), a fake, and a Python 2 layout.
    await mkdir(path.join(installs, "same", "bin"), { recursive: true });
    await symlink(pathDefault.command, path.join(installs, "same", "bin", "python3"));
    await mkdir(path.join(installs, "fake", "bin"), { recursive: true });
    await writeFile(path.join(installs, "fake", "bin", "python3"), "#!/bin/sh\nexit 1\n");
    await chmod(path.join(installs, "fake", "bin", "python3"), 0o755);
    await mkdir(path.join(installs, "2.7.18", "bin"), { recursive: true });
    const found = await findPythons({ installsDir: installs });
    expect(found.default).toEqual(pathDefault);
    expect(found.pythons.filter((p) => p.version === pathDefault.version)).toHaveLength(1);
    expect(await probePython(path.join(installs, "fake", "bin", "python3"))).toBeUndefined();
  });

  it("searches pyenv's versions, uv's Pythons and Oryx's /opt/python by default, after PYTHON_INSTALLS_DIR", async () => {
    expect(pythonInstallDirs({ HOME: "/home/ops" }, "/srv/pythons")).toEqual(["/srv/pythons", "/home/ops/.pyenv/versions", "/home/ops/.local/share/uv/python", "/opt/python"]);
    expect(pythonInstallDirs({ HOME: "/home/ops", PYENV_ROOT: "/opt/pyenv", UV_PYTHON_INSTALL_DIR: "/srv/uv", XDG_DATA_HOME: "/data" })).toEqual(["/opt/pyenv/versions", "/srv/uv", "/opt/python"]);
    expect(pythonInstallDirs({ HOME: "/home/ops", XDG_DATA_HOME: "/data" })[1]).toBe("/data/uv/python");

    // A worker whose PATH has no Python at all (no pyenv shims) still finds the installs.
    // Installs as pyenv and uv lay them out (a directory per version), linked to this machine's own.
    const real = (await findPythons()).default!;
    const home = path.join(dir, "home");
    const pyenvInstall = path.join(home, ".pyenv", "versions", real.version);
    const uvInstall = path.join(dir, "uv-pythons", `cpython-${real.version}-linux-x86_64-gnu`);
    for (const install of [pyenvInstall, uvInstall]) {
      await mkdir(path.dirname(install), { recursive: true });
      await symlink(real.prefix, install);
    }
    const bare = { PATH: path.join(dir, "empty-path"), HOME: home, UV_PYTHON_INSTALL_DIR: path.join(dir, "uv-pythons") };
    const viaPyenv = await findPythons({ env: bare });
    expect(viaPyenv.default).toBeUndefined();
    expect(viaPyenv.pythons.map((p) => p.version)).toEqual([real.version]);
    expect(viaPyenv.pythons[0]!.command.startsWith(`${pyenvInstall}/bin/`)).toBe(true);
    const viaUv = await findPythons({ env: { ...bare, HOME: path.join(dir, "no-home") } });
    expect(viaUv.pythons.map((p) => p.version)).toEqual([real.version]);
    expect(viaUv.pythons[0]!.command.startsWith(`${uvInstall}/bin/`)).toBe(true);
  });

  it.skipIf(!existsSync("/root/.pyenv/versions/3.12.1/bin/python3"))(
    "an install linked into the installs directory is run by that path; a sandbox binds the link and the real prefix",
    async () => {
      const linked = path.join(dir, "linked");
      await mkdir(linked);
      await symlink("/root/.pyenv/versions/3.12.1", path.join(linked, "3.12"));
      const found = await findPythons({ installsDir: linked });
      const python = found.pythons.find((p) => p.version === "3.12.1")!;
      expect(python).toEqual({
        command: path.join(linked, "3.12", "bin", "python3"),
        version: "3.12.1",
        prefix: path.join(linked, "3.12"),
        mounts: [path.join(linked, "3.12"), realpathSync("/root/.pyenv/versions/3.12.1")],
      });
    },
  );

  it("an interpreter inside the system directories needs nothing bound; one reached through a link outside them is named by its real path", async () => {
    const system = ["/usr/bin/python3"].find(existsSync);
    if (!system) return;
    const home = path.join(dir, "home-bin");
    await mkdir(home);
    await symlink(system, path.join(home, "python3"));
    const python = (await probePython(path.join(home, "python3")))!;
    expect(python.mounts).toEqual([]);
    expect(python.command).toBe(realpathSync(system));
  });

  it("orders versions numerically, a pre-release before its release", () => {
    expect(["3.13.0", "3.9.18", "3.13.0rc1", "3.10.13"].sort(compareVersions)).toEqual(["3.9.18", "3.10.13", "3.13.0rc1", "3.13.0"]);
  });
});
