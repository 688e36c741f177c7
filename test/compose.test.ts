import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadHostConfig, loadApiConfig, loadRouterConfig, loadWorkerConfig } from "@slipway/shared";
import { COMPILED_ENTRIES } from "../scripts/build";

/**
 * This machine has no Docker engine to run `docker compose config`, so this test checks what that
 * would, and what it would not: every command exists in the repo, and every service's environment
 * (with .env.example's values) passes that service's own config validation.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const compose = parse(readFileSync(path.join(root, "compose.yaml"), "utf8"), { merge: true }) as {
  services: Record<string, { command?: string[]; environment?: Record<string, string>; depends_on?: Record<string, { condition: string }>; deploy?: { mode?: string; replicas?: number }; ports?: string[]; healthcheck?: { test: string[] }; image?: string; build?: string | { context: string; target?: string }; init?: boolean }>;
};
const dotenv = Object.fromEntries(
  readFileSync(path.join(root, ".env.example"), "utf8")
    .split("\n")
    .filter((line) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(line))
    .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
);

/** Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error}, and $$ for a literal $. */
function interpolate(value: string): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-?])([^}]*))?\}/g, (_m, name: string, op?: string, arg?: string) => {
    const set = dotenv[name];
    if (set !== undefined && set !== "") return set;
    if (op === "-") return arg ?? "";
    if (op === "?") throw new Error(`${name} is required by compose.yaml but missing from .env.example`);
    return "";
  });
}

const environmentOf = (service: string) =>
  Object.fromEntries(Object.entries(compose.services[service]!.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]));

