/**
 * `npm run build`: compiles each service and the CLI into one ES module apiece
 * (`<package>/dist/main.js`), and bundles the dashboard. Runs before `npm start` and `npm test`,
 * in the test harness's global set-up, and in the image build.
 *
 * esbuild rather than tsc: the sources import without file extensions (bundler resolution), which
 * Node's own loader refuses, and one file per process start means one read instead of a walk
 * over hundreds of modules, which is most of what a start costs. Only the workspace's own code
 * (`@slipway/*`) goes into a bundle; npm packages stay external, loaded from node_modules as
 * they are (some read files beside themselves at run time: BullMQ's Lua scripts, pino's workers).
 */
import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";
import { buildDashboard } from "./build-dashboard";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Every compiled entry point: source → output, both relative to the repository root. */
export const COMPILED_ENTRIES = [
  { source: "services/api/src/main.ts", out: "services/api/dist/main.js" },
  { source: "services/build-worker/src/main.ts", out: "services/build-worker/dist/main.js" },
  { source: "services/build-worker/src/healthcheck.ts", out: "services/build-worker/dist/healthcheck.js" },
  { source: "services/runtime-agent/src/main.ts", out: "services/runtime-agent/dist/main.js" },
  { source: "cli/src/main.ts", out: "cli/dist/main.js" },
] as const;

/** npm packages are resolved by Node at run time; the workspace's own packages are bundled. */
const externalPackages: Plugin = {
  name: "external-packages",
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith("@slipway/") || path.isAbsolute(args.path) ? undefined : { path: args.path, external: true }));
  },
};

async function compile(entry: (typeof COMPILED_ENTRIES)[number]): Promise<void> {
  const result = await build({
    entryPoints: [path.join(root, entry.source)],
    outfile: path.join(root, entry.out),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: "linked",
    plugins: [externalPackages],
    write: false,
    logLevel: "warning",
  });
  // Written beside and renamed over: a process starting while another build runs (tests run side
  // by side) reads the old file or the new one, never half of one.
  for (const file of result.outputFiles) {
    await mkdir(path.dirname(file.path), { recursive: true });
    const temporary = `${file.path}.${process.pid}.tmp`;
    await writeFile(temporary, file.contents);
    await rename(temporary, file.path);
  }
}

export async function buildAll(): Promise<void> {
  await Promise.all([...COMPILED_ENTRIES.map(compile), buildDashboard()]);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  buildAll().then(
    () => console.log(`built ${COMPILED_ENTRIES.length} entry points and the dashboard in ${Date.now() - started} ms`),
    (error: Error) => {
      console.error(`build failed: ${error.message}`);
      process.exit(1);
    },
  );
}
