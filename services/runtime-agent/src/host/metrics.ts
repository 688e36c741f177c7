import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Drain } from "../agent";

/** What a host agent counts of its instances. */
export class HostMetrics {
  readonly registry = new Registry();
  private readonly drainSeconds = new Histogram({
    name: "slipway_instance_drain_seconds",
    help: "An instance's stop: from leaving the front door until its last request in flight was answered, or cut when the drain time ran out (outcome)",
    labelNames: ["outcome"] as const,
    buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30],
    registers: [this.registry],
  });
  private readonly requestsCut = new Counter({ name: "slipway_instance_requests_cut_total", help: "Requests still in flight when a stopping instance's drain time ran out", registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "slipway_host_" });
  }

  drained(drain: Drain): void {
    this.drainSeconds.observe({ outcome: drain.cut > 0 ? "cut" : "complete" }, drain.seconds);
    this.requestsCut.inc(drain.cut);
  }
}
