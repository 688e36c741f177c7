import { QueueEvents } from "bullmq";
import type { RequestHandler } from "express";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { connectRedis, QueueName } from "@slipway/shared";
import type { ApiContext } from "./context";

export interface ApiMetrics {
  registry: Registry;
  /** Times each request by its route template (never the raw URL, which would explode the series). */
  middleware: RequestHandler;
  close(): Promise<void>;
}

/**
 * Prometheus metrics: HTTP durations by route and status, the queue's depth, build durations by
 * platform and outcome (from the queue's completion events), and the number of releases.
 */
export function createMetrics(ctx: ApiContext): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "slipway_api_" });

  const http = new Histogram({
    name: "slipway_http_request_duration_seconds",
    help: "HTTP request duration by method, route template and status",
    labelNames: ["method", "route", "status"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  new Gauge({
    name: "slipway_build_queue_jobs",
    help: "Build jobs in the queue by state",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      const counts = await ctx.buildQueue.getJobCounts("waiting", "active", "failed", "delayed", "prioritized");
      this.set({ state: "waiting" }, (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0));
      this.set({ state: "active" }, counts.active ?? 0);
      this.set({ state: "failed" }, counts.failed ?? 0);
    },
  });
  const buildDuration = new Histogram({
    name: "slipway_build_duration_seconds",
    help: "Build duration (start to end) by platform and outcome",
    labelNames: ["platform", "outcome"],
    buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800],
    registers: [registry],
  });
  const builds = new Counter({ name: "slipway_builds_finished_total", help: "Builds finished, by outcome", labelNames: ["outcome"], registers: [registry] });
  new Gauge({
    name: "slipway_releases",
    help: "Releases made, over all apps",
    registers: [registry],
    async collect() {
      const apps = await ctx.apps.list();
      const counts = await Promise.all(apps.map((app) => ctx.releases.count(app.name)));
      this.set(counts.reduce((sum, n) => sum + n, 0));
    },
  });

  // Each API process observes every finished build once through the queue's event stream.
  const events = new QueueEvents(QueueName.builds, { connection: connectRedis(ctx.config.REDIS_URL), prefix: ctx.config.QUEUE_PREFIX });
  const observe = async (jobId: string) => {
    const build = await ctx.builds.get(jobId);
    if (!build?.startedAt || !build.finishedAt) return;
    const seconds = (Date.parse(build.finishedAt) - Date.parse(build.startedAt)) / 1000;
    buildDuration.observe({ platform: build.platform ?? "unknown", outcome: build.status }, seconds);
    builds.inc({ outcome: build.status });
  };
  events.on("completed", ({ jobId }) => void observe(jobId).catch(() => undefined));
  events.on("failed", ({ jobId }) => void observe(jobId).catch(() => undefined));
  events.on("error", () => undefined);

  const middleware: RequestHandler = (req, res, next) => {
    const end = http.startTimer();
    res.once("finish", () => {
      const template = typeof res.locals.routeTemplate === "string" ? res.locals.routeTemplate : "unmatched";
      end({ method: req.method, route: template, status: String(res.statusCode) });
    });
    next();
  };

  return {
    registry,
    middleware,
    close: async () => {
      await events.close();
    },
  };
}
