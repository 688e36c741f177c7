import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Router } from "express";
import { z } from "zod";
import { errors } from "../errors";
import { errorSchema } from "../openapi";
import { route } from "../route";

/**
 * Where `npm run build` puts the bundle: this package's own dist directory. Found from the nearest
 * package.json up, because this module runs from src/routes/ in development and from inside the
 * compiled dist/main.js otherwise.
 */
const DEFAULT_DASHBOARD_DIR = path.join(packageDir(path.dirname(fileURLToPath(import.meta.url))), "dist/dashboard");

function packageDir(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "package.json"))) return dir;
    if (path.dirname(dir) === dir) return from;
  }
}

const notBuilt = { 503: { description: "the dashboard has not been built (npm run build)", schema: errorSchema } };

/** The dashboard's static files, index.html and its script, as `npm run build` bundled them into `dir`. */
export function dashboardRoutes(dir: string = DEFAULT_DASHBOARD_DIR): Router {
  const router = Router();
  // Read on each request: a rebuild shows without restarting the API, and the files are small.
  const builtFile = async (name: string) => {
    try {
      return await readFile(path.join(dir, name), "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      throw errors.dashboardNotBuilt(name, dir);
    }
  };
  route(
    router,
    "",
    { method: "get", path: "/", summary: "The dashboard", open: true, responses: { 200: { description: "HTML page", schema: z.string(), contentType: "text/html" }, ...notBuilt } },
    async (_input, _req, res) => {
      const page = await builtFile("index.html");
      res.type("html").send(page);
    },
  );
  route(
    router,
    "",
    {
      method: "get",
      path: "/dashboard.js",
      summary: "The dashboard's script",
      open: true,
      responses: { 200: { description: "JavaScript module", schema: z.string(), contentType: "application/javascript" }, ...notBuilt },
    },
    async (_input, _req, res) => {
      const script = await builtFile("dashboard.js");
      res.type("application/javascript").setHeader("Cache-Control", "no-cache").send(script);
    },
  );
  return router;
}
