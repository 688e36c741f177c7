import net from "node:net";

/**
 * A TCP relay in front of a real server (the store, Redis) whose answers can be held back: the
 * network fault a stalled store or a half-open connection looks like to a client. On `listenOn`,
 * it also makes a server on loopback reachable from hosts in network namespaces.
 */
export async function stallingRelay(target: URL, listenOn = "127.0.0.1") {
  let holdAfterBytes = Infinity;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    let relayed = 0;
    client.pipe(upstream);
    upstream.on("data", (chunk: Buffer) => {
      const room = holdAfterBytes - relayed;
      if (room <= 0) return;
      const passed = chunk.subarray(0, room);
      relayed += passed.length;
      client.write(passed);
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
  });
  await new Promise<void>((resolve) => server.listen(0, listenOn, resolve));
  return {
    endpoint: `http://${listenOn}:${(server.address() as net.AddressInfo).port}`,
    /** From now on each new connection's answer stops after `bytes` bytes. */
    holdAfter(bytes: number) {
      holdAfterBytes = bytes;
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

