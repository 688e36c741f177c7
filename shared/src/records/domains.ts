import type { Redis } from "ioredis";
import { DOMAIN_PATTERN } from "../contracts/index";
import { checkAppName } from "./ids";
import { redisKeys as defaultKeys, type RecordKeys } from "./keys";

/** Claims a domain for an app unless another app holds it: 1 claimed (or already this app's), 0 taken. */
const CLAIM = `
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner and owner ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 1`;

/** Releases an app's domain: 1 removed, 0 the app did not hold it. */
const RELEASE = `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1`;

export class InvalidDomainError extends Error {
  override name = "InvalidDomainError";
}

/** Normalises a domain as users type it (case, a trailing dot) and refuses what is not one. */
export function normaliseDomain(value: string): string {
  const domain = value.trim().toLowerCase().replace(/\.$/, "");
  if (!DOMAIN_PATTERN.test(domain)) throw new InvalidDomainError(`"${value.slice(0, 80)}" is not a domain name (lower-case DNS labels separated by dots, no wildcard)`);
  return domain;
}

/**
 * Apps' custom domains: one hash of every domain to its app (a domain belongs to one app, claimed
 * atomically) and a set per app.
 */
export class DomainRepository {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RecordKeys = defaultKeys,
  ) {}

  /** Claims `domain` for `app`; the app that holds it otherwise. */
  async add(app: string, domain: string): Promise<{ added: true } | { added: false; owner: string }> {
    const name = normaliseDomain(domain);
    if ((await this.redis.eval(CLAIM, 2, this.keys.domains, this.keys.appDomains(checkAppName(app)), name, app)) === 1) return { added: true };
    return { added: false, owner: (await this.redis.hget(this.keys.domains, name)) ?? "another app" };
  }

  /** False when the app does not hold `domain`. */
  async remove(app: string, domain: string): Promise<boolean> {
    const name = normaliseDomain(domain);
    return (await this.redis.eval(RELEASE, 2, this.keys.domains, this.keys.appDomains(checkAppName(app)), name, app)) === 1;
  }

  async list(app: string): Promise<string[]> {
    return (await this.redis.smembers(this.keys.appDomains(checkAppName(app)))).sort();
  }

  /** Releases every domain of an app (when it is deleted). */
  async removeAll(app: string): Promise<void> {
    for (const domain of await this.list(app)) await this.remove(app, domain);
  }
}
