import express, { type RequestHandler } from "express";
import type { z, ZodTypeAny } from "zod";
import { APP_NAME_PATTERN, BUILD_ID_PATTERN } from "@slipway/shared";
import { badRequest, unsupportedMediaType } from "./errors";

// Path parameters are checked before they reach Redis, where they become parts of keys.

export function appNameParam(value: unknown): string {
  if (typeof value !== "string" || !APP_NAME_PATTERN.test(value)) {
    throw badRequest("invalid_app_name", `app names match ${APP_NAME_PATTERN.source}: lowercase letters, digits and dashes, 2-63 long`);
  }
  return value;
}

export function buildIdParam(value: unknown): string {
  if (typeof value !== "string" || !BUILD_ID_PATTERN.test(value)) {
    throw badRequest("invalid_build_id", `build ids match ${BUILD_ID_PATTERN.source}: letters, digits and dashes, 8-64 long`);
  }
  return value;
}

export function parseBody<S extends ZodTypeAny>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const where = issue.path.length ? issue.path.join(".") : "body";
    throw badRequest("invalid_body", `${where}: ${issue.message}`);
  }
  return result.data;
}

export function parseQuery<S extends ZodTypeAny>(schema: S, query: unknown): z.infer<S> {
  const result = schema.safeParse(query);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw badRequest("invalid_query", `${issue.path.join(".") || "query"}: ${issue.message}`);
  }
  return result.data;
}

const parseJson = express.json({ limit: "256kb", type: () => true });

/** A JSON body (or none at all): anything sent as another media type is a 415; over 256 kB a 413. */
export const jsonBody: RequestHandler = (req, res, next) => {
  const hasBody = req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
  if (!hasBody) return next();
  if (!req.is(["application/json", "application/*+json"])) {
    return next(unsupportedMediaType(`send the body as application/json; got ${req.headers["content-type"] ?? "no Content-Type"}`));
  }
  parseJson(req, res, next);
};
