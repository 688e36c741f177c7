#!/usr/bin/env node
// Runs the compiled CLI (`npm run build`): loading TypeScript at every start would cost more than
// most commands take.
import { existsSync } from "node:fs";

const compiled = new URL("../dist/main.js", import.meta.url);
if (!existsSync(compiled)) {
  process.stderr.write("slipway: the CLI is not built: run `npm run build` in the Slipway checkout\n");
  process.exit(1);
}
await import(compiled.href);
