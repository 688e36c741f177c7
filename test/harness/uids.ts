import { sandboxUid } from "@slipway/shared/sandbox";

/**
 * Two instance ids of `app` whose derived sandbox uids are the same (a birthday search: a few
 * hundred names), for checking that a host still gives them different uids.
 */
export function collidingInstanceIds(app: string, prefix: string, base = 200_000): [string, string] {
  const seen = new Map<number, string>();
  for (let n = 0; ; n++) {
    const id = `${prefix}${n}`;
    const uid = sandboxUid("app", `${app}/${id}`, base);
    const earlier = seen.get(uid);
    if (earlier) return [earlier, id];
    seen.set(uid, id);
  }
}
