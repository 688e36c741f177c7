import type { Request, Response } from "express";
import { errors } from "./errors";

/** Cursors are opaque to clients: base64url JSON of where the next page starts. */
export function encodeCursor(value: string | number): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

export function decodeCursor<T extends string | number>(cursor: string | undefined, type: "string" | "number"): T | undefined {
  if (cursor === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (typeof value === type) return value as T;
  } catch {
    // fall through
  }
  throw errors.invalidCursor();
}

/** Lists stay JSON arrays; the next page is announced in `X-Next-Cursor` and a `Link: rel="next"` header. */
export function sendPage(req: Request, res: Response, items: unknown[], next: string | number | undefined): void {
  if (next !== undefined) {
    const cursor = encodeCursor(next);
    const url = new URL(req.originalUrl, "http://localhost");
    url.searchParams.set("cursor", cursor);
    res.setHeader("X-Next-Cursor", cursor);
    res.setHeader("Link", `<${url.pathname}${url.search}>; rel="next"`);
  }
  res.json(items);
}
