import net from "node:net";
import { describe, expect, inject, it } from "vitest";
import { connectRedis } from "@slipway/shared";
import { startRedisServer } from "@slipway/shared/embedded";

/** Sends one raw RESP command per entry on a fresh connection; answers the first line of each reply. */
async function rawRedis(url: string, commands: string[][]): Promise<string[]> {
  const { hostname, port } = new URL(url);
  const socket = net.connect({ host: hostname, port: Number(port) });
  const replies: string[] = [];
  let buffer = "";
  return new Promise((resolve, reject) => {
    socket.on("error", reject);
    socket.on("data", (chunk) => {
      buffer += chunk.toString();
      let newline;
      while ((newline = buffer.indexOf("\r\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 2);
        // Only status, error and integer replies here: their first line is the whole reply.
        if (/^[+\-:]/.test(line)) replies.push(line);
        if (replies.length === commands.length) {
          socket.end();
          resolve(replies);
        }
      }
    });
    socket.on("connect", () => {
      for (const command of commands) socket.write(`*${command.length}\r\n${command.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join("")}`);
    });
  });
}

describe("Redis requires authentication", () => {
  it("the harness's Redis refuses clients without the password or with a wrong one", async () => {
    const url = inject("services").redisUrl;
    const password = decodeURIComponent(new URL(url).password);
    expect(password.length).toBeGreaterThanOrEqual(16);
    const [noAuth] = await rawRedis(url, [["GET", "slipway:apps"]]);
    expect(noAuth).toMatch(/^-NOAUTH/);
    const [wrong, afterWrong] = await rawRedis(url, [["AUTH", "not-the-password"], ["PING"]]);
    expect(wrong).toMatch(/^-WRONGPASS/);
    expect(afterWrong).toMatch(/^-NOAUTH/);
    const [wrongDefaultUser] = await rawRedis(url, [["AUTH", "default", "not-the-password"]]);
    expect(wrongDefaultUser).toMatch(/^-WRONGPASS/);
    expect(await rawRedis(url, [["AUTH", password], ["PING"]])).toEqual(["+OK", "+PONG"]);
    // What every service does with REDIS_URL: the password in it is what authenticates.
    const client = connectRedis(url);
    try {
      expect(await client.ping()).toBe("PONG");
    } finally {
      client.disconnect();
    }
  });

  it("the embedded redis-server has a fresh random password each start (unless given one), and no CONFIG, DEBUG, MODULE or REPLICAOF", async () => {
    const first = await startRedisServer();
    const second = await startRedisServer();
    try {
      expect(first.password).not.toBe(second.password);
      expect(first.url).toBe(`redis://:${first.password}@127.0.0.1:${new URL(first.url).port}`);
      const replies = await rawRedis(first.url, [
        ["AUTH", first.password],
        ["CONFIG", "SET", "dir", "/tmp"],
        ["DEBUG", "SLEEP", "0"],
        ["MODULE", "LIST"],
        ["REPLICAOF", "127.0.0.1", "1"],
        ["SET", "k", "v"],
      ]);
      expect(replies[0]).toBe("+OK");
      for (const reply of replies.slice(1, 5)) expect(reply).toMatch(/^-ERR unknown command/);
      expect(replies[5]).toBe("+OK");
      expect((await rawRedis(second.url, [["AUTH", first.password]]))[0]).toMatch(/^-WRONGPASS/);
    } finally {
      await Promise.all([first.stop(), second.stop()]);
    }
  });
});
