/**
 * Lua scripts that change an app record inside Redis: WATCH cannot guard a read-modify-write on
 * a connection other requests share, a script runs alone. Each returns {previous record or "",
 * record written}. cjson writes an empty table as `{}`, which is what an emptied env must be.
 */

/** KEYS: app record, app set, unsettled-apps set. ARGV: name, now, changes (JSON object of top-level fields). */
export const UPSERT_APP = `
local raw = redis.call('GET', KEYS[1])
local app
if raw then app = cjson.decode(raw) else app = {name = ARGV[1], env = {}, buildEnv = {}, createdAt = ARGV[2]} end
for field, value in pairs(cjson.decode(ARGV[3])) do app[field] = value end
app.updatedAt = ARGV[2]
local written = cjson.encode(app)
redis.call('SET', KEYS[1], written)
redis.call('SADD', KEYS[2], ARGV[1])
-- A new app is placed by the next placement pass (it gets DEFAULT_INSTANCES).
if not raw then redis.call('SADD', KEYS[3], ARGV[1]) end
return {raw or '', written}
`;

/** KEYS: app record. ARGV: now, variables to set (JSON object), variables to remove (JSON array). */
export const PATCH_APP_ENV = `
local raw = redis.call('GET', KEYS[1])
if not raw then return {'', ''} end
local app = cjson.decode(raw)
if type(app.env) ~= 'table' then app.env = {} end
for _, name in ipairs(cjson.decode(ARGV[3])) do app.env[name] = nil end
for name, value in pairs(cjson.decode(ARGV[2])) do app.env[name] = value end
app.updatedAt = ARGV[1]
local written = cjson.encode(app)
redis.call('SET', KEYS[1], written)
return {raw, written}
`;
