import path from "node:path";
import { readOptional, type PackageJson } from "./node-package-json";
import type { PackageManagerChoice } from "./node-package-managers";
import type { PlatformContext } from "./platform";
import { exists } from "./fs-checks";

/** Files started with `node` when there is no start script and no `main`, in this order (Oryx's). */
const START_FILES = ["bin/www", "server.js", "app.js", "index.js"];

/** A word for `sh -c` as it is, or single-quoted. */
const shellWord = (word: string) => (/^[\w./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`);

/**
 * The start command, in Oryx's order after the app's own startupCommand (which the runtime agent
 * puts first): a Procfile `web:` line (left to the runtime, which reads it), the start script run
 * by the app's package manager, `main`, then bin/www, server.js, app.js, index.js.
 */
export async function chooseStartCommand(ctx: PlatformContext, pkg: PackageJson, manager: PackageManagerChoice, start: string): Promise<string | undefined> {
  const procfile = (await readOptional(path.join(ctx.sourceDir, "Procfile"))) ?? "";
  const web = /^web:[ \t]*(\S.*)$/m.exec(procfile);
  if (web) {
    ctx.log(`Start command: the Procfile's web: ${web[1]!.trim()}`);
    return undefined;
  }
  let command: string | undefined;
  if (pkg.scripts?.start) command = start;
  else {
    const main = typeof pkg.main === "string" ? [pkg.main, `${pkg.main}.js`] : [];
    for (const file of [...main, ...START_FILES]) {
      const full = path.resolve(ctx.sourceDir, file);
      if (!full.startsWith(`${ctx.sourceDir}${path.sep}`) || !(await exists(full))) continue;
      const relative = path.relative(ctx.sourceDir, full);
      // Plug'n'Play resolves modules only in a Node that Yarn has set up.
      command = `${manager.pnp ? "yarn node" : "node"} ${shellWord(relative)}`;
      break;
    }
  }
  ctx.log(command ? `Start command: ${command}` : "No start command found: set the app's startupCommand, add a Procfile web: line or a start script");
  return command;
}
