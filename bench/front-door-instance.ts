/**
 * bench/front-door's instance, in a process of its own as in production: a small node app behind
 * the runtime agent's own proxy (what a host port serves). Sends its proxy's port to the parent.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { InstanceProxy } from "../services/runtime-agent/src/proxy";

const app = http.createServer((_request, response) => response.end("bench"));
app.keepAliveTimeout = 5000;
await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
const proxy = new InstanceProxy();
const port = await proxy.listen(0, "127.0.0.1");
proxy.setUpstream((app.address() as AddressInfo).port);
process.send!({ port });
process.on("disconnect", () => process.exit(0));
