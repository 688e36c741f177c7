type Listener<T> = (event: T) => void | Promise<void>;

/**
 * A small typed event emitter whose `emit` waits for async listeners, so that a state change the
 * listeners record (a heartbeat written to Redis) is done before the emitter goes on.
 */
export class TypedEvents<Events extends Record<string, unknown>> {
  private readonly listeners: { [K in keyof Events]?: Listener<Events[K]>[] } = {};

  on<K extends keyof Events>(name: K, listener: Listener<Events[K]>): void {
    (this.listeners[name] ??= []).push(listener);
  }

  async emit<K extends keyof Events>(name: K, event: Events[K]): Promise<void> {
    await Promise.all((this.listeners[name] ?? []).map((listener) => listener(event)));
  }
}
