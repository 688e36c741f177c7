/** The ports a host agent gives its instances (INSTANCE_PORTS): each to one instance at a time. */
export class PortPool {
  private readonly taken = new Set<number>();
  /** Ports found in use by something else, left alone until this time. */
  private readonly busyUntil = new Map<number, number>();

  constructor(private readonly ports: readonly number[], private readonly now: () => number = Date.now) {}

  /** The lowest free port; undefined when every one is taken. */
  take(): number | undefined {
    const now = this.now();
    const port = this.ports.find((p) => !this.taken.has(p) && (this.busyUntil.get(p) ?? 0) <= now);
    if (port !== undefined) this.taken.add(port);
    return port;
  }

  release(port: number): void {
    this.taken.delete(port);
  }

  /** Another program listens on `port`: it is skipped for a minute. */
  markBusy(port: number): void {
    this.taken.delete(port);
    this.busyUntil.set(port, this.now() + 60_000);
  }
}
