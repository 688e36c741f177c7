import { currentReleasePointerSchema, ObjectNotFoundError, storageKeys, type Logger, type ObjectStore, type ReleaseRepository } from "@slipway/shared";
import { withTimeout } from "./timeout";

export interface TargetRelease {
  version: number;
  buildId: string;
}

/** Which release the instance should run; undefined while the app has none. */
export interface TargetSource {
  current(): Promise<TargetRelease | undefined>;
}

/** The release to run: Redis's current pointer, or the copy in storage when Redis is down. */
export class CurrentReleaseTarget implements TargetSource {
  constructor(
    private readonly app: string,
    private readonly releases: Pick<ReleaseRepository, "current">,
    private readonly store: Pick<ObjectStore, "getText">,
    private readonly logger: Logger,
  ) {}

  async current(): Promise<TargetRelease | undefined> {
    try {
      const release = await withTimeout(this.releases.current(this.app), 3000);
      return release ? { version: release.version, buildId: release.buildId } : undefined;
    } catch (error) {
      this.logger.warn({ err: error }, "Redis unavailable: reading the current release from storage");
      try {
        const pointer = currentReleasePointerSchema.parse(JSON.parse(await this.store.getText(storageKeys.currentRelease(this.app))));
        return { version: pointer.version, buildId: pointer.buildId };
      } catch (storageError) {
        if (storageError instanceof ObjectNotFoundError) return undefined;
        throw storageError;
      }
    }
  }
}
