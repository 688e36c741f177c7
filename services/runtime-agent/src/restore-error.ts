/** A release that cannot be restored as stored: retrying the same bytes will not help. */
export class RestoreError extends Error {
  override name = "RestoreError";
}
