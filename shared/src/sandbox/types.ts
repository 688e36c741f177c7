import type { Readable } from "node:stream";
import type { CgroupLimits } from "./cgroup";
import type { EgressException } from "./egress";

/** Where a sandbox stands; `off` runs commands as plain child processes (an operator's explicit choice). */
export type SandboxMode = "on" | "off";

export interface SandboxSpec {
  /** Names the sandbox's cgroup: a build id, an instance id. */
  name: string;
  /** The host uid (and gid) everything inside runs as: never the platform's own. */
  uid: number;
  /** Host paths bound read-write at the same path inside. */
  writable: string[];
  /** Host paths bound read-only at the same path inside (toolchains). */
  readOnly: string[];
  /**
   * `isolated`: a network namespace of its own behind user-mode networking with the host's
   * loopback unreachable (builds). `host`: the host's network (apps, which must listen where the
   * agent's proxy reaches them; the control plane then relies on credentials they cannot read).
   * `{ namespace }`: the network namespace bound at that path (an instance's own, made by its
   * host agent: see instance-network.ts).
   */
  network: "isolated" | "host" | { namespace: string };
  /**
   * With the isolated network: destinations reachable although they lie in a blocked range (the
   * host's own addresses, private ranges), such as a package index on the site's network.
   */
  egress?: EgressException[];
  limits: CgroupLimits & { maxFileBytes: number };
  /** A file bound as /etc/resolv.conf (isolated network: the user-mode network's DNS). */
  resolvConf?: string;
  /**
   * A directory seen inside as an overlay: `lower` (read-only, shared with other sandboxes) under
   * `upper` (this sandbox's own, which takes every write), mounted at `upper`'s own path. The
   * mount lives in the sandbox's mount namespace only and ends with it. `scratch`, on the same
   * filesystem as `upper`, holds the work directory each sandbox's overlay needs.
   */
  overlay?: { lower: string; upper: string; scratch: string };
  /**
   * Paths that exist only inside, as symlinks to `target` (a path inside: it resolves there, an
   * overlay's mount included). Neither may be a system directory or lie under one.
   */
  links?: { path: string; target: string }[];
}

export interface SandboxExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why the sandbox failed, when a limit did it: "out of memory (limit 512 MiB)". */
  limitReason?: string;
  /** Processes still alive in the sandbox after its first process ended, killed by the caller's cleanup. */
  survivorsKilled: number;
}

export interface SandboxedProcess {
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Settles once the command and everything it started are gone. */
  readonly exited: Promise<SandboxExit>;
  /** Host pid of the outermost process (bwrap, or the command itself when the sandbox is off). */
  readonly pid: number | undefined;
  /** Asks the command to stop (its process group). */
  terminate(signal?: NodeJS.Signals): void;
  /** Ends the sandbox: every process in it dies, whatever it did to escape its process group. */
  kill(): void;
}

export interface SandboxCommand {
  command: string;
  args: string[];
  cwd: string;
  /** The whole environment inside: nothing of the caller's is inherited. */
  env: Record<string, string>;
}
