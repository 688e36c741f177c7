import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadAgentConfig, loadApiConfig, loadWorkerConfig } from "@slipway/shared";

/**
 * This machine has no Docker engine to run `docker compose config`, so this test checks what that
 * would, and what it would not: every command exists in the repo, and every service's environment
 * (with .env.example's values) passes that service's own config validation.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const compose = parse(readFileSync(path.join(root, "compose.yaml"), "utf8"), { merge: true }) as {
  services: Record<string, { command?: string[]; environment?: Record<string, string>; depends_on?: Record<string, { condition: string }>; deploy?: { replicas?: number }; ports?: string[]; healthcheck?: unknown; image?: string; build?: string }>;
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
      "services/runtime-agent": loadAgentConfig,
    };
    let slipwayServices = 0;
    for (const [name, service] of Object.entries(compose.services)) {
      const command = service.command ?? [];
      if (command[0] !== "npm") continue;
      expect(command.slice(0, 3), name).toEqual(["npm", "start", "-w"]);
      const workspace = command[3]!;
      const pkg = JSON.parse(readFileSync(path.join(root, workspace, "package.json"), "utf8")) as { scripts: { start: string } };
      const entry = pkg.scripts.start.split(" ").at(-1)!;
      expect(existsSync(path.join(root, workspace, entry)), `${name}: ${workspace}/${entry}`).toBe(true);
      expect(() => loaders[workspace]!(environmentOf(name)), name).not.toThrow();
      slipwayServices += 1;
    }
    expect(slipwayServices).toBe(5); // the API, the build workers, three agents
  });

  it("has the topology operators rely on", () => {
    const services = compose.services;
    expect(services.redis!.command).toEqual(expect.arrayContaining(["--appendonly", "yes"]));
    expect(services["minio-init"]!.depends_on!.minio!.condition).toBe("service_healthy");
    expect(services["build-worker"]!.deploy!.replicas).toBe(2);
    const agents = Object.keys(services).filter((name) => services[name]!.command?.includes("services/runtime-agent"));
    expect(agents).toHaveLength(3);
    const agentEnv = agents.map(environmentOf);
    expect(new Set(agentEnv.map((e) => e.INSTANCE_ID)).size).toBe(3);
    expect(new Set(agentEnv.map((e) => e.PORT)).size).toBe(3);
    expect(new Set(agentEnv.map((e) => e.APP)).size).toBe(1);
    for (const [name, service] of Object.entries(services)) {
      for (const dependency of Object.keys(service.depends_on ?? {})) expect(services[dependency], `${name} depends on ${dependency}`).toBeDefined();
      if (name !== "minio-init" && name !== "build-worker") expect(service.healthcheck, `${name} has a healthcheck`).toBeDefined();
    }
    expect(services.api!.build).toBe(".");
    const dockerfile = readFileSync(path.join(root, "Dockerfile"), "utf8");
    expect(dockerfile).toMatch(/^FROM .+ AS deps$/m);
    expect(dockerfile).toMatch(/python3 python3-venv .*zstd/);
    expect(readFileSync(path.join(root, ".gitignore"), "utf8")).toMatch(/^\.env$/m);
  });

  it("gives the services that run untrusted code what their sandboxes need, and the API none of it", () => {
    const services = compose.services as Record<string, { command?: string[]; privileged?: boolean; user?: string; security_opt?: string[] }>;
    const sandboxed = Object.keys(services).filter((name) => /build-worker|runtime-agent/.test(services[name]!.command?.join(" ") ?? ""));
    expect(sandboxed).toHaveLength(4);
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
    expect(clients).toHaveLength(5);
    for (const name of clients) expect(new URL(environmentOf(name).REDIS_URL!).password, `${name}'s REDIS_URL`).toBe(password);
  });
});
