import type { AppRecord, Build } from "@slipway/shared";
import type { ApiContext } from "../context";
import { notFound } from "../errors";

export async function requireApp(ctx: ApiContext, name: string): Promise<AppRecord> {
  const app = await ctx.apps.get(name);
  if (!app) throw notFound(`app ${name}`);
  return app;
}

export async function requireBuild(ctx: ApiContext, id: unknown): Promise<Build> {
  const build = typeof id === "string" && id.length <= 64 ? await ctx.builds.get(id) : undefined;
  if (!build) throw notFound(`build ${id}`);
  return build;
}
