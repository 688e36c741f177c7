import express, { type RequestHandler } from "express";
import type { AnyZodObject, z, ZodIssue, ZodTypeAny } from "zod";
import { errors, type HttpError } from "./errors";

/**
 * Path parameters become parts of Redis keys, so each has its own error naming the accepted
 * form. A route whose path uses a parameter not listed here fails when it is mounted.
 */
const PARAM_ERRORS: Record<string, () => HttpError> = {
  app: errors.invalidAppName,
  id: errors.invalidBuildId,
  domain: () => errors.invalidDomain("the path does not name a domain"),
};

export function checkParamsHaveErrors(schema: AnyZodObject, path: string): void {
  for (const name of Object.keys(schema.shape)) {
    if (!PARAM_ERRORS[name]) throw new Error(`${path}: path parameter :${name} has no error in the catalogue`);
  }
}

const where = (issue: ZodIssue, whole: string) => (issue.path.length ? issue.path.join(".") : whole);

export function parseParams<S extends AnyZodObject>(schema: S, params: unknown): z.infer<S> {
  const result = schema.safeParse(params);
  if (!result.success) throw PARAM_ERRORS[String(result.error.issues[0]!.path[0])]!();
  return result.data;
}

export function parseQuery<S extends ZodTypeAny>(schema: S, query: unknown): z.infer<S> {
  const result = schema.safeParse(query);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw errors.invalidQuery(where(issue, "query"), issue.message);
  }
  return result.data;
}

export function parseBody<S extends ZodTypeAny>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw errors.invalidBody(where(issue, "body"), issue.message);
  }
  return result.data;
}

const parseJson = express.json({ limit: "256kb", type: () => true });

/** A JSON body (or none at all): anything sent as another media type is a 415; over 256 kB a 413. */
export const jsonBody: RequestHandler = (req, res, next) => {
  const hasBody = req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
  if (!hasBody) return next();
  if (!req.is(["application/json", "application/*+json"])) return next(errors.jsonRequired(req.headers["content-type"]));
  parseJson(req, res, next);
};
