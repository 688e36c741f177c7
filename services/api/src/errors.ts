import type { ErrorRequestHandler } from "express";
import { InvalidIdError, type Logger } from "@slipway/shared";

/** An error with the HTTP status and stable snake_case code of the API's error shape, `{ error: { code, message } }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

export const badRequest = (code: string, message: string) => new HttpError(400, code, message);
export const unauthorized = () => new HttpError(401, "unauthorized", "a valid bearer token is required");
export const notFound = (what: string) => new HttpError(404, "not_found", `${what} does not exist`);
export const conflict = (code: string, message: string) => new HttpError(409, code, message);
export const tooLarge = (limit: number) => new HttpError(413, "payload_too_large", `the body is larger than the limit of ${limit} bytes`);
export const unsupportedMediaType = (message: string) => new HttpError(415, "unsupported_media_type", message);
export const tooManyRequests = (code: string, message: string) => new HttpError(429, code, message);
export const unavailable = (message: string) => new HttpError(503, "unavailable", message);

/** Renders every error as `{ error: { code, message } }`; anything unexpected is a logged 500. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error, req, res, _next) => {
    // A client that hangs up mid-upload is not a server error: nothing is left to answer.
    if ((error?.code === "ECONNRESET" || error?.code === "ERR_STREAM_PREMATURE_CLOSE") && (req.destroyed || res.destroyed)) {
      logger.debug({ requestId: req.id }, "client went away mid-request");
      return;
    }
    let http: HttpError;
    if (error instanceof HttpError) http = error;
    else if (error?.type === "entity.parse.failed") http = badRequest("invalid_json", "the body is not valid JSON");
    else if (error?.type === "entity.too.large") http = tooLarge(error.limit);
    else if (error?.type === "encoding.unsupported" || error?.type === "charset.unsupported") http = unsupportedMediaType(error.message);
    // A route that forgot to validate an id: the repository refused it, so it is still the caller's error.
    else if (error instanceof InvalidIdError) http = badRequest("invalid_id", error.message);
    else {
      logger.error({ err: error, requestId: req.id }, "request failed");
      http = new HttpError(500, "internal", "internal error");
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
