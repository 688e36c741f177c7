import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseManifest, storageKeys } from "@slipway/shared";
import { uniqueApp } from "../harness/env";
import { eventually } from "../harness/local-stack";
import { writeTree, type BuildView } from "../harness/stack";
import { useStack } from "../harness/use-stack";

/**
 * Node apps with real packages from the npm registry, built and served sandboxed through a runtime
 * agent process on this host (Node 20): Yarn 1 and pnpm apps started by their manager, a TypeScript
 * app compiled by `npm run build`, and apps whose engines.node asks for Node 18 and 22, which the
 * build fetches from the npm registry and ships with the app.
 */
const { stack, work, deploy, serve } = useStack("node-apps");
const npmRegistry = () => execFileSync("npm", ["config", "get", "registry"], { encoding: "utf8" }).trim().replace(/\/$/, "");
const fixtures = path.join(path.dirname(new URL(import.meta.url).pathname), "fixtures", "node");

interface Answer {
  message: string;
  node: string;
  uid: number;
}

/** Express answering its message, the Node it runs on and its uid. */
const expressApp = (message: string) =>
  `const app = require('express')(); app.get('/', (q, s) => s.json({ message: '${message}', node: process.version, uid: process.getuid() })); app.listen(process.env.PORT, '127.0.0.1');\n`;

/** Writes `files` with a package-lock.json that npm resolves from the registry, as a developer commits it. */
async function withNpmLock(name: string, files: Record<string, string>): Promise<Record<string, string>> {
  const dir = await writeTree(path.join(work, `${name}-lock`), files);
  execFileSync("npm", ["install", "--package-lock-only", "--silent", "--no-audit", "--no-fund"], { cwd: dir });
  return { ...files, "package-lock.json": await readFile(path.join(dir, "package-lock.json"), "utf8") };
}

async function deployAndServe(app: string, files: Record<string, string>): Promise<{ build: BuildView; log: string; answer: Answer; startupCommand?: string; nodeVersion?: string }> {
  const { build, log } = await deploy(app, await writeTree(path.join(work, app), files), 480_000);
  if (build.status !== "succeeded") throw new Error(`build ${build.status}: ${build.error}\n${log.slice(-3000)}`);
  const manifest = parseManifest(await stack.api.store.getText(storageKeys.manifest(app, build.id)));
  const { url, agent } = await serve(app);
  const answer = await eventually(async () => {
    const response = await fetch(`${url}/`).catch(() => undefined);
    return response?.ok ? ((await response.json()) as Answer) : undefined;
  }, 180_000, `${app} to answer`).catch((error: Error) => {
    throw new Error(`${error.message}\nagent output:\n${agent.output().slice(-3000)}`);
  });
  return { build, log, answer, startupCommand: manifest.startupCommand, nodeVersion: manifest.nodeVersion };
}

const hostNode = process.version;

