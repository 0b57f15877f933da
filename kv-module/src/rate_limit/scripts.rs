//! How a check is computed on the store: the fixed window by counting
//! ([`Reply::fixed_window_count`]), and three [`Script`]s, each one atomic
//! step in Lua for Redis and in Rust for the memory backend.
//!
//! # The fixed window counts first and compares after
//!
//! A check of cost 1 (nearly every check) sends no script: the limiter
//! calls [`KvStore::incr_by_with_ttl`](crate::KvStore::incr_by_with_ttl)
//! (`INCRBY key 1`, `PEXPIRE key window NX`, `PTTL key` in one pipeline
//! on Redis: about a third of the server time of the same steps in Lua,
//! measured in `docs/BENCHMARKS.md`) and compares the new count with the
//! limit. Each `INCRBY` is
//! atomic, so the checks of every instance get distinct counts 1, 2, 3, …
//! and exactly those up to the limit pass. A denied check has added 1 to
//! a counter already at the limit (or above); that changes no answer:
//!
//! * let `used` be the sum of the allowed costs in the window and `count`
//!   the counter. The first over-count happens only when `count = used ≥
//!   limit`, so `used = limit`; from then on `count > limit`, so nothing
//!   passes any more, and `used` stays at the limit. Hence *whenever the
//!   counter is above the limit, the quota really is spent*, and a check
//!   of any cost is denied exactly when it would be without the
//!   over-count;
//! * `remaining` is `limit − count` when allowed (the over-count is then
//!   0) and 0 when denied, as before; `reset_after` and `retry_after` are
//!   the counter's TTL, as before.
//!
//! A check of a larger cost cannot count first: `count + cost` past the
//! limit would over-count by up to `cost − 1` units that a later, cheaper
//! check could have used. It runs [`FIXED_WINDOW`], which compares before
//! it writes and reads an over-counted counter correctly (above the limit:
//! nothing left).
//!
//! # The scripts
//!
//! Every script takes one key (`KEYS[1]`, the policy's key for the
//! client) and the policy's numbers in `ARGV`; [`Reply::parse`] turns its
//! reply into `{allowed, remaining, reset_after_ms, retry_after_ms}`. The
//! sliding window and GCRA answer an allowed check with one integer and
//! leave the rest to the client: the server spends less on an integer
//! than on a table, and the allowed path is the hot one. A denied check
//! leaves its key's counts as they were, so it consumes nothing (a
//! packed sliding-window denial adds and takes back; a fixed-window one
//! may give a key without expiry its expiry); an allowed one always
//! leaves its key with a TTL. Every algorithm runs on the store's clock, through
//! its key's expiry (`TIME` is read only for a GCRA key an earlier
//! version wrote), so application instances whose clocks differ still
//! agree.
//!
//! One key per check, so no hash tag is needed: a script's keys must share
//! a slot on a Redis Cluster, and a single key always does. The key comes
//! in `KEYS` like every script's; the twins' `KEYS` / `ARGV` accessors are
//! the shared ones ([`ScriptRun`]).
//!
//! Lua numbers are doubles. The policy's validation keeps every product
//! under 2^50 (the sliding window's packed counts under 2^52), so all
//! arithmetic below is exact in both twins and they return the same
//! numbers; values built as text are formatted with `%d`, because Lua's
//! default number format switches to exponent notation above 10^14
//! (numbers passed to `redis.call` are formatted by Redis with 17
//! significant digits, exact below 2^53).
//!
//! The measurements behind these choices (and the formulations that lost)
//! are in `docs/BENCHMARKS.md`, from the `rate_limit_formulations` bench.

use super::algorithm::Algorithm;
use crate::store::{KeyTtl, Script, ScriptRun, ScriptValue};

/// Fixed window. `ARGV`: limit, window ms, cost.
///
/// `INCRBY` keeps the key's TTL, and `PEXPIRE` runs only when the key had
/// none (it was new), all in one script: a crash between the two can
/// never leave a counter without expiry, and hits never re-arm the window.
pub(crate) static FIXED_WINDOW: Script = Script::new(
    "rate limit fixed window",
    r#"
local limit, window, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if not used then return redis.error_reply('rate limit counter is not a number') end
local ttl = redis.call('PTTL', KEYS[1])
if used + cost > limit then
  if ttl == -1 then redis.call('PEXPIRE', KEYS[1], window) end
  if ttl < 0 then ttl = window end
  return {0, math.max(limit - used, 0), ttl, ttl}
end
used = redis.call('INCRBY', KEYS[1], cost)
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], window)
  ttl = window
end
return {1, limit - used, ttl, -1}
"#,
    fixed_window,
);

