import type { AppRecord, Build } from "@slipway/shared";
import type { ApiContext } from "../context";
import { errors } from "../errors";

export async function requireApp(ctx: ApiContext, name: string): Promise<AppRecord> {
  const app = await ctx.apps.get(name);
  if (!app) throw errors.appNotFound(name);
  return app;
}

export async function requireBuild(ctx: ApiContext, id: string): Promise<Build> {
  const build = await ctx.builds.get(id);
  if (!build) throw errors.buildNotFound(id);
  return build;
}
