import type { RequestHandler, Router } from "express";
import { documentRoute, type RouteDoc } from "./openapi";

/**
 * Mounts a handler on `router` and documents it in the OpenAPI registry in one step. `mountPath`
 * is where the router is mounted (`/v1`), so the document shows full paths.
 */
export function route(router: Router, mountPath: string, doc: Omit<RouteDoc, "path"> & { path: string }, ...handlers: RequestHandler[]): void {
  const template = `${mountPath}${doc.path}`;
  documentRoute({ ...doc, path: template });
  // Metrics label requests by this template, never by the raw URL.
  const nameRoute: RequestHandler = (_req, res, next) => {
    res.locals.routeTemplate = template;
    next();
  };
  router[doc.method as "get" | "post" | "put" | "delete" | "patch"](doc.path, nameRoute, ...handlers);
}
