/**
 * Where a build's time went, phase by phase: each phase's own time, the phases inside it
 * (a cache restore inside the install) counted apart. Phases run one after another.
 */
export class BuildPhases {
  private readonly totals = new Map<string, number>();
  private readonly open: { childMs: number }[] = [];

  async time<T>(name: string, work: () => Promise<T>): Promise<T> {
    const frame = { childMs: 0 };
    this.open.push(frame);
    const started = performance.now();
    try {
      return await work();
    } finally {
      const elapsed = performance.now() - started;
      this.open.pop();
      this.totals.set(name, (this.totals.get(name) ?? 0) + elapsed - frame.childMs);
      const parent = this.open.at(-1);
      if (parent) parent.childMs += elapsed;
    }
  }

  /** Each phase's milliseconds, in the order they first ran. */
  record(): Record<string, number> {
    return Object.fromEntries([...this.totals].map(([name, ms]) => [name, Math.round(ms)]));
  }

  /** `fetch 0.3 s, detect 0.1 s, install 4.2 s, …` */
  summary(): string {
    return [...this.totals].map(([name, ms]) => `${name} ${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`).join(", ");
  }
}
