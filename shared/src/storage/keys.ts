/** Object keys: the bucket's layout, which outside clients rely on (see the README's "What is persisted where"). */
export const storageKeys = {
  source: (app: string, sha256: string, extension: ".tar.gz" | ".zip" = ".tar.gz") => `sources/${app}/${sha256}${extension}`,
  sourcesPrefix: (app: string) => `sources/${app}/`,
  buildPrefix: (app: string, buildId: string) => `builds/${app}/${buildId}/`,
  artifact: (app: string, buildId: string, fileName = "output.tar.gz") => `builds/${app}/${buildId}/${fileName}`,
  manifest: (app: string, buildId: string) => `builds/${app}/${buildId}/oryx-manifest.toml`,
  buildLog: (app: string, buildId: string) => `builds/${app}/${buildId}/build.log`,
  /** A dependency layer (a venv, node_modules) cached under a hash of what produced it. */
  dependencyCache: (app: string, layer: string, hash: string, extension: string) => `cache/${app}/${layer}-${hash}${extension}`,
  /** A source file's bytes, by content: what a deploy need not upload again. */
  resource: (app: string, sha256: string) => `resources/${app}/${sha256}`,
  resourcesPrefix: (app: string) => `resources/${app}/`,
  currentRelease: (app: string) => `apps/${app}/current-release.json`,
  /** Uploads land here first: a source's content address is known only once its last byte is hashed. */
  incomingUpload: (uploadId: string) => `incoming/${uploadId}`,
};
