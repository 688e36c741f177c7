/**
 * The router's container healthcheck (`node services/router/dist/healthcheck.js`): exit 0 while
 * its heartbeat file is fresh (rewritten while its syncs reach Redis and Caddy), 1 with the reason
 * otherwise. Reads only that file.
 */
import { heartbeatProblem } from "@slipway/shared/light";

const file = process.env.ROUTER_HEARTBEAT_FILE || "/tmp/slipway-router.heartbeat";
const problem = await heartbeatProblem(file, Date.now(), "the router", "has stopped syncing");
if (problem) {
  console.error(`router unhealthy: ${problem}`);
  process.exitCode = 1;
} else {
  console.log("router healthy");
}
