import { extendZodWithOpenApi, OpenApiGeneratorV31, OpenAPIRegistry, type RouteConfig } from "@asteasolutions/zod-to-openapi";
import { z, type ZodType } from "zod";
import { errorCodes, type ErrorCode } from "./errors";

extendZodWithOpenApi(z);

/** Every route registers itself here as it is mounted, so the document cannot miss one. */
export const registry = new OpenAPIRegistry();
registry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });

const codes = errorCodes().map(({ code }) => code) as [ErrorCode, ...ErrorCode[]];
export const errorSchema = z
  .object({ error: z.object({ code: z.enum(codes).openapi({ description: "stable: clients match on it" }), message: z.string() }) })
  .openapi("Error");

export interface ResponseDoc {
  description: string;
  schema?: ZodType;
  contentType?: string;
}

export interface RouteDoc {
  method: RouteConfig["method"];
  /** The full path, express style (`/v1/apps/:app`). */
  path: string;
  summary: string;
  params?: z.AnyZodObject;
  query?: z.AnyZodObject;
  body?: { contentType: string; schema: ZodType };
  /** Route-specific answers; the ones every route may give are added by `documentRoute`. */
  responses: Record<number, ResponseDoc>;
  /** Routes outside /v1 are open even when API_TOKEN is set. */
  open?: boolean;
  /** Overrides the operationId derived from method and path. */
  operationId?: string;
}

const operationIds = new Set<string>();

/** `get /v1/apps/:app/builds` → `getAppsByAppBuilds`: stable, unique, readable in generated clients. */
export function operationIdOf(method: string, path: string): string {
  const parts = path
    .split("/")
    .filter((segment) => segment && segment !== "v1")
    .map((segment) => {
      // `:app.git`: the parameter, then the literal rest.
      const param = /^:([A-Za-z_]+)(.*)$/.exec(segment);
      return param ? `By${capitalize(param[1]!)}${words(param[2]!)}` : words(segment);
    });
  return `${method.toLowerCase()}${parts.join("") || "Root"}`;
}

const capitalize = (word: string) => word.charAt(0).toUpperCase() + word.slice(1);
const words = (text: string) => text.split(/[^A-Za-z0-9]+/).filter(Boolean).map(capitalize).join("");

/** What any route may answer besides its own responses: invalid input, a missing token, a bug. */
function standardResponses(doc: RouteDoc): Record<number, ResponseDoc> {
  const responses: Record<number, ResponseDoc> = {};
  if (doc.params || doc.query || doc.body) responses[400] = { description: "bad input: a parameter, the query or the body failed validation", schema: errorSchema };
  if (!doc.open) responses[401] = { description: "missing or wrong bearer token", schema: errorSchema };
  responses[500] = { description: "internal error", schema: errorSchema };
  return responses;
}

const toOpenApiPath = (path: string) => path.replace(/:([A-Za-z_]+)/g, "{$1}");

export function documentRoute(doc: RouteDoc): void {
  const responses: RouteConfig["responses"] = {};
  for (const [status, response] of Object.entries({ ...standardResponses(doc), ...doc.responses })) {
    responses[Number(status)] = {
      description: response.description,
      ...(response.schema ? { content: { [response.contentType ?? "application/json"]: { schema: response.schema } } } : {}),
    };
  }
  const operationId = doc.operationId ?? operationIdOf(doc.method, doc.path);
  // The same route mounted twice (one process, several apps) documents itself once.
  if (operationIds.has(operationId)) return;
  operationIds.add(operationId);
  registry.registerPath({
    method: doc.method,
    path: toOpenApiPath(doc.path),
    operationId,
    summary: doc.summary,
    // Open routes say so: the document's default is the bearer token.
    security: doc.open ? [] : [{ bearer: [] }],
    request: {
      ...(doc.params ? { params: doc.params } : {}),
      ...(doc.query ? { query: doc.query } : {}),
      ...(doc.body ? { body: { content: { [doc.body.contentType]: { schema: doc.body.schema } }, required: true } } : {}),
    },
    responses,
  });
}

let generated: object | undefined;

export function openApiDocument(): object {
  generated ??= {
    ...new OpenApiGeneratorV31(registry.definitions).generateDocument({
      openapi: "3.1.0",
      info: { title: "Slipway API", version: "1.0.0", description: "Build and release web apps: sources in, running instances out." },
      servers: [{ url: "/", description: "this API, wherever it is served from" }],
      security: [{ bearer: [] }],
    }),
    // The error catalogue with each code's status, so clients can tell which codes to expect.
    "x-error-codes": errorCodes(),
  };
  return generated;
}
