import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["cli/test/**/*.test.ts", "shared/test/**/*.test.ts", "services/*/test/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: ["test/harness/global-setup.ts"],
    pool: "forks",
    // Two cores: builds and app processes are the heavy part, so two files at a time.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // A backstop only: every wait in a test has its own deadline and message (a build, an agent
    // serving), and on a loaded two-core machine a build plus an agent start can pass a minute.
    testTimeout: 300_000,
    hookTimeout: 180_000,
    reporters: ["default"],
  },
});