describe("compose.yaml", () => {
  it("runs every service's command from this repo, and each service's environment passes its config validation", () => {
    const loaders: Record<string, (env: NodeJS.ProcessEnv) => unknown> = {
      "services/api": loadApiConfig,
      "services/build-worker": loadWorkerConfig,
      "services/runtime-agent": loadHostConfig,
      "services/router": loadRouterConfig,
    };
    let slipwayServices = 0;
    const compiled = COMPILED_ENTRIES.map((entry) => entry.out as string);
    for (const [name, service] of Object.entries(compose.services)) {
      const command = service.command ?? [];
      if (command[0] !== "node") continue;
      // Node on the compiled entry, as the workspace's own `npm start` runs it (no npm in between).
      expect(command, name).toHaveLength(2);
      const workspace = command[1]!.replace(/\/dist\/main\.js$/, "");
      const pkg = JSON.parse(readFileSync(path.join(root, workspace, "package.json"), "utf8")) as { scripts: { start: string } };
      expect(`node ${workspace}/${pkg.scripts.start.split(" ").at(-1)}`, name).toBe(command.join(" "));
      expect(compiled, `${name}: npm run build compiles ${command[1]}`).toContain(command[1]);
      expect(existsSync(path.join(root, workspace, "src/main.ts")), `${name}: ${workspace}/src/main.ts`).toBe(true);
      expect(() => loaders[workspace]!(environmentOf(name)), name).not.toThrow();
      slipwayServices += 1;
    }
    expect(slipwayServices).toBe(4); // the API, the build workers, the host agent, the router
  });

  it("has the topology operators rely on", () => {
    const services = compose.services;
    expect(services.redis!.command).toEqual(expect.arrayContaining(["--appendonly", "yes"]));
    // The API and the workers create the bucket: MinIO healthy is all they wait for.
    for (const name of ["api", "build-worker", "host-agent"]) expect(services[name]!.depends_on!.minio!.condition, name).toBe("service_healthy");
    expect(services["build-worker"]!.deploy).toEqual({ mode: "replicated", replicas: 2 });
    // Exec-form healthchecks hold no argument with spaces (podman 4.3 splits them).
    for (const [name, service] of Object.entries(services)) {
      const test = service.healthcheck?.test ?? [];
      if (test[0] === "CMD") expect(test.slice(1).some((arg) => arg.includes(" ")), `${name}'s exec-form healthcheck`).toBe(false);
    }
    expect(environmentOf("build-worker").TOOLS_DIR).toBe("/var/lib/slipway/tools");
    // One host agent runs every app's instances (no per-app agents), with its caches on a volume.
    const agents = Object.keys(services).filter((name) => services[name]!.command?.includes("services/runtime-agent/dist/main.js"));
    expect(agents).toEqual(["host-agent"]);
    const hostEnv = environmentOf("host-agent");
    expect(hostEnv.APP).toBeUndefined();
    const host = loadHostConfig(hostEnv);
    expect(host.HOST_ID).toBe("compose-1");
    expect(host.INSTANCE_PORTS).toHaveLength(20);
    expect(services["host-agent"]!.ports).toEqual(["20000-20019:20000-20019"]);
    const volume = (services["host-agent"] as { volumes?: string[] }).volumes?.[0]?.split(":")[1];
    for (const dir of [host.HOST_CACHE_DIR, host.SANDBOX_UID_DIR, host.RUNTIME_ROOT]) expect(dir?.startsWith(`${volume}/`), dir).toBe(true);
    for (const [name, service] of Object.entries(services)) {
      for (const dependency of Object.keys(service.depends_on ?? {})) expect(services[dependency], `${name} depends on ${dependency}`).toBeDefined();
      expect(service.healthcheck, `${name} has a healthcheck`).toBeDefined();
    }
    // The front door: Caddy publishes the ports the router and the API's URLs name; the two share only the admin socket's volume.
    const router = loadRouterConfig(environmentOf("router"));
    expect(services.caddy!.ports!.map(interpolate)).toContain(`${router.FRONT_DOOR_HTTP_PORT}:${router.FRONT_DOOR_HTTP_PORT}`);
    expect(loadApiConfig({ ...environmentOf("api"), API_TOKEN: "t" }).FRONT_DOOR_HTTP_PORT).toBe(router.FRONT_DOOR_HTTP_PORT);
    const socket = router.CADDY_ADMIN.slice("unix/".length);
    // Caddy's image starts it with the bootstrap that puts its admin API on that socket, and the
    // router reads per-app metrics from it: the Dockerfile builds the Caddy .ci/run tests against.
    expect(readFileSync(path.join(root, "services/router/caddy-bootstrap.json"), "utf8")).toContain(`"listen":"unix/${socket}"`);
    expect(services.caddy!.build).toEqual({ context: ".", target: "caddy" });
    const caddyVersion = /caddy_version="(v[\d.]+)"/.exec(readFileSync(path.join(root, ".ci/run"), "utf8"))![1];
    expect(readFileSync(path.join(root, "Dockerfile"), "utf8")).toContain(`github.com/caddyserver/caddy/v2/cmd/caddy@${caddyVersion}`);
    expect(readFileSync(path.join(root, "Dockerfile"), "utf8")).toContain("COPY services/router/caddy-bootstrap.json /etc/slipway/caddy.json");
    for (const name of ["caddy", "router"]) expect((services[name] as { volumes?: string[] }).volumes, name).toContain(`caddy-admin:${path.dirname(socket)}`);
    expect(services.api!.build).toBe(".");
    const dockerfile = readFileSync(path.join(root, "Dockerfile"), "utf8");
    expect(dockerfile).toMatch(/^FROM .+ AS deps$/m);
    expect(dockerfile).toMatch(/python3 python3-venv .*zstd/);
    expect(readFileSync(path.join(root, ".gitignore"), "utf8")).toMatch(/^\.env$/m);
  });

  it("gives the services that run untrusted code what their sandboxes need, and the API none of it", () => {
    const services = compose.services as Record<string, { command?: string[]; privileged?: boolean; user?: string; security_opt?: string[] }>;
    const sandboxed = Object.keys(services).filter((name) => /build-worker|runtime-agent/.test(services[name]!.command?.join(" ") ?? ""));
    expect(sandboxed).toHaveLength(2);
    for (const name of sandboxed) {
      expect(services[name]!.privileged, name).toBe(true);
      expect(services[name]!.security_opt, name).toEqual(expect.arrayContaining(["seccomp=unconfined"]));
      expect(services[name]!.user, `${name} runs as root to give each sandbox its own uid`).toBeUndefined();
    }
    expect(services.api!.privileged).toBeUndefined();
    expect(services.api!.user).toBe("node");
    const dockerfile = readFileSync(path.join(root, "Dockerfile"), "utf8");
    expect(dockerfile).toMatch(/bubblewrap slirp4netns util-linux/);
    expect(dockerfile).not.toMatch(/^USER /m);
  });

  it("Redis requires a password, every service's REDIS_URL carries it, and the dangerous commands are gone", () => {
    const command = compose.services.redis!.command!.map(interpolate);
    const password = command[command.indexOf("--requirepass") + 1];
    expect(password, "redis-server --requirepass").toMatch(/^[A-Za-z0-9._~-]{16,}$/);
    for (const name of ["CONFIG", "DEBUG", "MODULE", "REPLICAOF", "SLAVEOF"]) {
      const at = command.findIndex((arg, i) => arg === "--rename-command" && command[i + 1] === name);
      expect(command[at + 2], `rename-command ${name}`).toBe("");
    }
    expect(environmentOf("redis").REDISCLI_AUTH, "the healthcheck's redis-cli authenticates").toBe(password);
    const clients = Object.keys(compose.services).filter((name) => compose.services[name]!.environment?.REDIS_URL !== undefined);
    expect(clients).toEqual(["api", "build-worker", "host-agent", "router"]);
    for (const name of clients) expect(new URL(environmentOf(name).REDIS_URL!).password, `${name}'s REDIS_URL`).toBe(password);
  });
});

