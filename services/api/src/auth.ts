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

/** The user name and password of an `Authorization: Basic` header, if it has one. */
function basicCredentials(header: string | undefined): { user: string; password: string } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? "");
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? undefined : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * git clients speak HTTP Basic only, so git's routes take the API token as the password (any
 * user name, as App Service's deployment credentials allow). The user name is kept in
 * `res.locals.gitUser`: git records it as the pusher.
 */
export function requireBasicPassword(token: string | undefined): RequestHandler {
  const expected = token ? digest(token) : undefined;
  return (req, res, next) => {
    const credentials = basicCredentials(req.headers.authorization);
    if (!expected || (credentials && timingSafeEqual(digest(credentials.password), expected))) {
      res.locals.gitUser = credentials?.user || "anonymous";
      return next();
    }
    res.setHeader("WWW-Authenticate", 'Basic realm="slipway"');
    next(errors.gitUnauthorized());
  };
}
