import { readdir } from "node:fs/promises";
import path from "node:path";
import { BuildAborted } from "../errors";
import type { PlatformContext } from "./platform";
import { exists } from "./fs-checks";

/** Whether the venv holds Django (installed from pyproject.toml or a nested requirements file). */
async function venvHasDjango(venv: string): Promise<boolean> {
  const versions = (await readdir(path.join(venv, "lib")).catch(() => [] as string[])).filter((name) => name.startsWith("python"));
  return (await Promise.all(versions.map((name) => exists(path.join(venv, "lib", name, "site-packages", "django", "__init__.py"))))).some(Boolean);
}

/**
 * `manage.py collectstatic --noinput` for a Django project (manage.py at the root, Django in its
 * requirements or its venv), as Oryx runs it: a failure is a warning (its output is in the log just above),
 * and the build goes on. `DISABLE_COLLECTSTATIC=true` skips it.
 */
export async function collectStatic(ctx: PlatformContext, inputs: { django: boolean; venv: string; venvPython: string; env: Record<string, string> }): Promise<void> {
  if (!(await exists(path.join(ctx.sourceDir, "manage.py")))) return;
  if (!inputs.django && !(await venvHasDjango(inputs.venv))) return;
  if (ctx.options.DISABLE_COLLECTSTATIC?.toLowerCase() === "true") {
    ctx.log("DISABLE_COLLECTSTATIC=true: skipping collectstatic");
    return;
  }
  ctx.log("Running python manage.py collectstatic --noinput ...");
  try {
    await ctx.run(inputs.venvPython, ["manage.py", "collectstatic", "--noinput"], { env: inputs.env, label: "manage.py collectstatic" });
  } catch (error) {
    if (error instanceof BuildAborted) throw error;
    ctx.log(
      `Warning: ${(error as Error).message}; the build continues without collected static files. ` +
        "Its output is above: set STATIC_ROOT in the settings, or DISABLE_COLLECTSTATIC=true to skip collectstatic.",
    );
  }
}