describe("real Node apps build and serve inside the sandbox on a Node 20 host", () => {
  it("host Node is 20", () => {
    expect(hostNode).toMatch(/^v20\./);
  });

  it("a Yarn 1 app (yarn.lock): yarn install --frozen-lockfile, started with yarn start", async () => {
    const app = uniqueApp("yarn");
    const { log, answer, startupCommand } = await deployAndServe(app, {
      "package.json": JSON.stringify({ name: "yarn-express", version: "1.0.0", private: true, dependencies: { express: "4.21.2" }, scripts: { start: "node app.js" } }),
      // The fixture names no registry: the lock points at the one this machine's npm uses.
      "yarn.lock": (await readFile(path.join(fixtures, "express-4.21.2.yarn.lock"), "utf8")).replaceAll("__NPM_REGISTRY__", npmRegistry()),
      "app.js": expressApp("hello from yarn"),
    });
    expect(log).toMatch(/Package manager: yarn 1\.\d+\.\d+ \(yarn\.lock\)/);
    expect(log).toContain("Running yarn install --frozen-lockfile");
    expect(startupCommand).toBe("yarn start");
    expect(answer).toMatchObject({ message: "hello from yarn", node: hostNode });
    expect(answer.uid).not.toBe(0);
  }, 600_000);

  it("a pnpm app (pnpm-lock.yaml, packageManager pnpm@9.12.0): pnpm install --frozen-lockfile, started with pnpm start", async () => {
    const app = uniqueApp("pnpm");
    const { log, answer, startupCommand } = await deployAndServe(app, {
      "package.json": JSON.stringify({
        name: "pnpm-express",
        version: "1.0.0",
        private: true,
        packageManager: "pnpm@9.12.0",
        dependencies: { express: "4.21.2" },
        scripts: { start: "node app.js" },
      }),
      "pnpm-lock.yaml": await readFile(path.join(fixtures, "express-4.21.2.pnpm-lock.yaml"), "utf8"),
      "app.js": expressApp("hello from pnpm"),
    });
    expect(log).toContain("Package manager: pnpm 9.12.0 (pnpm-lock.yaml, pnpm@9.12.0 from packageManager)");
    expect(log).toContain("Running pnpm install --frozen-lockfile");
    expect(startupCommand).toBe("pnpm start");
    expect(answer).toMatchObject({ message: "hello from pnpm", node: hostNode });
  }, 600_000);

  it("a TypeScript app: tsc from devDependencies in npm run build, devDependencies pruned, dist/ served", async () => {
    const app = uniqueApp("typescript");
    await stack.api.apps.upsert(app, { buildEnv: { PRUNE_DEV_DEPENDENCIES: "true" } });
    const files = await withNpmLock(app, {
      "package.json": JSON.stringify({
        name: "ts-app",
        version: "1.0.0",
        private: true,
        scripts: { build: "tsc -p .", start: "node dist/server.js" },
        devDependencies: { typescript: "~5.6.3", "@types/node": "^20.0.0" },
      }),
      "tsconfig.json": JSON.stringify({ compilerOptions: { target: "ES2022", module: "commonjs", outDir: "dist", strict: true, types: ["node"] }, include: ["src"] }),
      "src/server.ts": [
        'import { createServer } from "node:http";',
        "const answer = (): string => JSON.stringify({ message: 'hello from typescript', node: process.version, uid: process.getuid?.() });",
        "createServer((_request, response) => response.end(answer())).listen(Number(process.env.PORT), '127.0.0.1');",
        "",
      ].join("\n"),
    });
    const { log, answer, startupCommand } = await deployAndServe(app, files);
    expect(log).toContain("Running npm ci --include=dev");
    expect(log).toContain("Running npm run build ...");
    expect(log).toContain("PRUNE_DEV_DEPENDENCIES=true: removing devDependencies (npm prune --omit=dev)");
    expect(startupCommand).toBe("npm start");
    expect(answer).toMatchObject({ message: "hello from typescript", node: hostNode });
  }, 600_000);

  for (const major of ["18", "22"]) {
    it(`an app whose engines.node is ${major}.x: Node ${major} from the npm registry builds it and, shipped with it, serves it`, async () => {
      const app = uniqueApp(`node${major}`);
      const files = await withNpmLock(app, {
        "package.json": JSON.stringify({ name: `node${major}-app`, version: "1.0.0", private: true, engines: { node: `${major}.x` }, dependencies: { express: "^4.21.0" }, scripts: { start: "node app.js" } }),
        "app.js": expressApp(`hello from node ${major}`),
      });
      const { log, answer, startupCommand, nodeVersion } = await deployAndServe(app, files);
      expect(nodeVersion).toMatch(new RegExp(`^${major}\\.\\d+\\.\\d+$`));
      expect(log).toContain(`Node ${major}.x was requested (package.json engines.node) but this worker has ${hostNode.slice(1)}`);
      expect(log).toContain(`Using Node ${nodeVersion} (wanted ${major}.x) from the worker's tool cache`);
      expect(startupCommand).toBe("npm start");
      expect(answer).toMatchObject({ message: `hello from node ${major}`, node: `v${nodeVersion}` });
      expect(answer.uid).not.toBe(0);
    }, 600_000);
  }
});
