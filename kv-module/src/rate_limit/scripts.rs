//! The three rate-limit [`Script`]s: one atomic step per check, in Lua
//! for Redis and in Rust for the memory backend.
//!
//! Every script takes one key (`KEYS[1]`, the policy's key for the
//! client) and returns `{allowed, remaining, reset_after_ms,
//! retry_after_ms}` (`retry_after_ms` is -1 when allowed). A denied check
//! writes nothing, so it consumes nothing; an allowed one always leaves
//! its key with a TTL. The sliding window and GCRA read the store's clock
//! (`TIME`, [`ScriptRun::now_ms`]) so that application instances whose
//! clocks differ still agree; the fixed window needs no clock at all (the
//! key's expiry is the window).
//!
//! One key per check, so no hash tag is needed: a script's keys must share
//! a slot on a Redis Cluster, and a single key always does. The key comes
//! in `KEYS` like every script's; the Lua helpers and the twins' `KEYS` /
//! `ARGV` accessors are the shared ones ([`ScriptRun`]).
//!
//! Lua numbers are doubles. The policy's validation keeps every product
//! under 2^50, so all arithmetic below is exact in both twins and they
//! return the same numbers; values written back are formatted with the
//! prelude's `int()` (`%d`), because Lua's default number format switches
//! to exponent notation above 10^14.

use crate::store::{Script, ScriptRun, ScriptValue, lua_prelude};

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
/// The key holds `window_index:current_count:previous_count`, where the
/// window index is the store's time divided by the window. The estimate is
/// `previous × (window − elapsed) / window + current`, compared scaled by
/// the window to stay in integers. The key lives until the end of the
/// next window, when its current count stops weighing.
pub(crate) static SLIDING_WINDOW: Script = Script::new(
    "rate limit sliding window",
    concat!(
        lua_prelude!(),
        r#"
local limit, window, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local index = math.floor(now / window)
local weight = window - (now - index * window)
local cur, prev = 0, 0
local state = redis.call('GET', KEYS[1])
if state then
  local s_index, s_cur, s_prev = string.match(state, '^(%d+):(%d+):(%d+)$')
  if not s_index then return redis.error_reply('rate limit state is corrupt') end
  s_index, s_cur, s_prev = tonumber(s_index), tonumber(s_cur), tonumber(s_prev)
  if s_index >= index then
    cur, prev = s_cur, s_prev
  elseif s_index == index - 1 then
    prev = s_cur
  end
end
local budget = limit * window
local used = prev * weight + cur * window
if used + cost * window > budget then
  local need = budget - cost * window
  local retry
  if cur * window <= need then
    retry = math.ceil((used - need) / prev)
  else
    retry = weight + math.ceil((cur * window - need) / cur)
  end
  local reset = 0
  if cur > 0 then reset = weight + window elseif prev > 0 then reset = weight end
  return {0, math.floor(math.max(budget - used, 0) / window), reset, retry}
end
cur = cur + cost
used = used + cost * window
redis.call('SET', KEYS[1], int(index) .. ':' .. int(cur) .. ':' .. int(prev),
  'PX', int(weight + window))
return {1, math.floor((budget - used) / window), weight + window, -1}
"#
    ),
    sliding_window,
);

fn sliding_window(run: &mut ScriptRun<'_>) -> Result<ScriptValue, String> {
    let key = run.key(0)?;
    let (limit, window, cost) = (arg(run, 0)?, arg(run, 1)?, arg(run, 2)?);
    let now = now_ms(run);
    let index = now / window;
    let weight = window - (now - index * window);
    let (mut cur, mut prev) = (0, 0);
    if let Some(state) = run.get(key)? {
        let (s_index, s_cur, s_prev) = parse_state(&state).ok_or("rate limit state is corrupt")?;
        if s_index >= index {
            (cur, prev) = (s_cur, s_prev);
        } else if s_index == index - 1 {
            prev = s_cur;
        }
    }
    let budget = limit * window;
    let used = prev * weight + cur * window;
    if used + cost * window > budget {
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
        return Ok(reply(false, (budget - used).max(0) / window, reset, retry));
    }
    let cur = cur + cost;
    let used = used + cost * window;
    run.set(
        key,
        format!("{index}:{cur}:{prev}").as_bytes(),
        Some(unsigned(weight + window)),
    )?;
    Ok(reply(true, (budget - used) / window, weight + window, -1))
}

