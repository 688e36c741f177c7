import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { create as createTar } from "tar";
import { writeTree } from "./stack";

interface Published {
  tarball: Buffer;
  manifest: Record<string, unknown>;
}

/**
 * A small npm registry of the test's own (packuments and tarballs, nothing else): what `npm view`,
 * `npm pack` and `npm install` need. `host` is where it listens and how its URLs name it.
 */
export async function startNpmRegistry(host = "127.0.0.1") {
  const packages = new Map<string, Map<string, Published>>();
  const work = await mkdtemp(path.join(os.tmpdir(), "slipway-npm-registry-"));
  const requests: string[] = [];
  let base = "";

  const server: Server = createServer((request, response) => {
    const url = decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname);
    requests.push(url);
    const tarball = /^\/(.+)\/-\/[^/]+-(\d[^/]*)\.tgz$/.exec(url);
    if (tarball) {
      const found = packages.get(tarball[1]!)?.get(tarball[2]!);
      if (!found) return void response.writeHead(404).end();
      return void response.writeHead(200, { "Content-Type": "application/octet-stream" }).end(found.tarball);
    }
    const versions = packages.get(url.slice(1));
    if (!versions) return void response.writeHead(404, { "Content-Type": "application/json" }).end('{"error":"Not found"}');
    const latest = [...versions.keys()].at(-1)!;
    const packument = { name: url.slice(1), "dist-tags": { latest }, versions: Object.fromEntries([...versions].map(([version, entry]) => [version, entry.manifest])) };
    response.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(packument));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  base = `http://${host}:${(server.address() as AddressInfo).port}`;

  return {
    url: `${base}/`,
    requests,
    /** Publishes `name@version` with `files` (paths inside the package) and package.json fields `fields`. */
    async publish(name: string, version: string, files: Record<string, string>, fields: Record<string, unknown> = {}): Promise<void> {
      const dir = path.join(work, `${name.replace("/", "+")}-${version}-${Math.random().toString(36).slice(2)}`);
      const manifest = { name, version, ...fields };
      await writeTree(path.join(dir, "package"), { ...files, "package.json": JSON.stringify(manifest) });
      const file = `${dir}.tgz`;
      await createTar({ gzip: true, file, cwd: dir, portable: true, mtime: new Date(0) }, ["package"]);
      const bytes = await readFile(file);
      const integrity = `sha512-${createHash("sha512").update(bytes).digest("base64")}`;
      const shasum = createHash("sha1").update(bytes).digest("hex");
      const unscoped = name.split("/").pop();
      const dist = { tarball: `${base}/${name}/-/${unscoped}-${version}.tgz`, integrity, shasum };
      if (!packages.has(name)) packages.set(name, new Map());
      packages.get(name)!.set(version, { tarball: bytes, manifest: { ...manifest, dist } });
    },
    async close(): Promise<void> {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await rm(work, { recursive: true, force: true });
    },
  };
}

export type NpmRegistry = Awaited<ReturnType<typeof startNpmRegistry>>;