fn fixed_window(run: &mut ScriptRun<'_>) -> Result<ScriptValue, String> {
    let key = run.key(0)?;
    let (limit, window, cost) = (arg(run, 0)?, arg(run, 1)?, arg(run, 2)?);
    let used = match run.get(key)? {
        None => 0,
        Some(bytes) => parse_int(&bytes).ok_or("rate limit counter is not a number")?,
    };
    let mut ttl = run.pttl(key)?;
    if used.saturating_add(cost) > limit {
        if ttl == -1 {
            run.pexpire(key, unsigned(window))?;
        }
        if ttl < 0 {
            ttl = window;
        }
        return Ok(reply(false, (limit - used).max(0), ttl, ttl));
    }
    let used = used + cost;
    if ttl < 0 {
        // New key: INCRBY then PEXPIRE, as one write under the lock.
        run.set(key, used.to_string().as_bytes(), Some(unsigned(window)))?;
        ttl = window;
    } else {
        run.set_keep_ttl(key, used.to_string().as_bytes())?;
    }
    Ok(reply(true, limit - used, ttl, -1))
}

/// Sliding-window counter. `ARGV`: limit, window ms, cost.
///
/// The key's expiry is the clock: a key's windows start at its first
/// check, and the key lives until the end of the window after the current
/// one, so its `PTTL` says where the store's clock is. `PTTL` above one
/// window: the counts are the current window's, and the current window
/// has `PTTL − window` ms left (its weight). `PTTL` of one window or less:
/// the current window ended; its count is now the previous one, weighing
/// `PTTL` (the rest of the new window). No key: nothing weighs. No `TIME`
/// call.
///
/// The estimate is `previous × weight / window + current`, compared
/// scaled by the window to stay in integers. The first write of a window
/// sets the expiry (`weight + window`), later writes in the window keep
/// it.
///
/// The value: for a limit below 2^25 (every realistic policy), both
/// counts as one integer, `current × 2^26 + previous` (both below 2^26,
/// the sum below 2^52: exact as a Lua number; counts left by a larger
/// limit that do not fit stay text). A check in the same window
/// is then `PTTL` and `INCRBY key cost × 2^26` (the new counts), taken
/// back by `DECRBY` when it denies: two commands on the hot path, like
/// GCRA's. At a larger limit, the text `0:current:previous`. Either
/// layout is read whatever the limit (a value with a `:` is text), and
/// written in the limit's layout at the next allowed check that rolls
/// the window or meets the other layout; the text layout is also what versions before
/// the packed one wrote (their window index, where the `0` stands, is
/// ignored: the expiry has the same meaning), so their keys read as this
/// version's. (Those versions read a packed key as corrupt: a store
/// failure, open or closed as configured, for as long as old and new
/// versions share the keys during an upgrade.)
///
/// Reply: allowed, one integer `remaining × window + weight − 1` (the
/// weight is 1 to `window`: a key written under a longer window, whose
/// expiry is further off, weighs as a whole window); denied, `{current, previous, weight}`, from
/// which [`Reply::parse`] computes `retry_after` and the rest (a table
/// costs the server more than an integer, and the allowed path is the
/// hot one).
pub(crate) static SLIDING_WINDOW: Script = Script::new(
    "rate limit sliding window",
    r#"
local limit, window, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl = redis.call('PTTL', KEYS[1])
local budget = limit * window
local packed = limit < 33554432
if packed and ttl > window then
  local v = redis.pcall('INCRBY', KEYS[1], cost * 67108864)
  if type(v) == 'number' then
    local cur = math.floor(v / 67108864)
    local prev = v - cur * 67108864
    local weight = math.min(ttl - window, window)
    local used = prev * weight + cur * window
    if used > budget then
      redis.call('DECRBY', KEYS[1], cost * 67108864)
      return {cur - cost, prev, weight}
    end
    return math.floor((budget - used) / window) * window + weight - 1
  end
end
local cur, prev, weight = 0, 0, window
if ttl > 0 then
  local state = redis.call('GET', KEYS[1])
  local a = string.find(state, ':', 1, true)
  if a then
    local b = string.find(state, ':', a + 1, true)
    if not b then return redis.error_reply('rate limit state is corrupt') end
    cur, prev = tonumber(string.sub(state, a + 1, b - 1)), tonumber(string.sub(state, b + 1))
  else
    local v = tonumber(state)
    if v then
      cur = math.floor(v / 67108864)
      prev = v - cur * 67108864
    else
      cur = nil
    end
  end
  if not (cur and prev and cur >= 0 and prev >= 0 and cur % 1 == 0 and prev % 1 == 0) then
    return redis.error_reply('rate limit state is corrupt')
  end
  if ttl > window then
    weight = math.min(ttl - window, window)
  else
    cur, prev, weight = 0, cur, ttl
  end
end
local used = prev * weight + cur * window + cost * window
if used > budget then return {cur, prev, weight} end
local state
if packed and cur + cost < 67108864 and prev < 67108864 then
  state = string.format('%d', (cur + cost) * 67108864 + prev)
else
  state = string.format('0:%d:%d', cur + cost, prev)
end
if ttl > window then
  redis.call('SET', KEYS[1], state, 'KEEPTTL')
else
  redis.call('SET', KEYS[1], state, 'PX', weight + window)
end
return math.floor((budget - used) / window) * window + weight - 1
"#,
    sliding_window,
);

