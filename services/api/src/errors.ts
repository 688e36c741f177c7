import { APP_NAME_PATTERN, BUILD_ID_PATTERN } from "@slipway/shared";

/** An error with the HTTP status and stable snake_case code of the API's error shape, `{ error: { code, message } }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

interface ErrorFactory<Args extends unknown[]> {
  (...args: Args): HttpError;
  readonly code: string;
  readonly status: number;
}

function define<const Code extends string, Args extends unknown[]>(code: Code, status: number, message: (...args: Args) => string) {
  return Object.assign((...args: Args) => new HttpError(status, code as ErrorCode, message(...args)), { code, status }) as ErrorFactory<Args> & { code: Code };
}

const contentTypeOf = (contentType: string | undefined) => contentType ?? "no Content-Type";
const EMPTY_SOURCE = "the body is empty: send the app's source as a .tar.gz or .zip";

/**
 * Every error the API answers with, one factory per situation. Clients match on `code`, so codes
 * never change; several situations may share one (every missing thing is `not_found`).
 */
export const errors = {
  unauthorized: define("unauthorized", 401, () => "a valid bearer token is required"),
  gitUnauthorized: define("unauthorized", 401, () => "git over HTTP needs the API token as the password (any user name)"),
  invalidJson: define("invalid_json", 400, () => "the body is not valid JSON"),
  invalidBody: define("invalid_body", 400, (where: string, problem: string) => `${where}: ${problem}`),
  invalidQuery: define("invalid_query", 400, (where: string, problem: string) => `${where}: ${problem}`),
  invalidHeader: define("invalid_header", 400, (header: string, problem: string) => `${header} ${problem}`),
  invalidAppName: define("invalid_app_name", 400, () => `app names match ${APP_NAME_PATTERN.source}: lowercase letters, digits and dashes, 2-63 long`),
  invalidBuildId: define("invalid_build_id", 400, () => `build ids match ${BUILD_ID_PATTERN.source}: letters, digits and dashes, 8-64 long`),
  /** A repository refused an id that slipped past validation: still the caller's error. */
  invalidId: define("invalid_id", 400, (problem: string) => problem),
  invalidCursor: define("invalid_cursor", 400, () => "cursor is not one this API gave out"),
  emptyBody: define("empty_body", 400, () => EMPTY_SOURCE),
  notThisFormat: define("invalid_archive", 400, (format: string) => `the body is not ${format}`),
  unreadableArchive: define("invalid_archive", 400, (problem: string) => problem),
  unreadableResourceList: define("invalid_resources", 400, (list: string, problem: string) => `${list} is missing or not a list of {path, sha256, mode}: ${problem}`),
  unsafeResourceEntry: define("invalid_resources", 400, (entryPath: unknown) => `resource entry ${JSON.stringify(entryPath)} is not a safe relative path with a sha256`),
  appNotFound: define("not_found", 404, (app: string) => `app ${app} does not exist`),
  buildNotFound: define("not_found", 404, (id: string) => `build ${id} does not exist`),
  appBuildNotFound: define("not_found", 404, (app: string, id: string) => `build ${id} of ${app} does not exist`),
  hostNotFound: define("not_found", 404, (id: string) => `host ${id} does not exist`),
  domainNotFound: define("not_found", 404, (app: string, domain: string) => `${app} has no domain ${domain}`),
  invalidDomain: define("invalid_domain", 400, (problem: string) => problem),
  domainTaken: define("domain_taken", 409, (domain: string, owner: string) => `${domain} belongs to app ${owner}; remove it there first`),
  releaseNotFound: define("not_found", 404, (app: string, version: number) => `release v${version} of ${app} does not exist`),
  routeNotFound: define("not_found", 404, (method: string, path: string) => `no route for ${method} ${path}`),
  buildFinished: define("build_finished", 409, (id: string, status: string | undefined) => `build ${id} has already ${status}`),
  noSource: define("no_source", 409, (app: string) => `app ${app} has no uploaded source to rebuild`),
  buildNotSucceeded: define("build_not_succeeded", 409, (id: string, status: string) => `build ${id} is ${status}; only a succeeded build can be released`),
  artifactCollected: define("artifact_collected", 409, (id: string) => `build ${id}'s artifact was garbage-collected; rebuild its source instead`),
  resourceMissing: define("resource_missing", 409, (sha256: string, file: string) => `the server no longer holds ${sha256} (${file}): deploy again`),
  resourceCorrupt: define(
    "resource_missing",
    409,
    (sha256: string, file: string) => `the server's copy of ${file} (${sha256}) failed its sha256 check and was discarded: deploy again to upload it`,
  ),
  payloadTooLarge: define("payload_too_large", 413, (limit: number) => `the body is larger than the limit of ${limit} bytes`),
  jsonRequired: define("unsupported_media_type", 415, (contentType?: string) => `send the body as application/json; got ${contentTypeOf(contentType)}`),
  archiveRequired: define(
    "unsupported_media_type",
    415,
    (contentType?: string) => `send the source as application/gzip (a .tar.gz) or application/zip; got ${contentTypeOf(contentType)}`,
  ),
  unsupportedEncoding: define("unsupported_media_type", 415, (problem: string) => problem),
  queueFull: define("queue_full", 429, (waiting: number, max: number) => `${waiting} builds are already waiting (MAX_QUEUED_BUILDS is ${max}); try again later`),
  storageUnavailable: define("storage_unavailable", 503, () => "object storage could not be reached, though it was tried again for a while: try again shortly"),
  redisUnavailable: define("redis_unavailable", 503, () => "Redis did not answer in time (REDIS_COMMAND_TIMEOUT_S): try again shortly"),
  dashboardNotBuilt: define("dashboard_not_built", 503, (file: string, dir: string) => `the dashboard is not built (no ${file} in ${dir}): run npm run build`),
  internal: define("internal", 500, () => "internal error"),
};

type Catalogue = typeof errors;
export type ErrorCode = Catalogue[keyof Catalogue]["code"];

/** Each code once, with its status: what the OpenAPI document lists. */
export function errorCodes(): { code: ErrorCode; status: number }[] {
  const byCode = new Map<ErrorCode, number>();
  for (const factory of Object.values(errors)) byCode.set(factory.code, factory.status);
  return [...byCode].map(([code, status]) => ({ code, status }));
}
