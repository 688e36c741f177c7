import { storageKeys, type BuildManifest, type ObjectStore } from "@slipway/shared";

/** Where Oryx's runtime looks for the build output when the manifest names none, in order. */
export const ORYX_OUTPUT_FILE_NAMES = ["output.tar.zst", "output.tar.gz"] as const;

/**
 * The artifact's file name: the manifest's `OutputFileName` (Slipway always writes it), else, as
 * Oryx's runtime does, `output.tar.zst` when stored beside the manifest, then `output.tar.gz`
 * (also when neither is there: the restore then says which file is missing).
 */
export async function outputFileName(store: ObjectStore, app: string, buildId: string, manifest: BuildManifest): Promise<string> {
  if (manifest.outputFileName) return manifest.outputFileName;
  for (const name of ORYX_OUTPUT_FILE_NAMES) {
    if (await store.exists(storageKeys.artifact(app, buildId, name))) return name;
  }
  return ORYX_OUTPUT_FILE_NAMES.at(-1)!;
}
