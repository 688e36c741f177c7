/**
 * The build worker's container healthcheck (`node services/build-worker/dist/healthcheck.js`):
 * exit 0 while the worker's heartbeat is fresh, 1 with the reason otherwise. Reads only the
 * heartbeat file, so it starts in milliseconds and needs neither Redis credentials nor a port.
 */
import { DEFAULT_SCRATCH_DIR } from "@slipway/shared";
import { heartbeatFile, heartbeatProblem } from "@slipway/shared/light";

const problem = await heartbeatProblem(heartbeatFile(process.env.SCRATCH_DIR || DEFAULT_SCRATCH_DIR));
if (problem) {
  console.error(`build worker unhealthy: ${problem}`);
  process.exitCode = 1;
} else {
  console.log("build worker healthy");
}
