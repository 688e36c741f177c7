import { createHash, timingSafeEqual } from "node:crypto";
import type { RequestHandler } from "express";
import { errors } from "./errors";

const digest = (value: string) => createHash("sha256").update(value).digest();

/**
 * With `API_TOKEN` set, every request must carry `Authorization: Bearer <token>`. Both sides are
 * hashed first so the comparison takes the same time whatever the guess's length or content.
 */
export function requireBearer(token: string | undefined): RequestHandler {
  if (!token) return (_req, _res, next) => next();
  const expected = digest(token);
  return (req, res, next) => {
    const match = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "");
    if (match && timingSafeEqual(digest(match[1]!.trim()), expected)) return next();
    res.setHeader("WWW-Authenticate", 'Bearer realm="slipway"');
    next(errors.unauthorized());
  };
}
