import { Router } from "express";
import { z } from "zod";
import { requireBasicPassword } from "../auth";
import type { ApiContext } from "../context";
import type { GitHost } from "../git/git-host";
import { errorSchema } from "../openapi";
import { route } from "../route";
import { appParams } from "../schemas";

const GIT_PREFIX = "/git";

const servicesQuery = z.object({ service: z.enum(["git-upload-pack", "git-receive-pack"]) });
const gitAnswer = (what: string) => ({ description: `git's smart-HTTP ${what}`, schema: z.string().openapi({ format: "binary" }), contentType: "application/octet-stream" });
const refused = { 401: { description: "HTTP Basic with the API token as the password (any user name) is required when API_TOKEN is set", schema: errorSchema } };

/**
 * Each app's repository at `/git/<app>.git`, as App Service's Kudu serves one: `git clone` it,
 * `git push` to its default branch to build and release. git's own http-backend speaks the
 * protocol; these routes only authenticate and hand it the request.
 */
export function gitRoutes(ctx: ApiContext, host: GitHost): Router {
  const router = Router();
  // Mounted at the root with full paths, as the other open routes are, so the route table and the
  // OpenAPI document name the same paths.
  router.use(GIT_PREFIX, requireBasicPassword(ctx.config.API_TOKEN));

  route(
    router,
    "",
    {
      method: "get",
      path: `${GIT_PREFIX}/:app.git/info/refs`,
      summary: "git smart HTTP: the repository's refs (the first request of a clone, fetch or push); the repository is created empty if missing",
      open: true,
      params: appParams,
      query: servicesQuery,
      responses: { 200: gitAnswer("ref advertisement"), ...refused },
    },
    ({ params: { app } }, req, res) => host.serve(req, res, app, "info/refs"),
  );

  for (const service of ["git-upload-pack", "git-receive-pack"] as const) {
    route(
      router,
      "",
      {
        method: "post",
        path: `${GIT_PREFIX}/:app.git/${service}`,
        summary:
          service === "git-upload-pack"
            ? "git smart HTTP: send objects (clone, fetch)"
            : "git smart HTTP: receive a push; a push to the default branch builds and releases its commit, the build log streamed back as remote: lines",
        open: true,
        params: appParams,
        rawBody: { contentType: `application/x-${service}-request`, schema: z.string().openapi({ format: "binary" }) },
        responses: { 200: gitAnswer(`${service} result`), ...refused },
      },
      ({ params: { app } }, req, res) => host.serve(req, res, app, service),
    );
  }
  return router;
}
