/**
 * A failure that will happen again on retry (bad archive, failing install, unsupported version):
 * the build fails at once, with this message as its error.
 */
export class BuildFailure extends Error {
  override name = "BuildFailure";
}

/** The build was stopped from outside: canceled by a user or out of time. */
export class BuildAborted extends Error {
  override name = "BuildAborted";
  constructor(readonly reason: "canceled" | "timeout", message: string) {
    super(message);
  }
}