/// The sliding window's packed layout: `current × PACK + previous`.
const PACK: i64 = 1 << 26;

/// Limits below this keep the sliding window's counts packed.
const PACKED_LIMIT: i64 = 1 << 25;

fn sliding_window(run: &mut ScriptRun<'_>) -> Result<ScriptValue, String> {
    let key = run.key(0)?;
    let (limit, window, cost) = (arg(run, 0)?, arg(run, 1)?, arg(run, 2)?);
    let ttl = run.pttl(key)?;
    sliding_window_counts(run, key, ttl, [limit, window, cost], limit < PACKED_LIMIT)
}

/// [`SLIDING_WINDOW`]'s arithmetic, writing the packed layout when
/// `packed` (the Lua twin's `INCRBY` … `DECRBY` of the same window nets
/// out to the same write).
fn sliding_window_counts(
    run: &mut ScriptRun<'_>,
    key: &str,
    ttl: i64,
    [limit, window, cost]: [i64; 3],
    packed: bool,
) -> Result<ScriptValue, String> {
    let (mut cur, mut prev, mut weight) = (0, 0, window);
    if ttl > 0 {
        let state = run.get(key)?.unwrap_or_default();
        let (s_cur, s_prev) = parse_state(&state).ok_or("rate limit state is corrupt")?;
        if ttl > window {
            (cur, prev, weight) = (s_cur, s_prev, (ttl - window).min(window));
        } else {
            (prev, weight) = (s_cur, ttl);
        }
    }
    let budget = limit * window;
    let used = prev * weight + cur * window + cost * window;
    if used > budget {
        return Ok(ScriptValue::Array(vec![
            ScriptValue::Int(cur),
            ScriptValue::Int(prev),
            ScriptValue::Int(weight),
        ]));
    }
    let state = if packed && cur + cost < PACK && prev < PACK {
        ((cur + cost) * PACK + prev).to_string()
    } else {
        format!("0:{}:{prev}", cur + cost)
    };
    if ttl > window {
        run.set_keep_ttl(key, state.as_bytes())?;
    } else {
        run.set(key, state.as_bytes(), Some(unsigned(weight + window)))?;
    }
    Ok(ScriptValue::Int(
        (budget - used) / window * window + weight - 1,
    ))
}

/// GCRA. `ARGV`: emission interval µs (`window / limit`, rounded up),
/// capacity µs (`burst × interval`), cost.
///
/// The theoretical arrival time (TAT) is kept in the key's expiry, on the
/// store's clock, with no `TIME` call: `TAT − now` is the key's `PTTL`. A
/// check of cost `c` would move the TAT to `max(TAT, now) + c × interval`;
/// it passes when that is at most `now + capacity`. The key lives until
/// the TAT, after which the bucket is full and a missing key means the
/// same.
///
/// An interval of whole milliseconds (`10 per second`, `100 per minute`:
/// most policies) keeps every TAT on a whole millisecond, so the expiry
/// alone holds it: `PTTL`, then `PEXPIRE` (or `SET 0 PX` for a new key),
/// two commands. Otherwise the key also holds the microseconds by which
/// the expiry rounds the TAT up (0–999), so `TAT − now = PTTL × 1000 −
/// value`, and a check reads it (`GET`) too; when the rounding stays the
/// same only the expiry moves (`PEXPIRE`, cheaper for the server than a
/// `SET`). The whole-millisecond path reads only the expiry, so it
/// ignores a value a fractional interval left (a policy changed while the
/// key lived: under a millisecond of difference).
///
/// A value of 1000 or more is a TAT in µs of the store's clock, as
/// versions before this layout stored it (with the TAT, rounded up, as
/// the expiry); the fractional path reads it as such (with `TIME`), the
/// whole-millisecond path reads its expiry, so an upgrade loses no state.
/// (An older version reading a key of this layout takes it for a full
/// bucket.)
///
/// Reply: one integer, `TAT − now` in µs after the check when allowed,
/// `−1 − (TAT − now)` when denied; [`Reply::parse`] derives the rest.
pub(crate) static GCRA: Script = Script::new(
    "rate limit gcra",
    r#"
local interval, capacity, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl = redis.call('PTTL', KEYS[1])
if interval % 1000 == 0 then
  local tat = 0
  if ttl > 0 then tat = ttl * 1000 end
  local new_tat = tat + cost * interval
  if new_tat > capacity then return -1 - tat end
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[1], new_tat / 1000)
  else
    redis.call('SET', KEYS[1], 0, 'PX', new_tat / 1000)
  end
  return new_tat
end
local tat, r = 0, -1
if ttl ~= -2 then
  r = tonumber(redis.call('GET', KEYS[1]))
  if not r then return redis.error_reply('rate limit state is corrupt') end
  if r >= 1000 then
    local t = redis.call('TIME')
    tat = r - (tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) * 1000
    r = -1
  elseif ttl > 0 then
    tat = ttl * 1000 - r
  end
  if tat < 0 then tat = 0 end
