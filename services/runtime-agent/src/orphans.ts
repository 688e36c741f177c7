import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "@slipway/shared";

/**
 * An agent killed outright (SIGKILL, OOM) cannot stop its app, which keeps running, reparented,
 * holding memory and maybe a port. So the agent notes each app process it starts under
 * RUNTIME_ROOT, and its successor stops whatever the notes still name before doing anything else.
 */

/** Under RUNTIME_ROOT: one small JSON file per running app process. */
const DIR = ".app-processes";
const POLL_MS = 100;

interface ProcessNote {
  pid: number;
  /** With the pid, names one process: a pid reused by an unrelated process has another start time. */
  startTime: string;
  /** The agent that started it: while that agent lives, the app is not an orphan. */
  agentPid: number;
  agentStartTime: string;
}

interface ProcStat {
  state: string;
  pgrp: number;
  startTime: string;
}

/** /proc/<pid>/stat, or undefined for a process that is gone (or a zombie, which is as good as gone). */
async function procStat(pid: number): Promise<ProcStat | undefined> {
  const raw = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  if (!raw) return undefined;
  // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
  const fields = raw.slice(raw.lastIndexOf(")") + 2).split(" ");
  const stat = { state: fields[0]!, pgrp: Number(fields[2]), startTime: fields[19]! };
  return stat.state === "Z" || stat.state === "X" ? undefined : stat;
}

const sameProcess = async (pid: number, startTime: string) => (await procStat(pid))?.startTime === startTime;

function signal(target: number, name: NodeJS.Signals): void {
  try {
    process.kill(target, name);
  } catch {
    // Already gone.
  }
}

async function waitUntilGone(pid: number, startTime: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (await sameProcess(pid, startTime)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return true;
}

export class AppProcessNotes {
  private readonly dir: string;

  constructor(
    runtimeRoot: string,
    private readonly logger: Logger,
  ) {
    this.dir = path.join(runtimeRoot, DIR);
  }

  /** Notes a just-started app process; the note goes when the process exits. */
  async track(app: { pid: number | undefined; exited: Promise<unknown> }): Promise<void> {
    const pid = app.pid;
    if (pid === undefined) return;
    const file = path.join(this.dir, `${pid}.json`);
    const written = (async () => {
      const [own, started] = await Promise.all([procStat(process.pid), procStat(pid)]);
      if (!own || !started) return;
      const note: ProcessNote = { pid, startTime: started.startTime, agentPid: process.pid, agentStartTime: own.startTime };
      await mkdir(this.dir, { recursive: true });
      await writeFile(`${file}.tmp`, JSON.stringify(note));
      await rename(`${file}.tmp`, file);
    })().catch((error: Error) => this.logger.warn({ err: error, pid }, "could not note the app process; a killed agent would leave it running"));
    await Promise.all([written, app.exited]);
    await rm(file, { force: true }).catch(() => undefined);
  }

  /**
   * Stops the app processes a killed predecessor left running: SIGTERM to each one's process
   * group, SIGKILL after `graceMs`. Answers the pids it stopped.
   */
  async stopOrphans(graceMs = 10_000): Promise<number[]> {
    const stopped: number[] = [];
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (!name.endsWith(".json")) {
        await rm(path.join(this.dir, name), { force: true });
        continue;
      }
      const file = path.join(this.dir, name);
      const note = await readFile(file, "utf8").then((text) => JSON.parse(text) as ProcessNote, () => undefined);
      if (note && (await sameProcess(note.agentPid, note.agentStartTime))) {
        this.logger.warn({ pid: note.pid, agentPid: note.agentPid }, "an app process noted here belongs to a live agent sharing this RUNTIME_ROOT; leaving it alone");
        continue;
      }
      const stat = note && (await procStat(note.pid));
      if (note && stat?.startTime === note.startTime) {
        // Only a group the app leads is signalled: anything else could be a group the app merely joined.
        const target = stat.pgrp === note.pid ? -note.pid : note.pid;
        signal(target, "SIGTERM");
        const exited = await waitUntilGone(note.pid, note.startTime, graceMs);
        signal(target, "SIGKILL"); // stragglers of the group, or the app itself if it ignored SIGTERM
        if (!exited) await waitUntilGone(note.pid, note.startTime, 5000);
        this.logger.warn({ pid: note.pid, graceful: exited }, `stopped app process ${note.pid}, left running by an agent that was killed`);
        stopped.push(note.pid);
      }
      await rm(file, { force: true });
    }
    return stopped;
  }
}
