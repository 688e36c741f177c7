import { readdir } from "node:fs/promises";
import path from "node:path";
import { readUntrustedText } from "@slipway/shared";

/** The paths App Service's images kept an app at before each instance got its own `$APP_PATH`. */
const LEGACY_PATH = /(?<![\w$}])(\/antenv(?:\/[^\s"';)]*)?|\/home\/site\/wwwroot(?:\/[^\s"';)]*)?)/;

/**
 * Warns, in the build log, of each start-up line that hard-codes `/antenv` or `/home/site/wwwroot`
 * (the app's startupCommand, the Procfile, the `*.sh` scripts at the top of the source): the
 * change this project reproduces broke such scripts. They keep working (an instance's sandbox
 * leads both paths to the release), but the warning names the line and the `$APP_PATH` fix.
 */
export async function warnOfLegacyPaths(sourceDir: string, startupCommand: string | undefined, log: (line: string) => void): Promise<void> {
  const sources: [name: string, text: string][] = [];
  if (startupCommand) sources.push(["the app's startupCommand", startupCommand]);
  const scripts = (await readdir(sourceDir, { withFileTypes: true })).filter((entry) => entry.isFile() && (entry.name === "Procfile" || entry.name.endsWith(".sh")));
  for (const { name } of scripts.sort((a, b) => a.name.localeCompare(b.name))) {
    const text = await readUntrustedText(path.join(sourceDir, name), 256 * 1024);
    if (text) sources.push([name, text]);
  }
  for (const [name, text] of sources) {
    for (const [index, line] of text.split("\n").entries()) {
      const used = LEGACY_PATH.exec(line.replace(/#.*/, ""))?.[1];
      if (used) log(legacyWarning(name === "the app's startupCommand" ? name : `${name} line ${index + 1}`, used));
    }
  }
}

function legacyWarning(where: string, used: string): string {
  const venv = used.startsWith("/antenv");
  const fix = venv ? `$APP_PATH${used}${used.endsWith("/activate") ? " (or drop the line: antenv is already active)" : ""}` : `$APP_PATH${used.slice("/home/site/wwwroot".length)}`;
  return `Warning: ${where} uses ${used}, where App Service kept ${venv ? "the venv" : "the app"} before each instance got its own $APP_PATH: write ${fix}. It still works here: an instance's sandbox leads ${venv ? "/antenv" : "/home/site/wwwroot"} to the release.`;
}
