import { describe, expect, it } from "vitest";
import { createLogger, loadAgentConfig, loadApiConfig, loadWorkerConfig } from "../src/index";

const env = {
  REDIS_URL: "redis://127.0.0.1:6379",
  S3_ENDPOINT: "http://127.0.0.1:9000",
  S3_ACCESS_KEY: "access-key-value-1f2e",
  S3_SECRET_KEY: "secret-key-value-3d4c",
  API_TOKEN: "api-token-value-5b6a",
  APP: "demo",
  INSTANCE_ID: "i-1",
  PORT: "8081",
  RUNTIME_ROOT: "/srv/demo",
};

function capture() {
  const lines: string[] = [];
  return { logger: createLogger("log-test", "info", { write: (line: string) => void lines.push(line) }), text: () => lines.join("") };
}

describe("createLogger", () => {
  it("never writes the value of a *_KEY, *_TOKEN or *_SECRET setting, however the config or env is logged", () => {
    const { logger, text } = capture();
    const configs = [loadApiConfig(env), loadWorkerConfig(env), loadAgentConfig(env)];
    for (const config of configs) {
      logger.info(config, "config at the top level");
      logger.info({ config }, "config one level down");
      logger.info({ ctx: { config } }, "config two levels down");
    }
    logger.info({ job: { env: { NPM_TOKEN: "npm-token-value-7f8e", GREETING: "hi" } } }, "an app's env");
    const secrets = [
      ...configs.flatMap((config) => Object.entries(config).filter(([key]) => /_(KEY|TOKEN|SECRET)$/.test(key)).map(([, value]) => String(value))),
      "npm-token-value-7f8e",
    ];
    expect(secrets).toContain(env.API_TOKEN);
    for (const secret of secrets) expect(text()).not.toContain(secret);
    expect(text()).toContain('"S3_SECRET_KEY":"[Redacted]"');
    expect(text()).toContain('"GREETING":"hi"');
  });
});
