import type { BuildAborted } from "./errors";

/**
 * The builds this worker process is running, each with the controller that stops it: a cancel
 * request, its timeout, or the worker's shutdown.
 */
export class ActiveBuilds {
  private readonly controllers = new Map<string, AbortController>();

  start(buildId: string): AbortController {
    const controller = new AbortController();
    this.controllers.set(buildId, controller);
    return controller;
  }

  finish(buildId: string): void {
    this.controllers.delete(buildId);
  }

  abort(buildId: string, reason: BuildAborted): boolean {
    const controller = this.controllers.get(buildId);
    if (!controller || controller.signal.aborted) return false;
    controller.abort(reason);
    return true;
  }

  abortAll(reason: () => BuildAborted): void {
    for (const buildId of this.controllers.keys()) this.abort(buildId, reason());
  }

  get size(): number {
    return this.controllers.size;
  }
}