/** The Dockerfile's stages: name (the last one is the image) → its instructions. */
function dockerStages(): { name: string; from: string; body: string }[] {
  const dockerfile = readFileSync(path.join(root, "Dockerfile"), "utf8").replace(/\\\n/g, " ");
  return dockerfile
    .split(/^(?=FROM )/m)
    .filter((part) => part.startsWith("FROM "))
    .map((part) => {
      const [, from, name] = /^FROM (\S+)(?: AS (\S+))?/.exec(part)!;
      return { name: name ?? "image", from: from!, body: part };
    });
}

/** An image reference pinned to a version: a tag with digits in it, never latest or a bare major. */
const pinned = (image: string) => /:[^:]*\d+\.\d+\.\d+[^:]*$|:v0\.0\.0-\d{14}-[0-9a-f]{12}$|:\d+\.\d+\.\d+$/.test(image) && !/:latest$/.test(image);

describe("compose.yaml and the Dockerfile, hardened", () => {
  it("pins every image and base image by version; MinIO is built from the sources .ci/run tests against", () => {
    const images = Object.entries(compose.services).map(([name, service]) => [name, service.image] as const);
    for (const [name, image] of images) expect(image && pinned(image), `${name}: ${image}`).toBe(true);
    const stages = dockerStages();
    for (const stage of stages) {
      if (stages.some((other) => other.name === stage.from)) continue;
      expect(pinned(stage.from), `FROM ${stage.from}`).toBe(true);
    }
    const minioVersion = /go install github\.com\/minio\/minio@(\S+)/.exec(stages.find((s) => s.name === "minio-build")!.body)![1]!;
    expect(minioVersion).toMatch(/^v\d/);
    expect(compose.services.minio!.image).toBe(`slipway-minio:${minioVersion}`);
    expect(compose.services.minio!.build).toEqual({ context: ".", target: "minio" });
    const ci = readFileSync(path.join(root, ".ci/run"), "utf8");
    expect(ci).toContain(`minio_version="${minioVersion}"`);
    expect(ci).toMatch(/go install "?github\.com\/minio\/minio@\$\{minio_version\}"?/);
    expect(ci, "the cache path names the version, so a bump rebuilds").toMatch(/minio_cache="[^"]*\$\{minio_version\}[^"]*"/);
    expect(ci).not.toMatch(/@latest/);
  });

  it("runs every service under an init, and the build worker's healthcheck is its compiled heartbeat check", () => {
    for (const [name, service] of Object.entries(compose.services)) expect(service.init, `${name} has init: true`).toBe(true);
    const test = compose.services["build-worker"]!.healthcheck!.test;
    expect(test).toEqual(["CMD", "node", "services/build-worker/dist/healthcheck.js"]);
    expect(COMPILED_ENTRIES.map((entry) => entry.out as string)).toContain(test[2]);
  });

  it("builds in one stage and runs with production dependencies and the compiled output only", () => {
    const stages = dockerStages();
    const image = stages.at(-1)!;
    expect(image.name).toBe("image");
    expect(stages.find((s) => s.name === "build")!.body).toMatch(/^RUN npm run build$/m);
    // The agent's restore helper goes with the agent's output, built from its Go source.
    expect(stages.find((s) => s.name === "build")!.body).toMatch(/^COPY --from=fetch-build \/out\/slipway-fetch services\/runtime-agent\/dist\/slipway-fetch$/m);
    expect(stages.find((s) => s.name === "fetch-build")!.body).toMatch(/^COPY services\/runtime-agent\/fetch\/ \.\/$/m);
    expect(stages.find((s) => s.name === "fetch-build")!.body).toMatch(/go build .* -o \/out\/slipway-fetch \.$/m);
    expect(stages.find((s) => s.name === "deps")!.body).toMatch(/^RUN npm ci --omit=dev /m);
    expect(image.body).toMatch(/^COPY --from=deps \/app \.\/$/m);
    const copies = [...image.body.matchAll(/^COPY (.*)$/gm)].map((m) => m[1]!);
    for (const copy of copies) expect(copy, "the image copies from the stages only, never the source tree").toMatch(/^--from=(deps|build) /);
    for (const copy of copies.filter((c) => c.startsWith("--from=build "))) expect(copy).toMatch(/^--from=build \/app\/(services\/[a-z-]+|cli)\/(dist|bin) /);
    expect(image.body).toMatch(/^CMD \["node", "services\/api\/dist\/main\.js"\]$/m);
    expect(image.body).not.toMatch(/npm (start|run)|tsx/);
    const dockerignore = readFileSync(path.join(root, ".dockerignore"), "utf8");
    expect(dockerignore, "a local build's output never reaches the image").toMatch(/^\*\*\/dist$/m);
  });
});
