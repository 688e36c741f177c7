import type { AppRecord, Build } from "@slipway/shared";
import type { ApiContext } from "../context";
import { notFound } from "../errors";
import { buildIdParam } from "../validation";

export async function requireApp(ctx: ApiContext, name: string): Promise<AppRecord> {
  const app = await ctx.apps.get(name);
  if (!app) throw notFound(`app ${name}`);
  return app;
}

export async function requireBuild(ctx: ApiContext, id: unknown): Promise<Build> {
  const build = await ctx.builds.get(buildIdParam(id));
  if (!build) throw notFound(`build ${id}`);
  return build;
}
