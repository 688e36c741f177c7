import path from "node:path";
import { fileURLToPath } from "node:url";
import { FETCH_HELPER_OUT } from "../../scripts/build";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * A service's compiled entry point, what production runs (`node services/<service>/dist/main.js`);
 * the global set-up builds it before any test starts.
 */
export const compiledEntry = (service: "api" | "build-worker" | "runtime-agent" | "router") => path.join(root, "services", service, "dist/main.js");

/** slipway-fetch as `npm run build` leaves it beside the compiled agent: built wherever Go is installed. */
export const fetchHelper = path.join(root, FETCH_HELPER_OUT);
