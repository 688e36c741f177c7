/**
 * A failure that will happen again on retry (bad archive, failing install, unsupported version):
 * the build fails at once, with this message as its error.
 */
export class BuildFailure extends Error {
  override name = "BuildFailure";
}

/**
 * The build was stopped from outside: canceled by a user, out of time, or its worker is shutting
 * down (then the job goes back to the queue for another worker).
 */
export class BuildAborted extends Error {
  override name = "BuildAborted";
  constructor(readonly reason: "canceled" | "timeout" | "shutdown", message: string) {
    super(message);
  }
}
