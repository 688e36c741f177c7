import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { InstanceProxy } from "../src/proxy";

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** An app that echoes WebSocket messages and answers plain requests with the headers it got. */
async function echoApp(): Promise<{ port: number; upgrades: http.IncomingHttpHeaders[] }> {
  const upgrades: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => res.end(JSON.stringify(req.headers)));
  const wss = new WebSocketServer({ server });
  wss.on("connection", (socket, req) => {
    upgrades.push(req.headers);
    socket.on("message", (data) => socket.send(`echo ${data.toString()}`));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(() => new Promise<void>((resolve) => {
    for (const client of wss.clients) client.terminate();
    wss.close();
    server.close(() => resolve());
  }));
  return { port: (server.address() as AddressInfo).port, upgrades };
}

async function proxyTo(port: number): Promise<InstanceProxy> {
  const proxy = new InstanceProxy();
  await proxy.listen(0, "127.0.0.1");
  proxy.setUpstream(port);
  closers.push(async () => void (await proxy.close(0)));
  return proxy;
}

function open(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once("open", () => resolve(socket));
    socket.once("error", reject);
  });
}

const roundTrip = (socket: WebSocket, text: string) =>
  new Promise<string>((resolve) => {
    socket.once("message", (data) => resolve(data.toString()));
    socket.send(text);
  });

describe("the instance's proxy", () => {
  it("passes WebSocket upgrades to the app, and the connection stays with the process it was opened on across a switch", async () => {
    const old = await echoApp();
    const next = await echoApp();
    const proxy = await proxyTo(old.port);
    const socket = await open(`ws://127.0.0.1:${proxy.port}/live`, { "X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https" });
    closers.push(() => socket.terminate());
    expect(await roundTrip(socket, "one")).toBe("echo one");
    expect(old.upgrades[0]).toMatchObject({ "x-forwarded-for": "198.51.100.7, 127.0.0.1", "x-forwarded-proto": "https", "x-request-id": expect.any(String) });

    proxy.setUpstream(next.port);
    expect(await roundTrip(socket, "two")).toBe("echo two");
    const reopened = await open(`ws://127.0.0.1:${proxy.port}/live`);
    closers.push(() => reopened.terminate());
    expect(await roundTrip(reopened, "three")).toBe("echo three");
    expect(next.upgrades).toHaveLength(1);
    expect(old.upgrades).toHaveLength(1);
  });

  it("tells the app the client's address, scheme, host and a request id on plain requests", async () => {
    const app = await echoApp();
    const proxy = await proxyTo(app.port);
    const direct = (await (await fetch(`http://127.0.0.1:${proxy.port}/`)).json()) as Record<string, string>;
    expect(direct).toMatchObject({ "x-forwarded-for": "127.0.0.1", "x-forwarded-proto": "http", "x-forwarded-host": `127.0.0.1:${proxy.port}` });
    expect(direct["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    const forwarded = (await (await fetch(`http://127.0.0.1:${proxy.port}/`, { headers: { "X-Request-Id": "req-1", "X-Forwarded-Host": "shop.example.org" } })).json()) as Record<string, string>;
    expect(forwarded).toMatchObject({ "x-request-id": "req-1", "x-forwarded-host": "shop.example.org" });
  });

  it("closes open WebSockets when it closes, after its grace", async () => {
    const app = await echoApp();
    const proxy = new InstanceProxy();
    await proxy.listen(0, "127.0.0.1");
    proxy.setUpstream(app.port);
    const socket = await open(`ws://127.0.0.1:${proxy.port}/`);
    const closed = new Promise((resolve) => socket.once("close", resolve));
    await proxy.close(100);
    await closed;
  });

  it("lets requests in flight finish when it closes, and says how many it had to cut when the drain time ran out", async () => {
    const release: (() => void)[] = [];
    const slow = http.createServer((_req, res) => release.push(() => res.end("done")));
    await new Promise<void>((resolve) => slow.listen(0, "127.0.0.1", resolve));
    closers.push(() => new Promise<void>((resolve) => slow.close(() => resolve())));
    const ask = (port: number) =>
      new Promise<string>((resolve) => {
        http.get({ host: "127.0.0.1", port, agent: false }, (answer) => {
          let body = "";
          answer.on("data", (chunk: Buffer) => (body += chunk.toString()));
          answer.on("end", () => resolve(body));
          answer.on("error", () => resolve("cut"));
        }).on("error", () => resolve("cut"));
      });
    const waitFor = async (count: number) => {
      while (release.length < count) await new Promise((resolve) => setTimeout(resolve, 10));
    };

    const finishing = new InstanceProxy();
    await finishing.listen(0, "127.0.0.1");
    finishing.setUpstream((slow.address() as AddressInfo).port);
    const answered = ask(finishing.port!);
    await waitFor(1);
    const drained = finishing.close(10_000);
    release.shift()!();
    expect(await drained).toBe(0);
    expect(await answered).toBe("done");

    const cutting = new InstanceProxy();
    await cutting.listen(0, "127.0.0.1");
    cutting.setUpstream((slow.address() as AddressInfo).port);
    const pending = [ask(cutting.port!), ask(cutting.port!)];
    await waitFor(2);
    expect(await cutting.close(200)).toBe(2);
    expect(await Promise.all(pending)).toEqual(["cut", "cut"]);
    for (const done of release.splice(0)) done();
  });
});
