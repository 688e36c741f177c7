import path from "node:path";
import { readUntrustedText } from "@slipway/shared";
import { BuildFailure } from "../errors";

export interface PackageJson {
  scripts?: Record<string, string>;
  engines?: { node?: string };
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  main?: string;
  packageManager?: unknown;
}

// PRE_BUILD_COMMAND has run by now: the tree is the build's, so no links out and no FIFOs.
export const readOptional = (file: string) => readUntrustedText(file);

/** The source's package.json, parsed; a clear failure when it does not parse. */
export async function readPackageJson(sourceDir: string): Promise<PackageJson> {
  try {
    return JSON.parse((await readOptional(path.join(sourceDir, "package.json"))) ?? "") as PackageJson;
  } catch (error) {
    throw new BuildFailure(`package.json does not parse: ${(error as Error).message}`);
  }
}
