import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Router } from "express";
import { z } from "zod";
import { route } from "../route";

const dashboardDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../dashboard");

/** The dashboard's static files: index.html and its script, bundled once on first request. */
export function dashboardRoutes(): Router {
  const router = Router();
  let bundle: Promise<string> | undefined;
  const script = () =>
    (bundle ??= build({ entryPoints: [path.join(dashboardDir, "src/main.ts")], bundle: true, write: false, format: "esm", target: "es2022", minify: true }).then(
      (result) => result.outputFiles[0]!.text,
    ));
  route(
    router,
    "",
    { method: "get", path: "/", summary: "The dashboard", open: true, responses: { 200: { description: "HTML page", schema: z.string(), contentType: "text/html" } } },
    async (_input, _req, res) => {
      res.type("html").send(await readFile(path.join(dashboardDir, "index.html"), "utf8"));
    },
  );
  route(
    router,
    "",
    { method: "get", path: "/dashboard.js", summary: "The dashboard's script", open: true, responses: { 200: { description: "JavaScript module", schema: z.string(), contentType: "application/javascript" } } },
    async (_input, _req, res) => {
      res.type("application/javascript").setHeader("Cache-Control", "no-cache").send(await script());
    },
  );
  return router;
}
