import path from "node:path";
import semver from "semver";
import { readUntrustedText } from "@slipway/shared";
import { BuildFailure } from "../errors";
import { exists } from "./fs-checks";

export type ManagerName = "npm" | "yarn" | "pnpm";

/** The lock files Slipway knows, in the order one is chosen when a tree holds several. */
const LOCK_FILES: [file: string, manager: ManagerName][] = [
  ["yarn.lock", "yarn"],
  ["pnpm-lock.yaml", "pnpm"],
  ["package-lock.json", "npm"],
  ["npm-shrinkwrap.json", "npm"],
];

/** How the app's dependencies are installed: which manager, which version, from which lock file. */
export interface PackageManagerChoice {
  name: ManagerName;
  /** Yarn 2+ ("berry") is another program than Yarn 1 ("classic"), published as another package. */
  berry: boolean;
  /** The version wanted: exact when `packageManager` names one, else a range ("1", "9"); undefined: the worker's own npm. */
  range?: string;
  /** `packageManager`'s `+sha512.<hex>` (or another algorithm): the registry's tarball must match it. */
  hash?: { algorithm: string; hex: string };
  lockFile?: string;
  lockText?: string;
  /** Yarn 2+ installs for Plug'n'Play (its default) unless `.yarnrc.yml` says `nodeLinker: node-modules`. */
  pnp: boolean;
  /** Why this manager: for the build log. */
  reason: string;
  /** Lock files present but not used, for the build log. */
  ignoredLockFiles: string[];
}

/** `packageManager: "pnpm@9.12.0+sha512.abc"` → name, version, hash. */
export function parsePackageManagerField(value: unknown): { name: string; version: string; hash?: { algorithm: string; hex: string } } | undefined {
  if (typeof value !== "string") return undefined;
  const match = /^(@?[^@\s]+)@([^+\s]+)(?:\+(\w+)\.([0-9a-fA-F]+))?$/.exec(value.trim());
  if (!match) throw new BuildFailure(`package.json packageManager "${value}" is not <name>@<version>`);
  const [, name, version, algorithm, hex] = match;
  if (!semver.valid(version!)) throw new BuildFailure(`package.json packageManager "${value}": "${version}" is not an exact version`);
  return { name: name!, version: version!, ...(algorithm ? { hash: { algorithm: algorithm.toLowerCase(), hex: hex!.toLowerCase() } } : {}) };
}

/**
 * The package manager for the tree, as Oryx, Heroku and corepack decide it: the lock file names
 * the manager (yarn.lock, then pnpm-lock.yaml, then package-lock.json), `packageManager` its
 * version (and the manager itself when there is no lock file, or it names one of several present),
 * and for Yarn, `.yarnrc.yml`, `packageManager: yarn@2+` or a Yarn 2+ lock file mean Yarn 2+.
 */