end
local new_tat = tat + cost * interval
if new_tat > capacity then return -1 - tat end
local ms = math.ceil(new_tat / 1000)
local new_r = ms * 1000 - new_tat
if new_r == r and ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ms)
else
  redis.call('SET', KEYS[1], new_r, 'PX', ms)
end
return new_tat
"#,
    gcra,
);

fn gcra(run: &mut ScriptRun<'_>) -> Result<ScriptValue, String> {
    let key = run.key(0)?;
    let (interval, capacity, cost) = (arg(run, 0)?, arg(run, 1)?, arg(run, 2)?);
    let ttl = run.pttl(key)?;
    let args = [interval, capacity, cost];
    if interval % 1000 == 0 {
        gcra_whole_ms(run, key, ttl, args)
    } else {
        gcra_micros(run, key, ttl, args)
    }
}

/// [`GCRA`]'s general path: the TAT is the key's expiry less the
/// microseconds its value holds (or an earlier version's absolute TAT).
fn gcra_micros(
    run: &mut ScriptRun<'_>,
    key: &str,
    ttl: i64,
    [interval, capacity, cost]: [i64; 3],
) -> Result<ScriptValue, String> {
    let (mut tat, mut r) = (0, -1);
    if ttl != -2 {
        let stored = run.get(key)?.unwrap_or_default();
        r = parse_int(&stored).ok_or("rate limit state is corrupt")?;
        if r >= 1_000 {
            tat = r - now_ms(run) * 1000;
            r = -1;
        } else if ttl > 0 {
            tat = ttl * 1000 - r;
        }
        tat = tat.max(0);
    }
    let new_tat = tat + cost * interval;
    if new_tat > capacity {
        return Ok(ScriptValue::Int(-1 - tat));
    }
    let ms = ceil_div(new_tat, 1000);
    let new_r = ms * 1000 - new_tat;
    if new_r == r && ttl > 0 {
        run.pexpire(key, unsigned(ms))?;
    } else {
        run.set(key, new_r.to_string().as_bytes(), Some(unsigned(ms)))?;
    }
    Ok(ScriptValue::Int(new_tat))
}

/// [`GCRA`]'s path for an interval of whole milliseconds: the TAT is the
/// key's expiry (`ttl`, its `PTTL`) and nothing else.
fn gcra_whole_ms(
    run: &mut ScriptRun<'_>,
    key: &str,
    ttl: i64,
    [interval, capacity, cost]: [i64; 3],
) -> Result<ScriptValue, String> {
    let tat = if ttl > 0 { ttl * 1000 } else { 0 };
    let new_tat = tat + cost * interval;
    if new_tat > capacity {
        return Ok(ScriptValue::Int(-1 - tat));
    }
    if ttl > 0 {
        run.pexpire(key, unsigned(new_tat / 1000))?;
    } else {
        run.set(key, b"0", Some(unsigned(new_tat / 1000)))?;
    }
    Ok(ScriptValue::Int(new_tat))
}

/// The reply every script returns.
fn reply(allowed: bool, remaining: i64, reset_ms: i64, retry_ms: i64) -> ScriptValue {
    ScriptValue::Array(vec![
        ScriptValue::Int(i64::from(allowed)),
        ScriptValue::Int(remaining),
        ScriptValue::Int(reset_ms),
        ScriptValue::Int(retry_ms),
    ])
}

/// A script's reply, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) allowed: bool,
    pub(crate) remaining: u64,
    pub(crate) reset_ms: u64,
    pub(crate) retry_ms: Option<u64>,
}

impl Reply {
    /// The answer of a fixed-window check of cost 1 made by counting
    /// ([`KvStore::incr_by_with_ttl`](crate::KvStore::incr_by_with_ttl)):
    /// `count` is the counter after the increment, `ttl` its expiry.
    pub(crate) fn fixed_window_count(count: i64, ttl: KeyTtl, limit: u64, window_ms: u64) -> Reply {
        let ttl_ms = match ttl {
            KeyTtl::ExpiresIn(left) => u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
            // Expired right after the increment (the pipeline was read in
            // two parts): the window is over. Never more than the truth:
            // the denial memo trusts `retry_after`.
            KeyTtl::Missing => 0,
            // The call gives a counter without expiry its expiry; read as
            // the script does, as a whole window.
            KeyTtl::Persistent => window_ms,
        };
        let limit = i128::from(limit);
        let count = i128::from(count);
        if count <= limit {
            return Reply {
                allowed: true,
                remaining: u64::try_from(limit - count).unwrap_or(u64::MAX),
                reset_ms: ttl_ms,
                retry_ms: None,
            };
        }
        Reply {
            allowed: false,
            remaining: 0,
            reset_ms: ttl_ms,
            retry_ms: Some(ttl_ms),
        }
    }

