/**
 * The host agent's container healthcheck (`node services/runtime-agent/dist/healthcheck.js`):
 * exit 0 while the host agent's heartbeat file is fresh (it rewrites it after each heartbeat Redis
 * answered), 1 with the reason otherwise. Reads only that file: no credentials, no port.
 */
import { heartbeatFile, heartbeatProblem } from "@slipway/shared/light";

const runtimeRoot = process.env.RUNTIME_ROOT;
const problem = runtimeRoot ? await heartbeatProblem(heartbeatFile(runtimeRoot), Date.now(), "the host agent", "has stopped") : "RUNTIME_ROOT is not set";
if (problem) {
  console.error(`host agent unhealthy: ${problem}`);
  process.exitCode = 1;
} else {
  console.log("host agent healthy");
}