export async function choosePackageManager(sourceDir: string, packageManagerField: unknown): Promise<PackageManagerChoice> {
  const declared = parsePackageManagerField(packageManagerField);
  if (declared && !["npm", "yarn", "pnpm"].includes(declared.name)) {
    throw new BuildFailure(`package.json packageManager names ${declared.name}: Slipway builds with npm, yarn or pnpm`);
  }
  const present: [string, ManagerName][] = [];
  for (const [file, manager] of LOCK_FILES) if (await exists(path.join(sourceDir, file))) present.push([file, manager]);
  const lock = present.find(([, manager]) => manager === declared?.name) ?? present[0];
  const name: ManagerName = lock?.[1] ?? (declared?.name as ManagerName | undefined) ?? "npm";
  const lockText = lock ? await readUntrustedText(path.join(sourceDir, lock[0]), 16 * 1024 * 1024) : undefined;
  const reason = lock ? `${lock[0]}` : declared ? `packageManager ${declared.name}` : "no lock file";
  const choice: PackageManagerChoice = {
    name,
    berry: false,
    pnp: false,
    reason,
    ignoredLockFiles: present.filter((entry) => entry !== lock).map(([file]) => file),
    ...(lock ? { lockFile: lock[0], lockText: lockText ?? "" } : {}),
  };
  const exact = declared?.name === name ? declared : undefined;
  if (exact) {
    choice.range = exact.version;
    if (exact.hash) choice.hash = exact.hash;
    choice.reason += `, ${exact.name}@${exact.version} from packageManager`;
  }
  if (name === "yarn") {
    const yarnrc = (await readUntrustedText(path.join(sourceDir, ".yarnrc.yml"))) ?? undefined;
    const lockMetadata = /^__metadata:\s*\n\s+version:\s*["']?(\d+)/m.exec(lockText ?? "");
    // A lock file Yarn 1 wrote says Yarn 1, whatever else is there: Oryx installs such a tree with
    // Yarn 1, where Yarn 2+ --immutable would refuse the lock.
    const classicLock = lockMetadata === null && /^# yarn lockfile v1\b/m.test(lockText ?? "");
    choice.berry = exact ? semver.major(exact.version) >= 2 : !classicLock && (yarnrc !== undefined || lockMetadata !== null);
    if (classicLock && !exact && yarnrc !== undefined) choice.reason += " (a Yarn 1 lock file: Yarn 1, .yarnrc.yml notwithstanding)";
    if (choice.berry) {
      // Yarn 2 wrote lock file format 4, Yarn 3 formats 5 and 6, Yarn 4 formats 7 and 8.
      const format = Number(lockMetadata?.[1] ?? 8);
      choice.range ??= format <= 4 ? "2" : format <= 6 ? "3" : "4";
      const linker = /^nodeLinker:\s*["']?([\w-]+)["']?\s*$/m.exec(yarnrc ?? "")?.[1] ?? "pnp";
      choice.pnp = linker === "pnp";
    } else choice.range ??= "1";
  }
  if (name === "pnpm" && !choice.range) {
    // The lock file's format says which pnpm wrote it: 9.0 pnpm 9 (and 10), 6.x pnpm 8, 5.4 pnpm 7.
    const format = /^lockfileVersion:\s*["']?([\d.]+)/m.exec(lockText ?? "")?.[1];
    choice.range = format?.startsWith("6.") ? "8" : format === "5.4" ? "7" : "9";
  }
  if (name === "npm" && exact) choice.range = exact.version;
  return choice;
}

/** The registry package a manager version is published as. */
export function registryPackage(choice: Pick<PackageManagerChoice, "name" | "berry">): string {
  if (choice.name === "yarn") return choice.berry ? "@yarnpkg/cli-dist" : "yarn";
  return choice.name;
}

/** The commands of one manager, once it is chosen. */
export interface ManagerCommands {
  /** The install, pinned by the lock file when there is one; devDependencies included (the build may need them). */
  install: string[];
  /** `<manager> run <script>` */
  run: (script: string) => string[];
  /** Removes devDependencies after the build (PRUNE_DEV_DEPENDENCIES=true). */
  prune: string[];
  /** The start command when package.json has a start script. */
  start: string;
}

export function managerCommands(choice: PackageManagerChoice, storeDir: string): ManagerCommands {
  const locked = choice.lockFile !== undefined;
  switch (choice.name) {
    case "npm":
      return {
        install: locked ? ["npm", "ci", "--include=dev"] : ["npm", "install", "--include=dev"],
        run: (script) => ["npm", "run", script],
        prune: ["npm", "prune", "--omit=dev"],
        start: "npm start",
      };
    case "yarn":
      if (choice.berry) {
        return {
          install: locked ? ["yarn", "install", "--immutable"] : ["yarn", "install"],
          run: (script) => ["yarn", "run", script],
          // Yarn 4's own workspace-tools: only the production dependencies of every workspace.
          prune: ["yarn", "workspaces", "focus", "--all", "--production"],
          start: "yarn start",
        };
      }
      return {
        install: ["yarn", "install", ...(locked ? ["--frozen-lockfile"] : []), "--production=false", "--non-interactive", "--no-progress"],
        run: (script) => ["yarn", "run", script],
        prune: ["yarn", "install", ...(locked ? ["--frozen-lockfile"] : []), "--production=true", "--ignore-scripts", "--prefer-offline", "--non-interactive", "--no-progress"],
        start: "yarn start",
      };
    case "pnpm":
      return {
        install: ["pnpm", "install", locked ? "--frozen-lockfile" : "--no-frozen-lockfile", "--prod=false", `--store-dir=${storeDir}`],
        run: (script) => ["pnpm", "run", script],
        prune: ["pnpm", "prune", "--prod", "--ignore-scripts", `--config.store-dir=${storeDir}`],
        start: "pnpm start",
      };
  }
}
