import { Router } from "express";
import { z } from "zod";
import { appUrl, InvalidDomainError, normaliseDomain } from "@slipway/shared";
import type { ApiContext } from "../context";
import { errors } from "../errors";
import { errorSchema } from "../openapi";
import { route } from "../route";
import { appParams } from "../schemas";
import { requireApp } from "./lookups";

const domainBody = z.object({ domain: z.string().min(1).max(253) }).strict().openapi("DomainRequest");
const domainParams = appParams.extend({ domain: z.string().min(1).max(253) });
const domainsSchema = z.object({ app: z.string(), url: z.string(), domains: z.array(z.string()) }).openapi("Domains");
const noSuchApp = { 404: { description: "no such app", schema: errorSchema } };

/**
 * An app's custom domains: the front door routes each to the app beside `<app>.<SLIPWAY_DOMAIN>`
 * (their DNS records point at it). A domain belongs to one app; names under SLIPWAY_DOMAIN are
 * the apps' own addresses and cannot be claimed.
 */
export function domainRoutes(ctx: ApiContext, mount: string): Router {
  const router = Router();
  const view = async (app: string) => ({ app, url: appUrl(ctx.config, app), domains: await ctx.domains.list(app) });
  const checked = (domain: string) => {
    let name: string;
    try {
      name = normaliseDomain(domain);
    } catch (error) {
      if (error instanceof InvalidDomainError) throw errors.invalidDomain(error.message);
      throw error;
    }
    const own = ctx.config.SLIPWAY_DOMAIN;
    if (name === own || name.endsWith(`.${own}`)) throw errors.invalidDomain(`${name} is under SLIPWAY_DOMAIN (${own}), whose names are the apps' own addresses`);
    return name;
  };
  route(
    router,
    mount,
    { method: "get", path: "/apps/:app/domains", summary: "The app's custom domains", params: appParams, responses: { 200: { description: "the domains", schema: domainsSchema }, ...noSuchApp } },
    async ({ params }, _req, res) => {
      const app = await requireApp(ctx, params.app);
      res.json(await view(app.name));
    },
  );
  route(
    router,
    mount,
    {
      method: "post",
      path: "/apps/:app/domains",
      summary: "Route a domain to the app (its DNS record must point at the front door); 409 when another app has it",
      params: appParams,
      body: { schema: domainBody },
      responses: {
        201: { description: "added", schema: domainsSchema },
        200: { description: "the app had it already", schema: domainsSchema },
        400: { description: "not a domain name", schema: errorSchema },
        409: { description: "another app's domain", schema: errorSchema },
        ...noSuchApp,
      },
    },
    async ({ params, body }, _req, res) => {
      const app = await requireApp(ctx, params.app);
      const domain = checked(body.domain);
      const had = (await ctx.domains.list(app.name)).includes(domain);
      const added = await ctx.domains.add(app.name, domain);
      if (!added.added) throw errors.domainTaken(domain, added.owner);
      await ctx.instances.announce(app.name);
      ctx.logger.info({ app: app.name, domain }, "domain added");
      res.status(had ? 200 : 201).json(await view(app.name));
    },
  );
  route(
    router,
    mount,
    {
      method: "delete",
      path: "/apps/:app/domains/:domain",
      summary: "Stop routing a domain to the app",
      params: domainParams,
      responses: { 200: { description: "removed", schema: domainsSchema }, 400: { description: "not a domain name", schema: errorSchema }, 404: { description: "no such app or domain", schema: errorSchema } },
    },
    async ({ params }, _req, res) => {
      const app = await requireApp(ctx, params.app);
      const domain = checked(params.domain);
      if (!(await ctx.domains.remove(app.name, domain))) throw errors.domainNotFound(app.name, domain);
      await ctx.instances.announce(app.name);
      ctx.logger.info({ app: app.name, domain }, "domain removed");
      res.json(await view(app.name));
    },
  );
  return router;
}
