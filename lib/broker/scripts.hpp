#pragma once
// The broker protocol: every operation is one Lua script, atomic on the server, run by EVALSHA with
// KEYS[1] = the queue's key prefix `pp:{Q}:` (one hash tag: one cluster slot per queue). Times are the
// server's milliseconds (TIME); no client clock enters lease arithmetic. Changing what a script
// reads or writes incompatibly means a new kProtocol. Layout and semantics: docs/broker.md.
#include "broker/connection.hpp"

#include <string>

namespace procpool::broker {

inline constexpr int kProtocol = 1;

inline std::string key_prefix(const std::string& queue) { return "pp:{" + queue + "}:"; }

#define PP_LUA_NOW "local P = KEYS[1]\nlocal t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

// Hands back a dead or stopping worker's leased jobs: claimed ones lose their running count and,
// after a crash, count one; a job lost max_crashes times is logged lost; jobs of a run no longer
// active are dropped (counted cancelled). Then the worker is unregistered.
#define PP_LUA_CRASH_OUT                                                                              \
  "local function crash_out(wid, crash, now)\n"                                                       \
  "  local inf = P .. 'inflight:' .. wid\n"                                                           \
  "  local jids = redis.call('LRANGE', inf, 0, -1)\n"                                                 \
  "  local host = redis.call('HGET', P .. 'worker:' .. wid, 'host') or wid\n"                         \
  "  local wpid = redis.call('HGET', P .. 'worker:' .. wid, 'pid') or ''\n"                         \
  "  for i = #jids, 1, -1 do\n"                                                                       \
  "    local jid = jids[i]\n"                                                                         \
  "    local j = P .. 'job:' .. jid\n"                                                                \
  "    local f = redis.call('HMGET', j, 'run', 'seq', 'cmd', 'att', 'owner')\n"                       \
  "    if f[1] then\n"                                                                                \
  "      local run = P .. 'run:' .. f[1]\n"                                                           \
  "      local st = redis.call('HGET', run, 'state')\n"                                               \
  "      if not st then redis.call('DEL', j)\n"                                                       \
  "      else\n"                                                                                      \
  "        local claimed = f[5] == wid\n"                                                             \
  "        local c = 0\n"                                                                             \
  "        if claimed then\n"                                                                         \
  "          redis.call('HINCRBY', run, 'running', -1)\n"                                             \
  "          redis.call('HDEL', j, 'owner')\n"                                                        \
  "          if crash then c = redis.call('HINCRBY', j, 'crashes', 1) end\n"                          \
  "        end\n"                                                                                     \
  "        local maxc = tonumber(redis.call('HGET', run, 'max_crashes') or '5')\n"                    \
  "        if st ~= 'active' then\n"                                                                  \
  "          redis.call('HINCRBY', run, 'cancelled', 1)\n"                                            \
  "          redis.call('DEL', j)\n"                                                                  \
  "        elseif c > 0 and c >= maxc then\n"                                                         \
  "          redis.call('XADD', run .. ':log', '*', 'seq', f[2], 'att', f[4], 'exit', '-1', 'sig', '0',\n" \
  "            'start', string.format('%.3f', now / 1000), 'rt', '0', 'host', host, 'rcv', '0', 'out', '',\n" \
  "            'err', '', 'trunc', '0', 'cmd', f[3], 'lost', tostring(c), 'pid', wpid)\n"             \
  "          redis.call('HINCRBY', run, 'done', 1)\n"                                                 \
  "          redis.call('HINCRBY', run, 'failed', 1)\n"                                               \
  "          redis.call('HINCRBY', run, 'lost', 1)\n"                                                 \
  "          redis.call('HINCRBY', P .. 'stats', 'lost', 1)\n"                                        \
  "          redis.call('DEL', j)\n"                                                                  \
  "        else\n"                                                                                    \
  "          redis.call('LPUSH', P .. 'ready', jid)\n"                                                \
  "          if claimed then redis.call('HINCRBY', P .. 'stats', 'requeued', 1) end\n"                \
  "        end\n"                                                                                     \
  "      end\n"                                                                                       \
  "    end\n"                                                                                         \
  "  end\n"                                                                                           \
  "  redis.call('DEL', inf)\n"                                                                        \
  "  redis.call('ZREM', P .. 'workers', wid)\n"                                                       \
  "  redis.call('DEL', P .. 'worker:' .. wid)\n"                                                      \
  "  return #jids\n"                                                                                  \
  "end\n"

/// ARGV: proto wid host pid slots lease_ms version. Error `PROTO v` or `LEASE ms`; else the cancelled runs.
inline const Script kRegister{"register", PP_LUA_NOW R"lua(
local v = redis.call('GET', P .. 'proto')
if v and v ~= ARGV[1] then return redis.error_reply('PROTO ' .. v) end
redis.call('SET', P .. 'proto', ARGV[1])
local lease = tonumber(ARGV[6])
local cur = redis.call('HGET', P .. 'conf', 'lease_ms')
if cur and tonumber(cur) ~= lease and redis.call('ZCARD', P .. 'workers') > 0 then
  return redis.error_reply('LEASE ' .. cur)
end
redis.call('HSET', P .. 'conf', 'lease_ms', lease)
redis.call('ZADD', P .. 'workers', now + lease, ARGV[2])
redis.call('HSET', P .. 'worker:' .. ARGV[2], 'host', ARGV[3], 'pid', ARGV[4], 'slots', ARGV[5], 'started', now,
  'version', ARGV[7], 'done', 0, 'failed', 0, 'stale', 0, 'busy', 0)
redis.call('SET', P .. 'beat', now)
return redis.call('SMEMBERS', P .. 'cancelled')
)lua"};

/// ARGV: proto. Error `PROTO v`; sets it when the queue is new.
inline const Script kCheckProto{"check_proto", PP_LUA_NOW R"lua(
local v = redis.call('GET', P .. 'proto')
if v and v ~= ARGV[1] then return redis.error_reply('PROTO ' .. v) end
redis.call('SET', P .. 'proto', ARGV[1])
return now
)lua"};

/// ARGV: R then field value pairs of the run's hash. Creates the run (state active); prunes expired runs
/// from the `runs` index.
inline const Script kCreateRun{"create_run", PP_LUA_NOW R"lua(
local run = P .. 'run:' .. ARGV[1]
if redis.call('EXISTS', run) == 1 then return redis.error_reply('EXISTS') end
redis.call('HSET', run, 'state', 'active', 'created', now, 'seen', now, 'enq', 0, 'running', 0, 'done', 0,
  'failed', 0, 'lost', 0, 'cancelled', 0, 'read', 0, 'digest', '0')
for i = 2, #ARGV, 2 do redis.call('HSET', run, ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', P .. 'runs', now, ARGV[1])
-- The oldest runs whose keys expired leave the index (a few per new run: bounded work).
for _, r in ipairs(redis.call('ZRANGE', P .. 'runs', 0, 15)) do
  if redis.call('EXISTS', P .. 'run:' .. r) == 0 then redis.call('ZREM', P .. 'runs', r) end
end
return now
)lua"};

/// ARGV: R read digest then (seq cmd) pairs. Error `RUN state` unless the run is active. Idempotent: a
/// batch whose `read` the run already has (its reply was lost, the submitter sends it again) is skipped.
/// Job hashes do not expire: a claim drops a job whose run has vanished.
inline const Script kEnqueue{"enqueue", PP_LUA_NOW R"lua(
local run = P .. 'run:' .. ARGV[1]
local st = redis.call('HGET', run, 'state')
if st ~= 'active' then return redis.error_reply('RUN ' .. tostring(st)) end
if tonumber(redis.call('HGET', run, 'read') or '0') >= tonumber(ARGV[2]) then return 0 end
local k = 0
for i = 4, #ARGV, 2 do
  local jid = ARGV[1] .. ':' .. ARGV[i]
  redis.call('HSET', P .. 'job:' .. jid, 'cmd', ARGV[i + 1], 'run', ARGV[1], 'seq', ARGV[i], 'att', 0, 'tries', 0,
    'crashes', 0, 't_enq', now)
  redis.call('RPUSH', P .. 'ready', jid)
  k = k + 1
end
redis.call('HINCRBY', run, 'enq', k)
redis.call('HSET', run, 'read', ARGV[2], 'digest', ARGV[3])
return k
)lua"};

/// ARGV: wid n [pre]. {'FENCED'} for an unregistered worker (its leases go back); else {'OK', then per
/// job: jid seq att cmd env wopts} (env and wopts are the run's: --env, and the limits that travel). `pre` is a jid BLMOVE already moved into the worker's inflight list.
inline const Script kClaim{"claim", PP_LUA_NOW R"lua(
local wid = ARGV[1]
local inf = P .. 'inflight:' .. wid
if not redis.call('ZSCORE', P .. 'workers', wid) then
  local jids = redis.call('LRANGE', inf, 0, -1)
  for i = #jids, 1, -1 do redis.call('LPUSH', P .. 'ready', jids[i]) end
  redis.call('DEL', inf)
  return {'FENCED'}
end
local out = {'OK'}
local n = tonumber(ARGV[2])
local runs = {}
local taken = 0
local function run_of(r)
  local c = runs[r]
  if not c then
    local h = redis.call('HMGET', P .. 'run:' .. r, 'state', 'env', 'wopts')
    c = {key = P .. 'run:' .. r, state = h[1], env = h[2] or '', wopts = h[3] or '', running = 0, dropped = 0}
    runs[r] = c
  end
  return c
end
local function take(jid)
  local j = P .. 'job:' .. jid
  local f = redis.call('HMGET', j, 'run', 'seq', 'cmd')
  local run
  if f[1] then run = run_of(f[1]) end
  if not run or run.state ~= 'active' then
    redis.call('LREM', inf, 1, jid)
    if f[1] then
      redis.call('DEL', j)
      if run.state then run.dropped = run.dropped + 1 end
    end
    return
  end
  local att = redis.call('HINCRBY', j, 'att', 1)
  redis.call('HSET', j, 'owner', wid, 't_claim', now)
  run.running = run.running + 1
  taken = taken + 1
  out[#out + 1] = jid
  out[#out + 1] = f[2]
  out[#out + 1] = att
  out[#out + 1] = f[3]
  out[#out + 1] = run.env
  out[#out + 1] = run.wopts
end
if ARGV[3] then take(ARGV[3]) end
local tries = 0
while taken < n and tries < n + 64 do
  tries = tries + 1
  local jid = redis.call('LMOVE', P .. 'ready', inf, 'LEFT', 'RIGHT')
  if not jid then break end
  take(jid)
end
for _, run in pairs(runs) do
  if run.running > 0 then redis.call('HINCRBY', run.key, 'running', run.running) end
  if run.dropped > 0 then redis.call('HINCRBY', run.key, 'cancelled', run.dropped) end
end
if taken > 0 then redis.call('HINCRBY', P .. 'stats', 'claimed', taken) end
return out
)lua"};

/// ARGV: wid then, per result, jid att outcome(ok|cancelled) exit sig start rt host rcv out err trunc (12 each).
/// Per result: 0 stale (fenced or a repeat), 1 logged, 2 requeued for a retry, 3 dropped (cancelled run).
/// Several results per call: a worker sends what it has in one script run.
inline const Script kFinish{"finish", PP_LUA_NOW R"lua(
local wid = ARGV[1]
local inf = P .. 'inflight:' .. wid
local w = P .. 'worker:' .. wid
local has_w = redis.call('EXISTS', w) == 1
local codes = {}
local stale, done, failed_n = 0, 0, 0
local runs = {}
local function run_of(r)
  local c = runs[r]
  if not c then
    local h = redis.call('HMGET', P .. 'run:' .. r, 'state', 'tries', 'kind')
    c = {key = P .. 'run:' .. r, state = h[1], tries = tonumber(h[2] or '1'), pool = h[3] == 'pool'}
    runs[r] = c
  end
  return c
end
for i = 2, #ARGV, 12 do
  local jid = ARGV[i]
  local j = P .. 'job:' .. jid
  local f = redis.call('HMGET', j, 'att', 'run', 'seq', 'tries', 'cmd')
  local code
  if not f[1] or f[1] ~= ARGV[i + 1] or redis.call('LREM', inf, 1, jid) == 0 then
    stale = stale + 1
    code = 0
  else
    local run = run_of(f[2])
    local st = run.state
    if st then redis.call('HINCRBY', run.key, 'running', -1) end
    local failed = ARGV[i + 3] ~= '0' or ARGV[i + 4] ~= '0'
    if ARGV[i + 2] == 'cancelled' or not st or st == 'cancelled' then
      if st then redis.call('HINCRBY', run.key, 'cancelled', 1) end
      redis.call('DEL', j)
      code = 3
    elseif failed and st == 'active' and (run.tries == 0 or tonumber(f[4]) + 1 < run.tries) then
      redis.call('HINCRBY', j, 'tries', 1)
      redis.call('HDEL', j, 'owner')
      redis.call('LPUSH', P .. 'ready', jid)
      code = 2
    else
      redis.call('XADD', run.key .. ':log', '*', 'seq', f[3], 'att', ARGV[i + 1], 'exit', ARGV[i + 3], 'sig',
        ARGV[i + 4], 'start', ARGV[i + 5], 'rt', ARGV[i + 6], 'host', ARGV[i + 7], 'rcv', ARGV[i + 8], 'out',
        ARGV[i + 9], 'err', ARGV[i + 10], 'trunc', ARGV[i + 11], 'cmd', run.pool and '' or f[5], 'lost', '0')
      redis.call('HINCRBY', run.key, 'done', 1)
      if failed then redis.call('HINCRBY', run.key, 'failed', 1) end
      redis.call('DEL', j)
      if run.pool then redis.call('DEL', j .. ':refused') end  -- a pool task another build refused
      done = done + 1
      if failed then failed_n = failed_n + 1 end
      code = 1
    end
  end
  codes[#codes + 1] = code
end
if stale > 0 then
  redis.call('HINCRBY', P .. 'stats', 'stale', stale)
  if has_w then redis.call('HINCRBY', w, 'stale', stale) end
end
if done > 0 then
  redis.call('HINCRBY', P .. 'stats', 'done', done)
  if has_w then redis.call('HINCRBY', w, 'done', done) end
end
if failed_n > 0 then
  redis.call('HINCRBY', P .. 'stats', 'failed', failed_n)
  if has_w then redis.call('HINCRBY', w, 'failed', failed_n) end
end
return codes
)lua"};

/// ARGV: kind(w|r) id since_ok_ms lease_ms ttl_ms busy. Worker: {'FENCED'} when unregistered. Run: {'GONE'}
/// when its hash vanished. Else {'OK', live workers, cancelled runs...}. Reaps expired workers (≤ 16) under
/// the lease/2 rule; else re-arms every deadline so that each worker gets a lease to come back.
inline const Script kHeartbeat{"heartbeat", PP_LUA_NOW PP_LUA_CRASH_OUT R"lua(
local lease = tonumber(redis.call('HGET', P .. 'conf', 'lease_ms') or ARGV[4])
if ARGV[1] == 'w' then
  if not redis.call('ZSCORE', P .. 'workers', ARGV[2]) then return {'FENCED'} end
  redis.call('ZADD', P .. 'workers', now + lease, ARGV[2])
  redis.call('HSET', P .. 'worker:' .. ARGV[2], 'busy', ARGV[6], 'beat', now)
else
  local run = P .. 'run:' .. ARGV[2]
  if redis.call('EXISTS', run) == 0 then return {'GONE'} end
  redis.call('HSET', run, 'seen', now)
  redis.call('PEXPIRE', run, ARGV[5])
  redis.call('PEXPIRE', run .. ':log', ARGV[5])
end
local beat = tonumber(redis.call('GET', P .. 'beat') or '0')
if tonumber(ARGV[3]) < lease / 2 and now - beat < lease / 2 then
  local dead = redis.call('ZRANGEBYSCORE', P .. 'workers', '-inf', now, 'LIMIT', 0, 16)
  for _, wid in ipairs(dead) do crash_out(wid, true, now) end
else
  local behind = redis.call('ZRANGEBYSCORE', P .. 'workers', '-inf', now + lease)
  for _, wid in ipairs(behind) do redis.call('ZADD', P .. 'workers', now + lease, wid) end
end
redis.call('SET', P .. 'beat', now)
local out = {'OK', redis.call('ZCOUNT', P .. 'workers', now, '+inf')}
for _, r in ipairs(redis.call('SMEMBERS', P .. 'cancelled')) do
  if redis.call('EXISTS', P .. 'run:' .. r) == 1 then out[#out + 1] = r
  else redis.call('SREM', P .. 'cancelled', r) end
end
return out
)lua"};

/// ARGV: wid crash(0|1). Graceful stop or the watchdog after the worker died: leases back, unregistered.
inline const Script kRelease{"release", PP_LUA_NOW PP_LUA_CRASH_OUT R"lua(
return crash_out(ARGV[1], ARGV[2] == '1', now)
)lua"};

/// ARGV: wid then the jids the worker holds. After a reconnect: a jid leased to the worker that it does not
/// hold (the claim's or BLMOVE's reply was lost) goes back to the front of the queue. {'FENCED'} when the
/// worker is unregistered; else {'OK', jids handed back}.
inline const Script kResync{"resync", PP_LUA_NOW R"lua(
local wid = ARGV[1]
if not redis.call('ZSCORE', P .. 'workers', wid) then return {'FENCED'} end
local held = {}
for i = 2, #ARGV do held[ARGV[i]] = true end
local inf = P .. 'inflight:' .. wid
local back = 0
for _, jid in ipairs(redis.call('LRANGE', inf, 0, -1)) do
  if not held[jid] then
    redis.call('LREM', inf, 1, jid)
    local j = P .. 'job:' .. jid
    local f = redis.call('HMGET', j, 'run', 'owner')
    if f[1] then
      if f[2] == wid then
        redis.call('HINCRBY', P .. 'run:' .. f[1], 'running', -1)
        redis.call('HDEL', j, 'owner')
      end
      redis.call('LPUSH', P .. 'ready', jid)
      back = back + 1
    end
  end
end
return {'OK', back}
)lua"};

/// ARGV: R state(cancelled|draining) hard(0|1).
inline const Script kCancel{"cancel", PP_LUA_NOW R"lua(
local run = P .. 'run:' .. ARGV[1]
if redis.call('EXISTS', run) == 0 then return 0 end
redis.call('HSET', run, 'state', ARGV[2])
if ARGV[2] == 'cancelled' then
  redis.call('SADD', P .. 'cancelled', ARGV[1])
  local word = 'cancel '
  if ARGV[3] == '1' then word = 'kill ' end
  redis.call('PUBLISH', P .. 'control', word .. ARGV[1])
end
return 1
)lua"};

/// ARGV: R ttl_ms. The run is over: state done, its keys expire after ttl_ms.
inline const Script kEndRun{"end_run", PP_LUA_NOW R"lua(
local run = P .. 'run:' .. ARGV[1]
if redis.call('EXISTS', run) == 0 then return 0 end
if redis.call('HGET', run, 'state') == 'active' or redis.call('HGET', run, 'state') == 'draining' then
  redis.call('HSET', run, 'state', 'done')
end
redis.call('PEXPIRE', run, ARGV[2])
redis.call('DEL', run .. ':log')
return 1
)lua"};

/// Read-only snapshot for `procpool status`: {now, ready, oldest t_enq, stats..., workers..., runs...}.
inline const Script kStatus{"status", PP_LUA_NOW R"lua(
local out = {now, redis.call('LLEN', P .. 'ready')}
local first = redis.call('LINDEX', P .. 'ready', 0)
local oldest = 0
if first then oldest = tonumber(redis.call('HGET', P .. 'job:' .. first, 't_enq') or '0') end
out[#out + 1] = oldest
local s = redis.call('HMGET', P .. 'stats', 'claimed', 'done', 'failed', 'requeued', 'lost', 'stale')
for i = 1, 6 do out[#out + 1] = s[i] or '0' end
local ws = redis.call('ZRANGE', P .. 'workers', 0, -1, 'WITHSCORES')
out[#out + 1] = #ws / 2
for i = 1, #ws, 2 do
  local wid = ws[i]
  local h = redis.call('HMGET', P .. 'worker:' .. wid, 'host', 'pid', 'slots', 'busy', 'beat', 'done', 'failed', 'stale')
  out[#out + 1] = wid
  out[#out + 1] = ws[i + 1]
  for k = 1, 8 do out[#out + 1] = h[k] or '' end
  local jobs = redis.call('LRANGE', P .. 'inflight:' .. wid, 0, 15)
  local current = {}
  for _, jid in ipairs(jobs) do
    local c = redis.call('HGET', P .. 'job:' .. jid, 't_claim')
    current[#current + 1] = jid .. '@' .. (c or '0')
  end
  out[#out + 1] = table.concat(current, ' ')
end
local runs = redis.call('ZRANGE', P .. 'runs', 0, -1)
local live = {}
for _, r in ipairs(runs) do
  local h = redis.call('HMGET', P .. 'run:' .. r, 'state', 'enq', 'done', 'failed', 'running', 'lost', 'cancelled', 'created', 'submitter', 'seen')
  if h[1] then
    live[#live + 1] = r
    for k = 1, 10 do live[#live + 1] = h[k] or '' end
  end
end
out[#out + 1] = #live / 11
for _, v in ipairs(live) do out[#out + 1] = v end
return out
)lua"};

// The cluster Pool's queues (issue 14) live under their own prefix, `pp:{Q}:pool:` (same hash slot as the
// queue's jobs): a `procpool worker` never claims a pool task (it would run its bytes as a shell command) and
// a pool worker never claims a shell job. The scripts above serve both; the two below are the pool's.
inline std::string pool_key_prefix(const std::string& queue) { return key_prefix(queue) + "pool:"; }

/// ARGV: wid jid att host pid. A pool worker's task took its process down (the worker lives on): like a
/// dead worker's lease, one crash; requeued at the front, or logged lost once max_crashes is reached.
/// 0 stale (fenced), 1 logged lost, 2 requeued.
inline const Script kTaskLost{"task_lost", PP_LUA_NOW R"lua(
local wid, jid = ARGV[1], ARGV[2]
local j = P .. 'job:' .. jid
local f = redis.call('HMGET', j, 'att', 'run', 'seq', 'cmd')
if not f[1] or f[1] ~= ARGV[3] or redis.call('LREM', P .. 'inflight:' .. wid, 1, jid) == 0 then
  redis.call('HINCRBY', P .. 'stats', 'stale', 1)
  return 0
end
local run = P .. 'run:' .. f[2]
local st = redis.call('HGET', run, 'state')
if not st then redis.call('DEL', j) return 0 end
redis.call('HINCRBY', run, 'running', -1)
redis.call('HDEL', j, 'owner')
local c = redis.call('HINCRBY', j, 'crashes', 1)
local maxc = tonumber(redis.call('HGET', run, 'max_crashes') or '5')
if st ~= 'active' then
  redis.call('HINCRBY', run, 'cancelled', 1)
  redis.call('DEL', j)
  return 0
end
if c >= maxc then
  redis.call('XADD', run .. ':log', '*', 'seq', f[3], 'att', f[1], 'exit', '-1', 'sig', '0', 'start',
    string.format('%.3f', now / 1000), 'rt', '0', 'host', ARGV[4], 'rcv', '0', 'out', '', 'err', '', 'trunc', '0',
    'cmd', '', 'lost', tostring(c), 'pid', ARGV[5])
  redis.call('HINCRBY', run, 'done', 1)
  redis.call('HINCRBY', run, 'failed', 1)
  redis.call('HINCRBY', run, 'lost', 1)
  redis.call('HINCRBY', P .. 'stats', 'lost', 1)
  redis.call('DEL', j, j .. ':refused')
  return 1
end
redis.call('LPUSH', P .. 'ready', jid)
redis.call('HINCRBY', P .. 'stats', 'requeued', 1)
return 2
)lua"};

/// ARGV: wid jid att host why. A pool worker cannot run the task (another build of the program): the
/// task goes to the back of the queue for another worker, unless every live worker has refused it, then
/// it is logged failed (exit 2) with `why`. 0 stale, 1 logged, 2 requeued.
inline const Script kRefuse{"refuse", PP_LUA_NOW R"lua(
local wid, jid = ARGV[1], ARGV[2]
local j = P .. 'job:' .. jid
local f = redis.call('HMGET', j, 'att', 'run', 'seq')
if not f[1] or f[1] ~= ARGV[3] or redis.call('LREM', P .. 'inflight:' .. wid, 1, jid) == 0 then return 0 end
local run = P .. 'run:' .. f[2]
local st = redis.call('HGET', run, 'state')
if not st then redis.call('DEL', j, j .. ':refused') return 0 end
redis.call('HINCRBY', run, 'running', -1)
redis.call('HDEL', j, 'owner')
redis.call('SADD', j .. ':refused', wid)
local live = redis.call('ZCOUNT', P .. 'workers', now, '+inf')
if st == 'active' and redis.call('SCARD', j .. ':refused') < live then
  redis.call('RPUSH', P .. 'ready', jid)
  return 2
end
redis.call('XADD', run .. ':log', '*', 'seq', f[3], 'att', f[1], 'exit', '2', 'sig', '0', 'start',
  string.format('%.3f', now / 1000), 'rt', '0', 'host', ARGV[4], 'rcv', '0', 'out', '', 'err', ARGV[5], 'trunc', '0',
  'cmd', '', 'lost', '0')
redis.call('HINCRBY', run, 'done', 1)
redis.call('HINCRBY', run, 'failed', 1)
redis.call('DEL', j, j .. ':refused')
return 1
)lua"};

/// The live workers of a queue: {total slots, then each worker's pid}.
inline const Script kLiveWorkers{"live_workers", PP_LUA_NOW R"lua(
local out = {0}
for _, wid in ipairs(redis.call('ZRANGEBYSCORE', P .. 'workers', now, '+inf')) do
  local h = redis.call('HMGET', P .. 'worker:' .. wid, 'slots', 'pid')
  out[1] = out[1] + tonumber(h[1] or '0')
  out[#out + 1] = h[2] or '0'
end
return out
)lua"};

#undef PP_LUA_NOW
#undef PP_LUA_CRASH_OUT

} // namespace procpool::broker
