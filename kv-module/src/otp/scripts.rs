//! The one-time-code service's two atomic steps, `issue` and `verify`,
//! each a [`Script`]: Lua on Redis, its Rust twin under the memory
//! backend's lock.
//!
//! Keys (under the store's prefix; `<slot>` and `<subject>` are keyed
//! HMACs, so neither subjects nor purposes appear in key names, and
//! `{tag}` is the first 16 characters of `<subject>`):
//!
//! | key | value | TTL |
//! |---|---|---|
//! | `otp:{tag}:code:<slot>` | `{failed attempts}:{hex HMAC of the code}` | the code's lifetime |
//! | `otp:{tag}:cooldown:<slot>` | `1` | the resend cooldown |
//! | `otp:{tag}:daily:<subject>` | codes issued in the window | 24 h from the first |
//! | `otp:{tag}:failures:<subject>` | failed verifications in the window | the failure window from the first |
//!
//! Every key of one subject carries the subject's hash tag, so each
//! script's keys — all passed in `KEYS`, none built inside — share a slot
//! on a Redis Cluster.
//!
//! The HMAC is computed before the script runs, so a script only compares
//! digests: in Rust in constant time; in Lua as strings (inside Redis,
//! where no client can time the comparison apart from the round trip).

use subtle::ConstantTimeEq;

use crate::store::{Script, ScriptRun, ScriptValue, lua_prelude};

/// Status codes of the replies (`{status, n}`).
pub(crate) mod status {
    /// issue: issued (`n` = lifetime ms); verify: verified.
    pub(crate) const OK: i64 = 0;
    /// issue: cooldown (`n` = ms left); verify: invalid (`n` = attempts left).
    pub(crate) const RETRY_OR_INVALID: i64 = 1;
    /// issue: daily cap (`n` = ms left); verify: expired or unknown.
    pub(crate) const CAP_OR_UNKNOWN: i64 = 2;
    /// Subject locked (`n` = ms left in the failure window).
    pub(crate) const LOCKED: i64 = 3;
}

/// The Lua the two scripts share (after the common [`lua_prelude!`]).
macro_rules! prelude {
    () => {
        r#"
local function counter(key)
  local value = redis.call('GET', key)
  return value and tonumber(value) or 0
end
-- Time left on a counter; one without a TTL (which no write here makes)
-- gets the window, so that nothing lives forever.
local function remaining(key, window)
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, window)
    return tonumber(window)
  end
  return ttl
end
-- A fixed-window counter: the first increment starts the window.
local function bump(key, count, window)
  if count == 0 then
    redis.call('SET', key, '1', 'PX', window)
  else
    redis.call('SET', key, int(count + 1), 'KEEPTTL')
  end
end
"#
    };
}

/// `issue`: `KEYS` = code, cooldown, daily, failures; `ARGV` = digest, ttl
/// ms, cooldown ms (0: none), daily cap, daily window ms, failure limit,
/// failure window ms. Refuses a locked subject, then a cooldown, then the
/// daily cap; otherwise counts the code and stores its digest, replacing
/// any earlier code of the slot.
pub(crate) static ISSUE: Script = Script::new(
    "otp issue",
    concat!(
        lua_prelude!(),
        prelude!(),
        r#"
if counter(KEYS[4]) >= tonumber(ARGV[6]) then
  return {3, remaining(KEYS[4], ARGV[7])}
end
if ARGV[3] ~= '0' then
  local cooldown = redis.call('PTTL', KEYS[2])
  if cooldown > 0 then
    return {1, cooldown}
  end
end
local issued = counter(KEYS[3])
if issued >= tonumber(ARGV[4]) then
  return {2, remaining(KEYS[3], ARGV[5])}
end
bump(KEYS[3], issued, ARGV[5])
redis.call('SET', KEYS[1], '0:' .. ARGV[1], 'PX', ARGV[2])
if ARGV[3] ~= '0' then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
end
return {0, tonumber(ARGV[2])}
"#
    ),
    issue_memory,
);

/// `verify`: `KEYS` = code, failures; `ARGV` = digest, max attempts,
/// failure limit, failure window ms. A locked subject is refused before
/// anything is compared; a match consumes the code; a mismatch counts
/// against the code (burned at max attempts) and the subject (locked, and
/// the code burned, at the limit).
pub(crate) static VERIFY: Script = Script::new(
    "otp verify",
    concat!(
        lua_prelude!(),
        prelude!(),
        r#"
local limit = tonumber(ARGV[3])
local failures = counter(KEYS[2])
if failures >= limit then
  return {3, remaining(KEYS[2], ARGV[4])}
end
local record = redis.call('GET', KEYS[1])
if not record then
  return {2, 0}
end
local attempts, digest = string.match(record, '^(%d+):(%x+)$')
if not attempts then
  error('malformed one-time code record')
end
if digest == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {0, 0}
end
bump(KEYS[2], failures, ARGV[4])
if failures + 1 >= limit then
  redis.call('DEL', KEYS[1])
  return {3, remaining(KEYS[2], ARGV[4])}
end
attempts = tonumber(attempts) + 1
local left = tonumber(ARGV[2]) - attempts
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return {1, 0}
end
redis.call('SET', KEYS[1], int(attempts) .. ':' .. digest, 'KEEPTTL')
return {1, left}
"#
    ),
    verify_memory,
);

