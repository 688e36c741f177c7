import express, { Router } from "express";
import { z } from "zod";
import type { ApiContext } from "../context";
import { notFound } from "../errors";
import { appNameParam, parseBody } from "../validation";

const envSchema = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name"), z.string());
const appConfigSchema = z
  .object({ env: envSchema.optional(), buildEnv: envSchema.optional(), startupCommand: z.string().min(1).max(4096).optional() })
  .strict();

/** App records, and the per-app views of releases and instances. */
export function appRoutes(ctx: ApiContext): Router {
  const router = Router();
  // Only this router's routes take JSON bodies; source uploads stay raw streams.
  router.use("/apps", express.json({ limit: "256kb", type: ["application/json", "application/*+json"] }));

  const requireApp = async (name: string) => {
    const app = await ctx.apps.get(name);
    if (!app) throw notFound(`app ${name}`);
    return app;
  };

  router.get("/apps", async (_req, res) => {
    res.json(await ctx.apps.list());
  });

  router.get("/apps/:app", async (req, res) => {
    res.json(await requireApp(appNameParam(req.params.app)));
  });

  router.put("/apps/:app", async (req, res) => {
    const name = appNameParam(req.params.app);
    const changes = parseBody(appConfigSchema, req.body);
    const { app, created } = await ctx.apps.upsert(name, changes);
    res.status(created ? 201 : 200).json(app);
  });

  router.get("/apps/:app/releases", async (req, res) => {
    const name = appNameParam(req.params.app);
    await requireApp(name);
    res.json(await ctx.releases.list(name));
  });

  router.get("/apps/:app/instances", async (req, res) => {
    const name = appNameParam(req.params.app);
    await requireApp(name);
    res.json(await ctx.instances.list(name));
  });

  return router;
}