    /// Decodes the reply of `algorithm`'s script run with `args` (its three
    /// `ARGV`, as numbers); `None` for a reply of another shape.
    pub(crate) fn parse(
        algorithm: Algorithm,
        args: [u64; 3],
        value: &ScriptValue,
    ) -> Option<Reply> {
        let [first, second, cost] = args.map(|n| i64::try_from(n).ok());
        let (first, second, cost) = (first?, second?, cost?);
        match algorithm {
            Algorithm::FixedWindow => Self::parse_array(value),
            Algorithm::SlidingWindow => Self::sliding_window(first, second, cost, value),
            Algorithm::Gcra => Self::gcra(first, second, cost, value.as_int()?),
        }
    }

    /// [`SLIDING_WINDOW`]'s reply, for `limit`, `window` ms and `cost`.
    fn sliding_window(limit: i64, window: i64, cost: i64, value: &ScriptValue) -> Option<Reply> {
        if window <= 0 {
            return None;
        }
        if let Some(packed) = value.as_int() {
            return Some(Reply {
                allowed: true,
                remaining: u64::try_from(packed.div_euclid(window)).ok()?,
                reset_ms: u64::try_from(packed.rem_euclid(window) + 1 + window).ok()?,
                retry_ms: None,
            });
        }
        let [cur, prev, weight] = value.as_array()? else {
            return None;
        };
        let (cur, prev, weight) = (cur.as_int()?, prev.as_int()?, weight.as_int()?);
        let budget = limit * window;
        let used = prev * weight + cur * window;
        let need = budget - cost * window;
        let retry = if cur * window <= need {
            ceil_div(used - need, prev)
        } else {
            weight + ceil_div(cur * window - need, cur)
        };
        let reset = if cur > 0 {
            weight + window
        } else if prev > 0 {
            weight
        } else {
            0
        };
        Some(Reply {
            allowed: false,
            remaining: u64::try_from((budget - used).max(0) / window).ok()?,
            reset_ms: u64::try_from(reset.max(0)).ok()?,
            retry_ms: Some(u64::try_from(retry.max(0)).ok()?),
        })
    }

    /// [`GCRA`]'s reply, for `interval` and `capacity` µs and `cost`.
    fn gcra(interval: i64, capacity: i64, cost: i64, value: i64) -> Option<Reply> {
        if interval <= 0 {
            return None;
        }
        let remaining = |tat: i64| u64::try_from(((capacity - tat) / interval).max(0)).ok();
        let millis = |us: i64| u64::try_from(ceil_div(us.max(0), 1000)).ok();
        if value >= 0 {
            return Some(Reply {
                allowed: true,
                remaining: remaining(value)?,
                reset_ms: millis(value)?,
                retry_ms: None,
            });
        }
        let tat = -1 - value;
        Some(Reply {
            allowed: false,
            remaining: remaining(tat)?,
            reset_ms: millis(tat)?,
            retry_ms: Some(millis(tat + cost * interval - capacity)?),
        })
    }

    /// Decodes `{allowed, remaining, reset_ms, retry_ms}`; `None` for any
    /// other shape.
    fn parse_array(value: &ScriptValue) -> Option<Reply> {
        let [allowed, remaining, reset, retry] = value.as_array()? else {
            return None;
        };
        let allowed = allowed.as_int()? == 1;
        let retry = retry.as_int()?;
        Some(Reply {
            allowed,
            remaining: u64::try_from(remaining.as_int()?.max(0)).ok()?,
            reset_ms: u64::try_from(reset.as_int()?.max(0)).ok()?,
            retry_ms: if allowed {
                None
            } else {
                Some(u64::try_from(retry.max(0)).ok()?)
            },
        })
    }
}

/// `ARGV[i + 1]` through the shared accessor, as the `i64` the arithmetic
/// uses (the policy keeps every argument far below `i64::MAX`).
fn arg(run: &ScriptRun<'_>, i: usize) -> Result<i64, String> {
    let n = run.arg_u64(i)?;
    i64::try_from(n).map_err(|_| run.error(format_args!("ARGV[{}] is out of range", i + 1)))
}

