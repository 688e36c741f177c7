import type { Request, RequestHandler, Response, Router } from "express";
import type { AnyZodObject, z, ZodType } from "zod";
import { documentRoute, type RouteDoc } from "./openapi";
import { checkParamsHaveErrors, jsonBody, parseBody, parseParams, parseQuery } from "./validation";

type Infer<S> = S extends ZodType ? z.infer<S> : undefined;

/** What a handler receives: params, query and body already checked against the documented schemas. */
export interface RouteInput<P, Q, B> {
  params: Infer<P>;
  query: Infer<Q>;
  body: Infer<B>;
}

export interface RouteSpec<P, Q, B> extends Omit<RouteDoc, "params" | "query" | "body"> {
  params?: P;
  query?: Q;
  /** A JSON body, parsed by `parser` (a JSON body of up to 256 kB unless given) and then validated. */
  body?: { schema: B; parser?: RequestHandler };
  /** A body the handler streams itself: documented, never read or validated here. */
  rawBody?: { contentType: string; schema: ZodType };
}

export type RouteHandler<P, Q, B> = (input: RouteInput<P, Q, B>, req: Request, res: Response) => unknown;

/**
 * Mounts a handler on `router` and documents it in the OpenAPI registry in one step. Bad input is
 * answered with the catalogue's 400s before the handler runs. `mountPath` is where the router is
 * mounted (`/v1`), so the document shows full paths.
 */
export function route<P extends AnyZodObject | undefined = undefined, Q extends AnyZodObject | undefined = undefined, B extends ZodType | undefined = undefined>(
  router: Router,
  mountPath: string,
  spec: RouteSpec<P, Q, B>,
  handler: RouteHandler<P, Q, B>,
): void {
  const { params, query, body, rawBody, ...doc } = spec;
  const template = `${mountPath}${doc.path}`;
  if (params) checkParamsHaveErrors(params, template);
  documentRoute({
    ...doc,
    path: template,
    ...(params ? { params } : {}),
    ...(query ? { query } : {}),
    ...(body?.schema ? { body: { contentType: "application/json", schema: body.schema } } : rawBody ? { body: rawBody } : {}),
  });
  // Metrics label requests by this template, never by the raw URL.
  const nameRoute: RequestHandler = (_req, res, next) => {
    res.locals.routeTemplate = template;
    next();
  };
  const handle: RequestHandler = async (req, res) => {
    const input = {
      params: params ? parseParams(params, req.params) : undefined,
      query: query ? parseQuery(query, req.query) : undefined,
      body: body?.schema ? parseBody(body.schema, req.body) : undefined,
    } as RouteInput<P, Q, B>;
    await handler(input, req, res);
  };
  const parsers = body ? [body.parser ?? jsonBody] : [];
  router[doc.method as "get" | "post" | "put" | "delete" | "patch"](doc.path, nameRoute, ...parsers, handle);
}
