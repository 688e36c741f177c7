import type { ErrorRequestHandler } from "express";
import { InvalidIdError, isRedisTimeout, isTransientStorageError, type Logger } from "@slipway/shared";
import { errors, HttpError } from "./errors";

/** Maps what express, body-parser and the repositories throw onto the catalogue; anything else is a 500. */
function toHttpError(error: unknown): HttpError | undefined {
  if (error instanceof HttpError) return error;
  const failure = error as { type?: string; limit?: number; message?: string } | undefined;
  if (failure?.type === "entity.parse.failed") return errors.invalidJson();
  if (failure?.type === "entity.too.large") return errors.payloadTooLarge(failure.limit!);
  if (failure?.type === "encoding.unsupported" || failure?.type === "charset.unsupported") return errors.unsupportedEncoding(failure.message!);
  // A route that forgot to validate an id: the repository refused it, so it is still the caller's error.
  if (error instanceof InvalidIdError) return errors.invalidId(error.message);
  // A dependency down: 503, and the request may be sent again once it is back.
  if (isRedisTimeout(error)) return errors.redisUnavailable();
  if (isTransientStorageError(error)) return errors.storageUnavailable();
  return undefined;
}

/** The one renderer: every error leaves as `{ error: { code, message } }`; anything unexpected is a logged 500. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error, req, res, _next) => {
    // A client that hangs up mid-upload is not a server error: nothing is left to answer.
    if ((error?.code === "ECONNRESET" || error?.code === "ERR_STREAM_PREMATURE_CLOSE") && (req.destroyed || res.destroyed)) {
      logger.debug({ requestId: req.id }, "client went away mid-request");
      return;
    }
    let http = toHttpError(error);
    if (!http) {
      logger.error({ err: error, requestId: req.id }, "request failed");
      http = errors.internal();
    } else if (http.status === 503 && !(error instanceof HttpError)) {
      // The caller hears which dependency; the operator also needs what it answered.
      logger.warn({ err: error, requestId: req.id, code: http.code }, "request failed: a dependency is down");
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // A refused upload may still be arriving: close the connection rather than read it all.
    if (http.status === 413 || (http.status >= 400 && req.readable && !req.complete)) res.setHeader("Connection", "close");
    res.status(http.status).json({ error: { code: http.code, message: http.message } });
  };
}
