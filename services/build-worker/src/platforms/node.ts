import path from "node:path";
import { installDependencies } from "./node-install";
import { readPackageJson } from "./node-package-json";
import { choosePackageManager, managerCommands } from "./node-package-managers";
import { chooseStartCommand } from "./node-start";
import { chooseToolchain, toolchainEnv } from "./node-toolchain";
import { SHIPPED_BIN_DIR, shipTools } from "./node-tools";
import type { Platform, PlatformContext, PlatformResult } from "./platform";
import { exists } from "./fs-checks";

const FRAMEWORKS: [pkg: string, label: string][] = [
  ["express", "Express"],
  ["next", "Next.js"],
  ["fastify", "Fastify"],
  ["koa", "Koa"],
  ["@nestjs/core", "NestJS"],
  ["react", "React"],
  ["vue", "Vue.js"],
  ["@angular/core", "Angular"],
];

/** Scripts run after the install when package.json has them, in this order (Oryx's). */
const BUILD_SCRIPTS = ["build", "build:azure"];

export const node: Platform = {
  name: "nodejs",

  async detect(sourceDir) {
    return (await exists(path.join(sourceDir, "package.json"))) ? "strong" : false;
  },

  async build(ctx: PlatformContext): Promise<PlatformResult> {
    const pkg = await readPackageJson(ctx.sourceDir);
    const manager = await choosePackageManager(ctx.sourceDir, pkg.packageManager);
    const tools = await chooseToolchain(ctx, pkg, manager);
    const commands = managerCommands(manager, path.join(ctx.baseEnv.HOME!, ".pnpm-store"));
    const env = await toolchainEnv(ctx, manager, tools);

    // Oryx's options: CUSTOM_BUILD_COMMAND replaces install and build; RUN_BUILD_COMMAND replaces the build scripts.
    if (ctx.options.CUSTOM_BUILD_COMMAND) {
      ctx.log(`Running CUSTOM_BUILD_COMMAND (instead of install and build): ${ctx.options.CUSTOM_BUILD_COMMAND}`);
      await ctx.run("/bin/sh", ["-c", ctx.options.CUSTOM_BUILD_COMMAND], { env, label: "CUSTOM_BUILD_COMMAND" });
    } else {
      await installDependencies(ctx, env, manager, tools, commands.install);
      await ctx.phase("framework steps", async () => {
        if (ctx.options.RUN_BUILD_COMMAND) {
          ctx.log(`Running RUN_BUILD_COMMAND (instead of the build scripts): ${ctx.options.RUN_BUILD_COMMAND}`);
          await ctx.run("/bin/sh", ["-c", ctx.options.RUN_BUILD_COMMAND], { env, label: "RUN_BUILD_COMMAND" });
        } else {
          for (const script of BUILD_SCRIPTS) {
            if (!pkg.scripts?.[script]) continue;
            const command = commands.run(script);
            ctx.log(`Running ${command.join(" ")} ...`);
            await ctx.run(command[0]!, command.slice(1), { env, label: command.join(" ") });
          }
        }
      });
    }
    if (ctx.options.PRUNE_DEV_DEPENDENCIES === "true") {
      ctx.log(`PRUNE_DEV_DEPENDENCIES=true: removing devDependencies (${commands.prune.join(" ")}) ...`);
      await ctx.run(commands.prune[0]!, commands.prune.slice(1), { env, label: "pruning devDependencies" });
    }

    const shipped = tools.nodeDir !== undefined || tools.packageDirs.length > 0;
    if (shipped) {
      await shipTools(ctx, { ...(tools.nodeDir ? { node: tools.nodeDir } : {}), packages: tools.packageDirs });
      ctx.log(`Shipping the build's ${[tools.nodeDir ? `Node ${tools.nodeVersion}` : "", ...tools.packageDirs.map((dir) => path.basename(dir))].filter(Boolean).join(", ")} in ${SHIPPED_BIN_DIR}: instances run them first on PATH`);
    }

    const deps = { ...pkg.dependencies, ...pkg.devDependencies };
    const frameworks = FRAMEWORKS.filter(([name]) => name in deps).map(([, label]) => label);
    const startupCommand = await chooseStartCommand(ctx, pkg, manager, commands.start);
    return {
      name: "nodejs",
      version: tools.nodeVersion,
      manifest: { nodeVersion: tools.nodeVersion, ...(shipped ? { nodeBinDir: SHIPPED_BIN_DIR } : {}) },
      frameworks,
      ...(startupCommand ? { startupCommand } : {}),
    };
  },
};