/// GCRA. `ARGV`: emission interval µs (`window / limit`, rounded up),
/// capacity µs (`burst × interval`), cost.
///
/// The key holds the theoretical arrival time (TAT) in µs of the store's
/// clock. A check of cost `c` would move it to `max(TAT, now) + c ×
/// interval`; it passes when that is at most `now + capacity`. The key
/// lives until the TAT, after which the bucket is full and a missing key
/// means the same.
pub(crate) static GCRA: Script = Script::new(
    "rate limit gcra",
    concat!(
        lua_prelude!(),
        r#"
local interval, capacity, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms() * 1000
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  tat = tonumber(stored)
  if not tat then return redis.error_reply('rate limit state is corrupt') end
  if tat < now then tat = now end
end
local new_tat = tat + cost * interval
local allow_at = new_tat - capacity
if allow_at > now then
  return {0, math.floor((now + capacity - tat) / interval),
    math.ceil((tat - now) / 1000), math.ceil((allow_at - now) / 1000)}
end
local ttl = math.ceil((new_tat - now) / 1000)
redis.call('SET', KEYS[1], int(new_tat), 'PX', int(ttl))
return {1, math.floor((now + capacity - new_tat) / interval), ttl, -1}
"#
    ),
    gcra,
);

fn gcra(run: &mut ScriptRun<'_>) -> Result<ScriptValue, String> {
    let key = run.key(0)?;
    let (interval, capacity, cost) = (arg(run, 0)?, arg(run, 1)?, arg(run, 2)?);
    let now = now_ms(run) * 1000;
    let tat = match run.get(key)? {
        None => now,
        Some(bytes) => parse_int(&bytes)
            .ok_or("rate limit state is corrupt")?
            .max(now),
    };
    let new_tat = tat + cost * interval;
    let allow_at = new_tat - capacity;
    if allow_at > now {
        return Ok(reply(
            false,
            (now + capacity - tat) / interval,
            ceil_div(tat - now, 1000),
            ceil_div(allow_at - now, 1000),
        ));
    }
    let ttl = ceil_div(new_tat - now, 1000);
    run.set(key, new_tat.to_string().as_bytes(), Some(unsigned(ttl)))?;
    Ok(reply(true, (now + capacity - new_tat) / interval, ttl, -1))
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
    /// Decodes `{allowed, remaining, reset_ms, retry_ms}`; `None` for any
    /// other shape.
    pub(crate) fn parse(value: &ScriptValue) -> Option<Reply> {
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

fn parse_state(bytes: &[u8]) -> Option<(i64, i64, i64)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut parts = text.split(':');
    let mut next = || -> Option<i64> {
        let part = parts.next()?;
        // `%d+` in the Lua twin: digits only, no sign.
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let state = (next()?, next()?, next()?);
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

        fn run(&mut self, script: &Script, args: [u64; 3]) -> Reply {
            let args: Vec<Vec<u8>> = args.iter().map(|n| n.to_string().into_bytes()).collect();
            let value = script
                .run_memory(self, &["k".to_owned()], &args)
                .expect("script runs");
            Reply::parse(&value).expect("a well-formed reply")
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
    fn parses_replies_and_refuses_other_shapes() {
        assert_eq!(
            Reply::parse(&reply(true, 3, 900, -1)),
            Some(Reply {
                allowed: true,
                remaining: 3,
                reset_ms: 900,
                retry_ms: None
            })
        );
        assert_eq!(
            Reply::parse(&reply(false, 0, 900, 120)).and_then(|r| r.retry_ms),
            Some(120)
        );
        assert_eq!(Reply::parse(&ScriptValue::Int(1)), None);
        assert_eq!(
            Reply::parse(&ScriptValue::Array(vec![ScriptValue::Int(1)])),
            None
        );
    }

    #[test]
    fn sliding_state_parses_like_the_lua_pattern() {
        assert_eq!(parse_state(b"12:3:4"), Some((12, 3, 4)));
        for bad in [&b"12:3"[..], b"12:3:4:5", b"-1:3:4", b"a:b:c", b"1::2", b""] {
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
