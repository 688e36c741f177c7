import { APP_NAME_PATTERN, BUILD_ID_PATTERN, INSTANCE_ID_PATTERN } from "../contracts/index";

/**
 * An id that does not match its pattern reached a repository. Callers validate first; this is the
 * last line, so that a malformed id can never name (or break into) another record's Redis key.
 */
export class InvalidIdError extends Error {
  override name = "InvalidIdError";
  constructor(
    readonly kind: "app name" | "build id" | "instance id" | "host id" | "release version",
    value: unknown,
  ) {
    super(`invalid ${kind} ${JSON.stringify(String(value).slice(0, 80))}`);
  }
}

const check = (kind: InvalidIdError["kind"], pattern: RegExp) => (value: string) => {
  if (typeof value !== "string" || !pattern.test(value)) throw new InvalidIdError(kind, value);
  return value;
};

export const checkAppName = check("app name", APP_NAME_PATTERN);
export const checkBuildId = check("build id", BUILD_ID_PATTERN);
export const checkInstanceId = check("instance id", INSTANCE_ID_PATTERN);
export const checkHostId = check("host id", INSTANCE_ID_PATTERN);

export function checkVersion(value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new InvalidIdError("release version", value);
  return value;
}
