/**
 * `npm run build`: bundles the dashboard (dashboard/src, plain TypeScript) into one minified
 * script beside a copy of its index.html, in the directory the API serves it from. Runs before
 * `npm start` and `npm test`, and in the image build, so no request ever waits for a bundler.
 */
import { copyFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const source = path.join(root, "dashboard");
/** Where the API looks unless DASHBOARD_DIR says otherwise. */
export const DEFAULT_DASHBOARD_OUT = path.join(root, "services/api/dist/dashboard");

export async function buildDashboard(outDir: string = DEFAULT_DASHBOARD_OUT): Promise<void> {
  await mkdir(outDir, { recursive: true });
  await build({
    entryPoints: [path.join(source, "src/main.ts")],
    outfile: path.join(outDir, "dashboard.js"),
    bundle: true,
    format: "esm",
    target: "es2022",
    minify: true,
    logLevel: "warning",
  });
  await copyFile(path.join(source, "index.html"), path.join(outDir, "index.html"));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = path.resolve(process.env.DASHBOARD_DIR ?? DEFAULT_DASHBOARD_OUT);
  buildDashboard(outDir).then(
    () => console.log(`dashboard built into ${path.relative(process.cwd(), outDir) || "."}`),
    (error: Error) => {
      console.error(`dashboard build failed: ${error.message}`);
      process.exit(1);
    },
  );
}
