import { announceRelease, launchConfigKey, type AppRecord, type Release } from "@slipway/shared";
import type { ApiContext } from "./context";

/** What a masked value shows instead of itself. */
export const MASK = "••••";

/** Name parts that mark a variable as a secret: `DB_PASSWORD`, `STRIPE_API_KEY`, `GITHUB_TOKEN`. */
const SECRET_PARTS = new Set(["SECRET", "SECRETS", "PASSWORD", "PASSWD", "PASS", "PWD", "TOKEN", "KEY", "APIKEY", "CREDENTIAL", "CREDENTIALS", "PRIVATE", "AUTH", "DSN", "SALT"]);
/** A URL carrying a password (`postgres://user:pw@host/db`) is a secret whatever its name. */
const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i;

export const isSecret = (name: string, value: string) => name.toUpperCase().split("_").some((part) => SECRET_PARTS.has(part)) || URL_WITH_PASSWORD.test(value);

const masked = (vars: Record<string, string>) => Object.fromEntries(Object.entries(vars).map(([name, value]) => [name, isSecret(name, value) ? MASK : value]));

/** The app as answers show it: secret-looking `env` and `buildEnv` values masked unless `reveal`. */
export function appView<A extends AppRecord>(app: A, reveal: boolean): A {
  return reveal ? app : { ...app, env: masked(app.env), buildEnv: masked(app.buildEnv) };
}

/**
 * After an app's settings changed: when what its processes were started with (env,
 * startupCommand, healthCheck) differs, the current build is released again with reason
 * `config`, and rolled out like any release. Nothing is released before the app's first release.
 */
export async function releaseConfigChange(ctx: ApiContext, previous: AppRecord | undefined, app: AppRecord, requestId?: unknown): Promise<Release | undefined> {
  if (!previous || launchConfigKey(previous) === launchConfigKey(app)) return undefined;
  const release = await ctx.releases.releaseCurrentBuild(app.name, "config");
  if (!release) return undefined;
  const build = await ctx.builds.get(release.buildId);
  // A released build always had an artifact; its sha256 only guards the storage pointer.
  await announceRelease(ctx, app.name, release, build?.artifact?.sha256 ?? "");
  ctx.logger.info({ app: app.name, version: release.version, buildId: release.buildId, reason: "config", requestId }, "release created");
  return release;
}
