/**
 * A pass that calls coalesce into: a call while one runs asks for one more pass after it and gets
 * the promise that covers both, so a burst of events costs two passes, not one each. `pass` must
 * not reject (it logs its own failures); `stopped` ends the repeats.
 */
export class CoalescedPass {
  private running: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly stopped: () => boolean = () => false,
  ) {}

  run(): Promise<void> {
    if (this.stopped()) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass();
      } while (this.again && !this.stopped());
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Settles when the pass under way (if any) and the repeats asked for have run. */
  settled(): Promise<void> {
    return this.running?.catch(() => undefined) ?? Promise.resolve();
  }
}
