import { z } from "zod";
import { APP_NAME_PATTERN, appResponseSchema, healthCheckSchema, BUILD_ID_PATTERN, buildResponseSchema, gcReportSchema as gcReportRecordSchema, instanceResponseSchema, releaseResponseSchema, SHA256_PATTERN } from "@slipway/shared";
import "./openapi";

/** Request and response shapes of the REST API: validation and the OpenAPI document both come from here. */

export const appParams = z.object({ app: z.string().regex(APP_NAME_PATTERN) });
export const buildParams = z.object({ id: z.string().regex(BUILD_ID_PATTERN) });

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name");
const envMap = z.record(envName, z.string().max(32_768));

export const appConfigBody = z
  .object({
    env: envMap.optional(),
    buildEnv: envMap.optional(),
    startupCommand: z.string().min(1).max(4096).optional(),
    /** Runs once per release, in the release's directory, before any instance switches to it. */
    releaseCommand: z.string().min(1).max(4096).optional(),
    healthCheck: healthCheckSchema.optional(),
    /** Releases and builds garbage collection keeps for this app. */
    retention: z.number().int().min(1).max(1000).optional(),
    /** Session affinity at the front door (App Service's ARR affinity): a cookie keeps a client on one instance while it lives. */
    affinity: z.boolean().optional(),
  })
  .strict()
  .openapi("AppConfig");

export const envPatchBody = z
  .object({ set: envMap.optional(), unset: z.array(envName).max(1000).optional() })
  .strict()
  .refine((body) => body.set !== undefined || body.unset !== undefined, { message: "give set, unset or both" })
  .refine((body) => !(body.unset ?? []).some((name) => body.set && name in body.set), { message: "a variable cannot be both set and unset", path: ["unset"] })
  .openapi("AppConfigPatch");

/** `?reveal=1` shows secret-looking env values as they are instead of masked. */
export const revealQuery = z.object({ reveal: z.enum(["1", "true", "0", "false"]).optional() });
export const revealed = (query: { reveal?: string }) => query.reveal === "1" || query.reveal === "true";

export const rebuildBody = z.object({ noCache: z.boolean().default(false) }).strict().openapi("RebuildRequest");

export const releaseBody = z
  .union([z.object({ buildId: z.string().regex(BUILD_ID_PATTERN, "must be a build id") }).strict(), z.object({ version: z.number().int().positive() }).strict()])
  .openapi("ReleaseRequest");

export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(200).optional(),
});

export const uploadQuery = z.object({
  deploy: z.enum(["true", "false"]).optional(),
  /** The body holds only the files the server lacked, plus .slipway-resources.json for the rest. */
  resources: z.enum(["1", "true"]).optional(),
});

export const resourceMatchBody = z.object({ resources: z.array(z.string().regex(SHA256_PATTERN)).max(200_000) }).strict().openapi("ResourceMatchRequest");
export const resourceMatchSchema = z.object({ held: z.array(z.string()) }).openapi("ResourceMatch");
export const logsQuery = z.object({ follow: z.enum(["1", "true", "0", "false"]).optional() });

export const appSchema = appResponseSchema.openapi("App");
export const buildSchema = buildResponseSchema.openapi("Build");
export const releaseSchema = releaseResponseSchema.openapi("Release");
export const instanceSchema = instanceResponseSchema.openapi("Instance");

export const deletedAppSchema = z
  .object({ app: z.string(), deleted: z.literal(true), canceledBuilds: z.array(z.string()), instances: z.array(z.string()), message: z.string() })
  .openapi("DeletedApp");

export const gcReportSchema = gcReportRecordSchema.openapi("GcReport");
