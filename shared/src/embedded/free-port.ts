import net from "node:net";

/**
 * Ports handed out are drawn from here: below the kernel's ephemeral range (32768 up by default),
 * from which every outgoing connection takes its local port, so none can take a port between its
 * handing out and its listener binding it (an app's private port, a test's service); and above
 * the default INSTANCE_PORTS (20000-20999).
 */
const FREE_PORTS = { from: 21_000, to: 32_767 };

/** A port nothing listens on, on any address, drawn at random from FREE_PORTS (the kernel's pick when none is free). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = FREE_PORTS.from + Math.floor(Math.random() * (FREE_PORTS.to - FREE_PORTS.from + 1));
    if ((await listenOnce(port)) !== undefined) return port;
  }
  const port = await listenOnce(0);
  if (port === undefined) throw new Error("no free port");
  return port;
}

/** Listens on `port` (0: any) on every address and closes again; the port, or undefined when it is taken. */
function listenOnce(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.on("error", () => resolve(undefined));
    server.listen(port, "0.0.0.0", () => {
      const { port: bound } = server.address() as net.AddressInfo;
      server.close(() => resolve(bound));
    });
  });
}

/** Resolves once something accepts TCP connections on `port`, or rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number, host = "127.0.0.1"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ port, host }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listened on ${host}:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
