/**
 * The placement scripts. Each runs atomically in Redis, so concurrent callers (API replicas, the
 * placement loop, a scale change) never place one instance twice, and times come from Redis's own
 * clock, so hosts and control planes with skewed clocks agree on who is silent.
 */

/** Redis's clock in milliseconds. */
const NOW = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
`;

/**
 * A host's heartbeat: (re-)registers it and answers its placements, the only ones it may run.
 * KEYS: hosts hash, beats zset, the host's placements hash. ARGV: host id, record JSON.
 */
export const HOST_BEAT = `${NOW}
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[1])
return redis.call('HGETALL', KEYS[3])
`;

/**
 * Brings one app's placements to its desired count:
 * - placements on hosts that are gone, or silent past the dead line (when the caller may declare
 *   hosts lost), are removed with their instance reports: that removal is the fence, a report for
 *   an instance that is no longer placed is refused;
 * - missing instances go to ready hosts with room: fewest of this app first (spread), then least
 *   loaded, then by id;
 * - extra instances leave silent hosts first, then the most loaded hosts, newest first;
 * - a draining host's instances stay until every instance placed elsewhere reports running (or
 *   there is nothing to serve), so each moved instance serves before the old one stops.
 * Records `placed`, keeps the app in the unsettled set until it is as asked, and tells the hosts
 * whose placements changed. Answers {desired, placed}.
 * KEYS: placements, scale, hosts, beats, draining, placement seq, unsettled, instance reports,
 * current release, app record. ARGV: host key prefix, app, dead ms, may declare lost (1|0), default desired,
 * channel, new desired ('' keeps it).
 */
export const PLACE = `${NOW}
local app = ARGV[2]
local deadline = now - tonumber(ARGV[3])
local mayDeclareLost = ARGV[4] == '1'
if ARGV[7] ~= '' then redis.call('HSET', KEYS[2], 'desired', ARGV[7]) end
local desired = tonumber(redis.call('HGET', KEYS[2], 'desired') or ARGV[5])
-- An app deleted meanwhile keeps nothing running.
if redis.call('EXISTS', KEYS[10]) == 0 then desired = 0 end
local function hostKey(id) return ARGV[1] .. id .. ':placements' end
local touched = {}
local hosts = {}
for _, id in ipairs(redis.call('HKEYS', KEYS[3])) do
  local beat = tonumber(redis.call('ZSCORE', KEYS[4], id) or '0')
  local record = cjson.decode(redis.call('HGET', KEYS[3], id))
  local h = { id = id, alive = beat >= deadline, capacity = tonumber(record.capacity) or 0, load = redis.call('HLEN', hostKey(id)), mine = 0 }
  h.draining = redis.call('SISMEMBER', KEYS[5], id) == 1
  h.ready = h.alive and not h.draining
  hosts[id] = h
end
local function remove(p)
  redis.call('HDEL', KEYS[1], p.iid)
  redis.call('HDEL', hostKey(p.host), app .. '/' .. p.iid)
  redis.call('HDEL', KEYS[8], p.iid)
  local h = hosts[p.host]
  if h then h.load = h.load - 1 end
  touched[p.host] = true
end
local active, retiring = {}, {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local stored = cjson.decode(all[i + 1])
  local p = { iid = all[i], host = stored.host, epoch = tonumber(stored.epoch) }
  local h = hosts[p.host]
  if h == nil or (mayDeclareLost and not h.alive) then
    remove(p)
  elseif h.draining then
    table.insert(retiring, p)
  else
    table.insert(active, p)
    h.mine = h.mine + 1
  end
end
while #active < desired do
  local best = nil
  for _, h in pairs(hosts) do
    if h.ready and h.load < h.capacity then
      if best == nil or h.mine < best.mine or (h.mine == best.mine and (h.load < best.load or (h.load == best.load and h.id < best.id))) then best = h end
    end
  end
  if best == nil then break end
  local epoch = redis.call('INCR', KEYS[6])
  local p = { iid = 'i' .. epoch, host = best.id, epoch = epoch }
  redis.call('HSET', KEYS[1], p.iid, cjson.encode({ host = best.id, epoch = epoch, placedAt = now }))
  redis.call('HSET', hostKey(best.id), app .. '/' .. p.iid, epoch)
  best.load = best.load + 1
  best.mine = best.mine + 1
  touched[best.id] = true
  table.insert(active, p)
end
local function removalOrder(a, b)
  local ha, hb = hosts[a.host], hosts[b.host]
  if ha.alive ~= hb.alive then return not ha.alive end
  if ha.load ~= hb.load then return ha.load > hb.load end
  if ha.mine ~= hb.mine then return ha.mine > hb.mine end
  return a.epoch > b.epoch
end
while #active > desired do
  local worst, at = nil, nil
  for i, p in ipairs(active) do
    if worst == nil or removalOrder(p, worst) then worst, at = p, i end
  end
  remove(worst)
  hosts[worst.host].mine = hosts[worst.host].mine - 1
  table.remove(active, at)
end
if #retiring > 0 then
  local replaced = desired == 0 or redis.call('EXISTS', KEYS[9]) == 0
  if not replaced and #active >= desired then
    replaced = true
    for _, p in ipairs(active) do
      local report = redis.call('HGET', KEYS[8], p.iid)
      if not report or cjson.decode(report).state ~= 'running' then replaced = false break end
    end
  end
  if replaced then
    for _, p in ipairs(retiring) do remove(p) end
    retiring = {}
  end
end
local settled = #active == desired and #retiring == 0
for _, p in ipairs(active) do
  if not hosts[p.host].alive then settled = false end
end
if settled then redis.call('SREM', KEYS[7], app) else redis.call('SADD', KEYS[7], app) end
redis.call('HSET', KEYS[2], 'placed', #active)
for id in pairs(touched) do redis.call('PUBLISH', ARGV[6], id) end
return { desired, #active }
`;

/**
 * An instance report, written only while the instance is placed on the reporting host: a host
 * that lost the instance (declared lost, drained, scaled down) learns so from the refusal.
 * KEYS: instance reports, placements. ARGV: instance id, host id, report JSON. Answers 1 or 0.
 */
export const FENCED_REPORT = `
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw or cjson.decode(raw).host ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
`;

/**
 * Removes every placement of an app (it is being deleted) and tells its hosts.
 * KEYS: placements, scale, unsettled. ARGV: host key prefix, app, channel.
 */
export const UNPLACE_APP = `
local all = redis.call('HGETALL', KEYS[1])
local touched = {}
for i = 1, #all, 2 do
  local host = cjson.decode(all[i + 1]).host
  redis.call('HDEL', ARGV[1] .. host .. ':placements', ARGV[2] .. '/' .. all[i])
  touched[host] = true
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[2])
for id in pairs(touched) do redis.call('PUBLISH', ARGV[3], id) end
return #all / 2
`;