// ---- The Rust twins: the same steps through `ScriptRun`, in the same
// order.

type Reply = Result<ScriptValue, String>;

fn reply(status: i64, n: i64) -> Reply {
    Ok(ScriptValue::Array(vec![
        ScriptValue::Int(status),
        ScriptValue::Int(n),
    ]))
}

fn counter(run: &mut ScriptRun<'_>, key: &str) -> Result<u64, String> {
    Ok(run
        .get(key)?
        .and_then(|value| std::str::from_utf8(&value).ok()?.parse().ok())
        .unwrap_or(0))
}

fn remaining(run: &mut ScriptRun<'_>, key: &str, window: u64) -> Result<i64, String> {
    Ok(match run.pttl(key)? {
        ttl if ttl < 0 => {
            run.pexpire(key, window)?;
            i64::try_from(window).unwrap_or(i64::MAX)
        }
        ttl => ttl,
    })
}

fn bump(run: &mut ScriptRun<'_>, key: &str, count: u64, window: u64) -> Result<(), String> {
    if count == 0 {
        run.set(key, b"1", Some(window))
    } else {
        run.set_keep_ttl(key, (count + 1).to_string().as_bytes())
    }
}

fn issue_memory(run: &mut ScriptRun<'_>) -> Reply {
    let (code, cooldown, daily, failures) = (run.key(0)?, run.key(1)?, run.key(2)?, run.key(3)?);
    let digest = run.arg_bytes(0)?;
    let (ttl, cooldown_ms, cap) = (run.arg_u64(1)?, run.arg_u64(2)?, run.arg_u64(3)?);
    let (daily_window, limit, failure_window) = (run.arg_u64(4)?, run.arg_u64(5)?, run.arg_u64(6)?);
    if counter(run, failures)? >= limit {
        let left = remaining(run, failures, failure_window)?;
        return reply(status::LOCKED, left);
    }
    if cooldown_ms != 0 {
        let left = run.pttl(cooldown)?;
        if left > 0 {
            return reply(status::RETRY_OR_INVALID, left);
        }
    }
    let issued = counter(run, daily)?;
    if issued >= cap {
        let left = remaining(run, daily, daily_window)?;
        return reply(status::CAP_OR_UNKNOWN, left);
    }
    bump(run, daily, issued, daily_window)?;
    run.set(code, &[b"0:", digest].concat(), Some(ttl))?;
    if cooldown_ms != 0 {
        run.set(cooldown, b"1", Some(cooldown_ms))?;
    }
    reply(status::OK, i64::try_from(ttl).unwrap_or(i64::MAX))
}

fn verify_memory(run: &mut ScriptRun<'_>) -> Reply {
    let (code, failures_key) = (run.key(0)?, run.key(1)?);
    let digest = run.arg_bytes(0)?;
    let (max_attempts, limit, window) = (run.arg_u64(1)?, run.arg_u64(2)?, run.arg_u64(3)?);
    let failures = counter(run, failures_key)?;
    if failures >= limit {
        let left = remaining(run, failures_key, window)?;
        return reply(status::LOCKED, left);
    }
    let Some(record) = run.get(code)? else {
        return reply(status::CAP_OR_UNKNOWN, 0);
    };
    let (attempts, stored) = std::str::from_utf8(&record)
        .ok()
        .and_then(|text| text.split_once(':'))
        .and_then(|(attempts, stored)| {
            let hex = !stored.is_empty() && stored.bytes().all(|b| b.is_ascii_hexdigit());
            hex.then_some((attempts.parse::<u64>().ok()?, stored.to_owned()))
        })
        .ok_or_else(|| "malformed one-time code record".to_owned())?;
    if bool::from(stored.as_bytes().ct_eq(digest)) {
        run.del(code)?;
        return reply(status::OK, 0);
    }
    bump(run, failures_key, failures, window)?;
    if failures + 1 >= limit {
        run.del(code)?;
        let left = remaining(run, failures_key, window)?;
        return reply(status::LOCKED, left);
    }
    let attempts = attempts + 1;
    let left = max_attempts.saturating_sub(attempts);
    if left == 0 {
        run.del(code)?;
        return reply(status::RETRY_OR_INVALID, 0);
    }
    run.set_keep_ttl(code, format!("{attempts}:{stored}").as_bytes())?;
    reply(
        status::RETRY_OR_INVALID,
        i64::try_from(left).unwrap_or(i64::MAX),
    )
}
