/**
 * `npm run build`: compiles each service and the CLI into one ES module apiece
 * (`<package>/dist/main.js`), and bundles the dashboard. Runs before `npm start` and `npm test`,
 * in the test harness's global set-up, and in the image build.
 *
 * esbuild rather than tsc: the sources import without file extensions (bundler resolution), which
 * Node's own loader refuses, and one file per process start means one read instead of a walk
 * over hundreds of modules. The workspace's own code (`@slipway/*`) is always inside. npm packages
 * are too for the processes users wait on, the runtime agent (an instance restart) and the CLI
 * (every command): loading them from node_modules, CommonJS file by file, cost the agent more than
 * half its start (bench/start). The API and the build worker load theirs from node_modules as
 * they are: they start rarely, and their packages include native addons (BullMQ's msgpackr).
 *
 * With Go installed, it also builds the agent's restore helper, slipway-fetch, beside the agent
 * (`services/runtime-agent/dist/slipway-fetch`); without Go the agent restores with node alone.
 */
import { execFile } from "node:child_process";
import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";
import { buildDashboard } from "./build-dashboard";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Every compiled entry point: source → output, both relative to the repository root. */
export const COMPILED_ENTRIES = [
  { source: "services/api/src/main.ts", out: "services/api/dist/main.js", packages: "external" },
  { source: "services/build-worker/src/main.ts", out: "services/build-worker/dist/main.js", packages: "external" },
  { source: "services/build-worker/src/healthcheck.ts", out: "services/build-worker/dist/healthcheck.js", packages: "external" },
  { source: "services/router/src/main.ts", out: "services/router/dist/main.js", packages: "external" },
  { source: "services/router/src/healthcheck.ts", out: "services/router/dist/healthcheck.js", packages: "bundled" },
  { source: "services/runtime-agent/src/main.ts", out: "services/runtime-agent/dist/main.js", packages: "bundled" },
  { source: "services/runtime-agent/src/healthcheck.ts", out: "services/runtime-agent/dist/healthcheck.js", packages: "bundled" },
  { source: "cli/src/main.ts", out: "cli/dist/main.js", packages: "bundled" },
] as const;

/**
 * What CommonJS packages inside an ES module bundle expect to find: `require` (for Node's built-in
 * modules) and their own location.
 */
const COMMONJS_GLOBALS = [
  'import { createRequire as __slipwayCreateRequire } from "node:module";',
  'import { fileURLToPath as __slipwayFileURLToPath } from "node:url";',
  "const require = __slipwayCreateRequire(import.meta.url);",
  "const __filename = __slipwayFileURLToPath(import.meta.url);",
  'const __dirname = __slipwayFileURLToPath(new URL(".", import.meta.url));',
].join("\n");

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
    outdir: path.join(root, path.dirname(entry.out)),
    entryNames: path.basename(entry.out, ".js"),
    // What a bundled process loads lazily (the S3 client) goes to a chunk of its own, read only
    // when first needed: the agent opens its port without it.
    splitting: entry.packages === "bundled",
    chunkNames: "chunks/[name]-[hash]",
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: "linked",
    plugins: entry.packages === "external" ? [externalPackages] : [],
    banner: entry.packages === "bundled" ? { js: COMMONJS_GLOBALS } : undefined,
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

/** Where `npm run build` leaves slipway-fetch, and where the compiled agent looks for it. */
export const FETCH_HELPER_OUT = "services/runtime-agent/dist/slipway-fetch";

/** Answers whether it was built: not when Go is missing. A Go that fails to build it fails the build. */
async function buildFetchHelper(): Promise<boolean> {
  const out = path.join(root, FETCH_HELPER_OUT);
  const temporary = `${out}.${process.pid}.tmp`;
  await mkdir(path.dirname(out), { recursive: true });
  const built = await new Promise<boolean>((resolve, reject) => {
    const env = { ...process.env, CGO_ENABLED: "0", GOTOOLCHAIN: "local" };
    execFile("go", ["build", "-trimpath", "-ldflags=-s -w", "-o", temporary, "."], { cwd: path.join(root, "services/runtime-agent/fetch"), env }, (error, _stdout, stderr) => {
      if (!error) resolve(true);
      else if ((error as NodeJS.ErrnoException).code === "ENOENT") resolve(false);
      else reject(new Error(`go build of slipway-fetch failed: ${stderr.trim() || error.message}`));
    });
  });
  if (built) await rename(temporary, out);
  return built;
}

/** Answers whether slipway-fetch was built. */
export async function buildAll(): Promise<boolean> {
  const [helper] = await Promise.all([buildFetchHelper(), ...COMPILED_ENTRIES.map(compile), buildDashboard()]);
  return helper;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  buildAll().then(
    (helper) =>
      console.log(
        `built ${COMPILED_ENTRIES.length} entry points, the dashboard${helper ? " and slipway-fetch" : " (no Go: no slipway-fetch, agents restore with node alone)"} in ${Date.now() - started} ms`,
      ),
    (error: Error) => {
      console.error(`build failed: ${error.message}`);
      process.exit(1);
    },
  );
}