/// A stored counter or TAT (a value, not an argument).
fn parse_int(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// A sliding-window state, `(current, previous)`: the text layout
/// `index:current:previous` (the index not read) or the packed integer.
fn parse_state(bytes: &[u8]) -> Option<(i64, i64)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let digits = |part: &str| -> Option<i64> {
        // Digits only, no sign: a count the limiter wrote.
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Counts the limiter writes stay below 2^52 packed (2^50 as
        // text): a larger number is not its own.
        part.parse().ok().filter(|n| *n < 1_i64 << 52)
    };
    if !text.contains(':') {
        let packed = digits(text)?;
        return Some((packed / PACK, packed % PACK));
    }
    let mut parts = text.split(':');
    parts.next()?;
    let state = (digits(parts.next()?)?, digits(parts.next()?)?);
    parts.next().is_none().then_some(state)
}

fn now_ms(run: &ScriptRun<'_>) -> i64 {
    i64::try_from(run.now_ms()).unwrap_or(i64::MAX)
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// `⌈a / b⌉` for `a ≥ 0`, `b > 0`.
fn ceil_div(a: i64, b: i64) -> i64 {
    if b <= 0 {
        return 0;
    }
    (a + b - 1).div_euclid(b)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::store::ScriptOps;

    use super::*;

    /// A database with a clock the test sets, for exact arithmetic that
    /// real-time tests can only bound.
    #[derive(Default)]
    struct FakeOps {
        now: u64,
        /// Value and expiry (absolute ms).
        keys: HashMap<String, (Vec<u8>, Option<u64>)>,
    }

    impl FakeOps {
        fn live(&mut self, key: &str) -> Option<&mut (Vec<u8>, Option<u64>)> {
            let now = self.now;
            if self
                .keys
                .get(key)
                .is_some_and(|(_, at)| at.is_some_and(|at| at <= now))
            {
                self.keys.remove(key);
            }
            self.keys.get_mut(key)
        }

        fn run(&mut self, script: &Script, numbers: [u64; 3]) -> Reply {
            let args: Vec<Vec<u8>> = numbers.iter().map(|n| n.to_string().into_bytes()).collect();
            let value = script
                .run_memory(self, &["k".to_owned()], &args)
                .expect("script runs");
            let algorithm = [
                Algorithm::FixedWindow,
                Algorithm::SlidingWindow,
                Algorithm::Gcra,
            ]
            .into_iter()
            .find(|algorithm| std::ptr::eq(algorithm.script(), script))
            .expect("a rate-limit script");
            Reply::parse(algorithm, numbers, &value).expect("a well-formed reply")
        }
    }

    impl ScriptOps for FakeOps {
        fn get(&mut self, key: &str) -> Option<Vec<u8>> {
            self.live(key).map(|(value, _)| value.clone())
        }
        fn set(&mut self, key: &str, value: &[u8], px: Option<u64>) {
            let at = px.map(|ms| self.now + ms);
            self.keys.insert(key.to_owned(), (value.to_vec(), at));
        }
        fn set_keep_ttl(&mut self, key: &str, value: &[u8]) {
            match self.live(key) {
                Some(entry) => entry.0 = value.to_vec(),
                None => self.set(key, value, None),
            }
        }
        fn del(&mut self, key: &str) -> bool {
            self.live(key).is_some() && self.keys.remove(key).is_some()
        }
        fn pttl(&mut self, key: &str) -> i64 {
            let now = self.now;
            match self.live(key) {
                None => -2,
                Some((_, None)) => -1,
                Some((_, Some(at))) => (*at - now) as i64,
            }
        }
        fn pexpire(&mut self, key: &str, ms: u64) -> bool {
            let at = self.now + ms;
            self.live(key).map(|entry| entry.1 = Some(at)).is_some()
        }
        fn now_ms(&self) -> u64 {
            self.now
        }
    }

    fn allowed(remaining: u64, reset_ms: u64) -> Reply {
        Reply {
            allowed: true,
            remaining,
            reset_ms,
            retry_ms: None,
        }
    }

    fn denied(remaining: u64, reset_ms: u64, retry_ms: u64) -> Reply {
        Reply {
            allowed: false,
            remaining,
            reset_ms,
            retry_ms: Some(retry_ms),
        }
    }

    #[test]
    fn fixed_window_counts_within_the_first_hits_window() {
        let mut ops = FakeOps {
            now: 1_000,
            ..FakeOps::default()
        };
        let args = [3, 1_000, 1];
        assert_eq!(ops.run(&FIXED_WINDOW, args), allowed(2, 1_000));
        ops.now = 1_600;
        assert_eq!(
            ops.run(&FIXED_WINDOW, args),
            allowed(1, 400),
            "not re-armed"
        );
        assert_eq!(ops.run(&FIXED_WINDOW, [3, 1_000, 2]), denied(1, 400, 400));
        assert_eq!(ops.run(&FIXED_WINDOW, args), allowed(0, 400));
        assert_eq!(ops.run(&FIXED_WINDOW, args), denied(0, 400, 400));
        ops.now = 2_000;
        assert_eq!(
            ops.run(&FIXED_WINDOW, args),
            allowed(2, 1_000),
            "a new window"
        );
    }

    #[test]
    fn sliding_window_weighs_the_previous_window_exactly() {
        // 10 per 1000 ms; window 5 starts at 5000.
        let mut ops = FakeOps {
            now: 5_000,
            ..FakeOps::default()
        };
        let args = [10, 1_000, 1];
        for remaining in (0..10).rev() {
            assert_eq!(ops.run(&SLIDING_WINDOW, args), allowed(remaining, 2_000));
        }
        // Full: the next check fits 100 ms into the next window, when the
        // 10 weigh 9.
        assert_eq!(ops.run(&SLIDING_WINDOW, args), denied(0, 2_000, 1_100));
        ops.now = 6_099;
        assert!(!ops.run(&SLIDING_WINDOW, args).allowed);
        ops.now = 6_100;
        assert_eq!(ops.run(&SLIDING_WINDOW, args), allowed(0, 1_900));

        // Half-way through window 7: window 6 held 1, window 5 no longer
        // counts.
        ops.now = 7_500;
        assert_eq!(ops.run(&SLIDING_WINDOW, args), allowed(8, 1_500));
        // Window 8 at 250 ms: window 7 held 1, weighing 0.75.
        ops.now = 8_250;
        assert_eq!(ops.run(&SLIDING_WINDOW, [10, 1_000, 9]), allowed(0, 1_750));
        // 0.75 + 9 + 1 > 10: the next one fits when the previous window's 1
        // weighs nothing, at the end of window 8.
        assert_eq!(ops.run(&SLIDING_WINDOW, args), denied(0, 1_750, 750));
        // The key lives until the end of the next window.
        assert_eq!(ops.pttl("k"), 1_750);
    }

    #[test]
    fn gcra_spaces_requests_by_the_interval_after_the_burst() {
        // 10 per 1000 ms (100 ms interval), burst 3 (300 ms capacity).
        let mut ops = FakeOps {
            now: 10_000,
            ..FakeOps::default()
        };
        let args = [100_000, 300_000, 1];
        assert_eq!(ops.run(&GCRA, args), allowed(2, 100));
        assert_eq!(ops.run(&GCRA, args), allowed(1, 200));
        assert_eq!(ops.run(&GCRA, args), allowed(0, 300));
        assert_eq!(ops.run(&GCRA, args), denied(0, 300, 100));
        assert_eq!(ops.pttl("k"), 300, "the key lives until the bucket is full");
        ops.now = 10_099;
        assert!(!ops.run(&GCRA, args).allowed);
        ops.now = 10_100;
        assert_eq!(ops.run(&GCRA, args), allowed(0, 300));
        // A cost of 2 needs two intervals.
        ops.now = 10_250;
        assert_eq!(ops.run(&GCRA, [100_000, 300_000, 2]), denied(1, 150, 50));
        ops.now = 10_300;
        assert_eq!(ops.run(&GCRA, [100_000, 300_000, 2]), allowed(0, 300));
        // Idle for the whole capacity: the key is gone, the burst is back.
        ops.now = 10_600;
        assert_eq!(ops.get("k"), None);
        assert_eq!(ops.run(&GCRA, [100_000, 300_000, 3]), allowed(0, 300));
    }

    #[test]
    fn gcra_reads_the_absolute_tat_of_earlier_versions() {
        // A key written before the TAT moved into the expiry: TAT 10 200 ms
        // in µs, living until then.
        let legacy = |now| {
            let mut ops = FakeOps {
                now,
                ..FakeOps::default()
            };
            ops.set("k", b"10200000", Some(200));
            ops
        };
        // 10 per 1000 ms (whole milliseconds), burst 3: the expiry is read.
        let mut ops = legacy(10_000);
        let args = [100_000, 300_000, 1];
        assert_eq!(ops.run(&GCRA, args), allowed(0, 300));
        assert_eq!(ops.run(&GCRA, args), denied(0, 300, 100));
        assert_eq!(ops.pttl("k"), 300);
        // An interval of 150.5 ms, burst 3: the value is read, and the key
        // rewritten in this layout (the expiry rounds the TAT up by 500 µs).
        let mut ops = legacy(10_000);
        let args = [150_500, 451_500, 1];
        assert_eq!(ops.run(&GCRA, args), allowed(0, 351));
        assert_eq!((ops.get("k"), ops.pttl("k")), (Some(b"500".to_vec()), 351));
        assert_eq!(ops.run(&GCRA, args), denied(0, 351, 50));
    }

    #[test]
    fn gcra_whole_milliseconds_answer_as_the_microsecond_path() {
        // The same checks through both paths of the twin, at every step:
        // same replies, same expiries. 7 per 700 ms, burst 4; a check every
        // 37 ms with costs 1, 2, 3 in turn, past several refills.
        let (interval, capacity) = (100_000, 400_000);
        let (mut short, mut long) = (FakeOps::default(), FakeOps::default());
        let mut answers = [0; 2];
        for step in 0..60_u64 {
            let now = 1_000 + step * 37;
            let cost = (step % 3 + 1) as i64;
            short.now = now;
            long.now = now;
            let fast = run_gcra(&mut short, [interval, capacity, cost], true);
            let slow = run_gcra(&mut long, [interval, capacity, cost], false);
            assert_eq!(fast, slow, "step {step}");
            assert_eq!(short.pttl("k"), long.pttl("k"), "step {step}");
            answers[usize::from(fast < 0)] += 1;
        }
        assert!(
            answers[0] > 10 && answers[1] > 10,
            "allowed, denied: {answers:?}"
        );
    }

    #[test]
    fn sliding_window_layouts_answer_alike() {
        // The same checks on a packed and a text state, at every step:
        // same replies, same expiries. 10 per 1000 ms; a check every
        // 70 ms with costs 1, 2, 3 in turn, over several windows.
        let (mut packed, mut text) = (FakeOps::default(), FakeOps::default());
        let mut answers = [0; 2];
        for step in 0..80_u64 {
            let now = 1_000 + step * 70;
            let cost = (step % 3 + 1) as i64;
            packed.now = now;
            text.now = now;
            let args = [10, 1_000, cost];
            let a = run_sliding(&mut packed, args, true);
            let b = run_sliding(&mut text, args, false);
            assert_eq!(a, b, "step {step}");
            assert_eq!(packed.pttl("k"), text.pttl("k"), "step {step}");
            answers[usize::from(matches!(a, ScriptValue::Array(_)))] += 1;
        }
        assert!(
            answers[0] > 10 && answers[1] > 10,
            "allowed, denied: {answers:?}"
        );
        // Each reads the other's layout.
        let (p, t) = (packed.get("k"), text.get("k"));
        assert_eq!(
            p.as_deref().and_then(parse_state),
            t.as_deref().and_then(parse_state)
        );
    }

    /// One sliding-window check through the twin, writing the packed
    /// layout (`true`) or the text one.
    fn run_sliding(ops: &mut FakeOps, args: [i64; 3], packed: bool) -> ScriptValue {
        let keys = ["k".to_owned()];
        let mut run = ScriptRun::new("sliding twin", ops, &keys, &[]);
        let ttl = run.pttl("k").expect("pttl");
        sliding_window_counts(&mut run, "k", ttl, args, packed).expect("runs")
    }

    /// One GCRA check through the twin's whole-millisecond path (`true`)
    /// or its general path with the same numbers.
    fn run_gcra(ops: &mut FakeOps, [interval, capacity, cost]: [i64; 3], whole: bool) -> i64 {
        let keys = ["k".to_owned()];
        let args: Vec<Vec<u8>> = Vec::new();
        let mut run = ScriptRun::new("gcra twin", ops, &keys, &args);
        let ttl = run.pttl("k").expect("pttl");
        let path = if whole { gcra_whole_ms } else { gcra_micros };
        let value = path(&mut run, "k", ttl, [interval, capacity, cost]);
        value.expect("runs").as_int().expect("an integer")
    }

    #[test]
    fn fixed_window_counts_answer_as_the_script() {
        let ttl = KeyTtl::ExpiresIn(std::time::Duration::from_millis(400));
        assert_eq!(Reply::fixed_window_count(1, ttl, 3, 1_000), allowed(2, 400));
        assert_eq!(Reply::fixed_window_count(3, ttl, 3, 1_000), allowed(0, 400));
        // Counted past the limit: denied, nothing left.
        assert_eq!(
            Reply::fixed_window_count(4, ttl, 3, 1_000),
            denied(0, 400, 400)
        );
        assert_eq!(
            Reply::fixed_window_count(9, ttl, 3, 1_000),
            denied(0, 400, 400)
        );
        // No expiry reads as a whole window.
        assert_eq!(
            Reply::fixed_window_count(1, KeyTtl::Persistent, 3, 1_000),
            allowed(2, 1_000)
        );
    }

    #[test]
    fn parses_replies_and_refuses_other_shapes() {
        assert_eq!(
            Reply::parse_array(&reply(true, 3, 900, -1)),
            Some(Reply {
                allowed: true,
                remaining: 3,
                reset_ms: 900,
                retry_ms: None
            })
        );
        assert_eq!(
            Reply::parse_array(&reply(false, 0, 900, 120)).and_then(|r| r.retry_ms),
            Some(120)
        );
        assert_eq!(Reply::parse_array(&ScriptValue::Int(1)), None);
        assert_eq!(
            Reply::parse_array(&ScriptValue::Array(vec![ScriptValue::Int(1)])),
            None
        );
    }

    #[test]
    fn sliding_state_parses_like_the_lua_pattern() {
        assert_eq!(parse_state(b"0:3:4"), Some((3, 4)));
        // The window index earlier versions kept is not read.
        assert_eq!(parse_state(b"28744917:3:4"), Some((3, 4)));
        // Packed: current × 2^26 + previous.
        let packed = (3 * PACK + 4).to_string();
        assert_eq!(parse_state(packed.as_bytes()), Some((3, 4)));
        assert_eq!(parse_state(b"0"), Some((0, 0)));
        for bad in [
            &b"12:3"[..],
            b"12:3:4:5",
            b"0:-3:4",
            b"a:b:c",
            b"1::2",
            b"",
            b"-5",
            b"x",
        ] {
            assert_eq!(parse_state(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ceil_div_rounds_up() {
        assert_eq!(ceil_div(0, 1000), 0);
        assert_eq!(ceil_div(1, 1000), 1);
        assert_eq!(ceil_div(1000, 1000), 1);
        assert_eq!(ceil_div(1001, 1000), 2);
    }
}
