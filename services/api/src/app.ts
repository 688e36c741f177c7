import { randomUUID } from "node:crypto";
import express, { type Express } from "express";
import { pinoHttp } from "pino-http";
import { requireBearer } from "./auth";
import type { ApiContext } from "./context";
import { errorHandler } from "./error-handler";
import { errors } from "./errors";
import { GitHost } from "./git/git-host";
import type { ApiMetrics } from "./metrics";
import { appLogRoutes } from "./routes/app-logs";
import { appRoutes } from "./routes/apps";
import { buildRoutes } from "./routes/builds";
import { dashboardRoutes } from "./routes/dashboard";
import { gitRoutes } from "./routes/git";
import { hostRoutes } from "./routes/hosts";
import { domainRoutes } from "./routes/domains";
import { scaleRoutes } from "./routes/scale";
import { instanceRoutes } from "./routes/instances";
import { releaseRoutes } from "./routes/releases";
import { sourceRoutes } from "./routes/sources";
import { systemRoutes } from "./routes/system";

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;
export const API_PREFIX = "/v1";

/** Wires the routes; everything stateful comes in through `ctx` (and `git`, whose owner closes it). */
export function createApi(ctx: ApiContext, metrics: ApiMetrics, git = new GitHost(ctx)): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", false);

  app.use(
    pinoHttp({
      logger: ctx.logger,
      // Callers (and the CLI) may pass their own id; it follows the build into the worker's logs.
      genReqId: (req, res) => {
        const given = req.headers["x-request-id"];
        const id = typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
        res.setHeader("X-Request-Id", id);
        return id;
      },
      customLogLevel: (_req, res, error) => (error || res.statusCode >= 500 ? "error" : "info"),
    }),
  );
  app.use(metrics.middleware);
  app.use(systemRoutes(ctx, metrics));
  app.use(dashboardRoutes(ctx.config.DASHBOARD_DIR));
  // git clients authenticate with HTTP Basic, not the bearer token: outside /v1.
  app.use(gitRoutes(ctx, git));

  const v1 = express.Router();
  v1.use(requireBearer(ctx.config.API_TOKEN));
  v1.use(appRoutes(ctx, API_PREFIX));
  v1.use(sourceRoutes(ctx, API_PREFIX));
  v1.use(buildRoutes(ctx, API_PREFIX));
  v1.use(releaseRoutes(ctx, API_PREFIX));
  v1.use(instanceRoutes(ctx, API_PREFIX));
  v1.use(scaleRoutes(ctx, API_PREFIX));
  v1.use(hostRoutes(ctx, API_PREFIX));
  v1.use(domainRoutes(ctx, API_PREFIX));
  v1.use(appLogRoutes(ctx, API_PREFIX));
  app.use(API_PREFIX, v1);

  app.use((req, _res, next) => next(errors.routeNotFound(req.method, req.path)));
  app.use(errorHandler(ctx.logger));
  return app;
}
