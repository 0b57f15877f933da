//! Server-side formulations of a rate-limit check, each against the naive
//! `INCR` + `PEXPIRE` pipeline in the same run: the measurements behind the
//! choice of what `KvRateLimiter` sends (kept so the losers stay on record
//! and the choice can be re-checked on another server version).
//!
//! ```text
//! cargo bench -p kv-module-tests --bench rate_limit_formulations
//! BENCH_SECS=0.3 BENCH_ROUNDS=5 cargo bench -p kv-module-tests --bench rate_limit_formulations
//! BENCH_FILTER=gcra cargo bench -p kv-module-tests --bench rate_limit_formulations
//! ```
//!
//! Every formulation is sent by raw redis-rs on one `ConnectionManager`
//! (TCP_NODELAY on), over 1,000 keys, with a quota no run reaches, at 1 and
//! 50 tasks; each is paired with the naive pipeline (alternating which
//! goes first) and the medians are printed. The GCRA quota keeps every key
//! alive through the run (10 per second, a burst of 10^8), so the scripts
//! read a stored state as they do for a real client, rather than finding
//! it expired.

use std::sync::Arc;
use std::time::Duration;

use kv_module::rate_limit::Algorithm;
use kv_module_tests::TestRedis;
use kv_module_tests::bench::{Plan, Workload, print_machine, run_duration, run_rounds};
use redis::aio::ConnectionManager;

const KEY_COUNT: usize = 1_000;
const CONCURRENCIES: [usize; 2] = [1, 50];
const DEFAULT_SECS: f64 = 0.3;
const DEFAULT_ROUNDS: usize = 7;
const WARM_UP: Duration = Duration::from_millis(100);
const LIMIT: u64 = 10_000_000;
const WINDOW_MS: u64 = 60_000;
/// GCRA: 10 per second (100 ms apart), a burst no run reaches.
const GCRA_INTERVAL_US: u64 = 100_000;
const GCRA_CAPACITY_US: u64 = 100_000_000 * GCRA_INTERVAL_US;

/// The fixed-window script before issue 16 (`GET`, `PTTL`, then
/// `INCRBY` and `PEXPIRE` on a new key).
const FIXED_BEFORE_LUA: &str = r#"
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
"#;

/// The sliding-window script before issue 16 (its shared prelude inline).
const SLIDING_BEFORE_LUA: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function int(n)
  return string.format('%d', n)
end

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
"#;

/// The GCRA script before issue 16 (its shared prelude inline).
const GCRA_BEFORE_LUA: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function int(n)
  return string.format('%d', n)
end

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
"#;

/// Fixed window in one script with no reads before the write: `INCRBY`,
/// then `PEXPIRE` on a new key or `PTTL` on an old one.
const FIXED_LEAN_LUA: &str = r"
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return {n, tonumber(ARGV[2])} end
return {n, redis.call('PTTL', KEYS[1])}
";

/// Sliding window as today's script, with `TIME` inline (no closures
/// built per call), one `string.format` for the state, and an allowed
/// check answered by one integer (`remaining × window + weight − 1`).
const SLIDING_LEAN_LUA: &str = r"
local limit, window, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local index = math.floor(now / window)
local weight = window - (now - index * window)
local cur, prev = 0, 0
local state = redis.call('GET', KEYS[1])
if state then
  local s_index, s_cur, s_prev = string.match(state, '^(%d+):(%d+):(%d+)$')
  if not s_index then return redis.error_reply('rate limit state is corrupt') end
  s_index = tonumber(s_index)
  if s_index >= index then
    cur, prev = tonumber(s_cur), tonumber(s_prev)
  elseif s_index == index - 1 then
    prev = tonumber(s_cur)
  end
end
local budget = limit * window
local used = prev * weight + cur * window
if used + cost * window > budget then
  return {0, cur, prev, weight}
end
cur = cur + cost
redis.call('SET', KEYS[1], string.format('%d:%d:%d', index, cur, prev), 'PX', weight + window)
return math.floor((budget - used - cost * window) / window) * window + weight - 1
";

/// GCRA with the theoretical arrival time kept in the key's expiry (the
/// server's clock, no `TIME`): the key expires at the TAT rounded up to a
/// millisecond and holds the microseconds of that rounding. One integer
/// back: the TAT after the check, relative to now (negative: denied).
const GCRA_TTL_LUA: &str = r"
local interval, capacity, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = 0
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  local r = tonumber(redis.call('GET', KEYS[1]))
  if not r then return redis.error_reply('rate limit state is corrupt') end
  tat = ttl * 1000 - r
  if tat < 0 then tat = 0 end
end
local new_tat = tat + cost * interval
if new_tat > capacity then return -1 - tat end
local ms = math.ceil(new_tat / 1000)
redis.call('SET', KEYS[1], ms * 1000 - new_tat, 'PX', ms)
return new_tat
";

/// GCRA as today (`TIME`, absolute TAT in µs), inline, one integer back.
const GCRA_TIME_INT_LUA: &str = r"
local interval, capacity, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = (tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) * 1000
local tat = 0
local stored = redis.call('GET', KEYS[1])
if stored then
  tat = tonumber(stored)
  if not tat then return redis.error_reply('rate limit state is corrupt') end
  tat = tat - now
  if tat < 0 then tat = 0 end
end
local new_tat = tat + cost * interval
if new_tat > capacity then return -1 - tat end
redis.call('SET', KEYS[1], string.format('%d', now + new_tat), 'PX', math.ceil(new_tat / 1000))
return new_tat
";

/// The sliding window chosen until the expiry became its clock: `TIME`,
/// the window's index kept in the value (`index:current:previous`).
const SLIDING_INDEX_LUA: &str = r#"
local limit, window, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local index = math.floor(now / window)
local weight = window - (now - index * window)
local cur, prev, same = 0, 0, false
local state = redis.call('GET', KEYS[1])
if state then
  local s_index, s_cur, s_prev = string.match(state, '^(%d+):(%d+):(%d+)$')
  if not s_index then return redis.error_reply('rate limit state is corrupt') end
  s_index = tonumber(s_index)
  if s_index >= index then
    cur, prev, same = tonumber(s_cur), tonumber(s_prev), s_index == index
  elseif s_index == index - 1 then
    prev = tonumber(s_cur)
  end
end
local budget = limit * window
local used = prev * weight + cur * window + cost * window
if used > budget then return {cur, prev, weight} end
state = string.format('%d:%d:%d', index, cur + cost, prev)
if same then
  redis.call('SET', KEYS[1], state, 'KEEPTTL')
else
  redis.call('SET', KEYS[1], state, 'PX', weight + window)
end
return math.floor((budget - used) / window) * window + weight - 1
"#;

/// The sliding window on its key's expiry with the counts as text
/// (`0:current:previous`), chosen until they were packed in one integer.
const SLIDING_TEXT_LUA: &str = r#"
local limit, window, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl = redis.call('PTTL', KEYS[1])
local cur, prev, weight = 0, 0, window
if ttl > 0 then
  local state = redis.call('GET', KEYS[1])
  local a = string.find(state, ':', 1, true)
  local b = a and string.find(state, ':', a + 1, true)
  if not b then return redis.error_reply('rate limit state is corrupt') end
  cur, prev = tonumber(string.sub(state, a + 1, b - 1)), tonumber(string.sub(state, b + 1))
  if not (cur and prev and cur >= 0 and prev >= 0 and cur % 1 == 0 and prev % 1 == 0) then
    return redis.error_reply('rate limit state is corrupt')
  end
  if ttl > window then
    weight = ttl - window
  else
    cur, prev, weight = 0, cur, ttl
  end
end
local budget = limit * window
local used = prev * weight + cur * window + cost * window
if used > budget then return {cur, prev, weight} end
if ttl > window then
  redis.call('SET', KEYS[1], string.format('0:%d:%d', cur + cost, prev), 'KEEPTTL')
else
  redis.call('SET', KEYS[1], string.format('0:%d:%d', cur + cost, prev), 'PX', weight + window)
end
return math.floor((budget - used) / window) * window + weight - 1
"#;

/// The GCRA chosen until whole-millisecond intervals skipped the value:
/// `PTTL` and `GET` on every check, the µs of the rounding in the value.
const GCRA_MICROS_LUA: &str = r#"
local interval, capacity, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat, r = 0, -1
local ttl = redis.call('PTTL', KEYS[1])
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
"#;

#[derive(Clone, Copy, Debug)]
enum Form {
    /// `INCR k` + `PEXPIRE k window` in one pipeline (not atomic).
    Naive,
    /// An algorithm's script before issue 16.
    Before(Algorithm),
    /// What `KvRateLimiter` sends now: the fixed window's pipeline
    /// (`SET … PX … NX`, `INCRBY`, `PTTL`), the other algorithms' scripts.
    Chosen(Algorithm),
    /// `INCRBY`, `PEXPIRE NX`, `PTTL` in one pipeline.
    FixedPipeline,
    /// The same three inside `MULTI`/`EXEC`.
    FixedMulti,
    /// [`FIXED_LEAN_LUA`].
    FixedLean,
    /// [`SLIDING_LEAN_LUA`].
    SlidingLean,
    /// [`GCRA_TTL_LUA`].
    GcraTtl,
    /// [`GCRA_TIME_INT_LUA`].
    GcraTimeInt,
    /// [`SLIDING_INDEX_LUA`].
    SlidingIndex,
    /// [`GCRA_MICROS_LUA`].
    GcraMicros,
    /// [`SLIDING_TEXT_LUA`].
    SlidingText,
    /// The chosen GCRA with an interval of 100.5 ms: the path that reads
    /// the value too.
    GcraFraction,
}

impl Form {
    fn label(self) -> String {
        match self {
            Self::Naive => "naive INCR+PEXPIRE pipeline".to_owned(),
            Self::Before(algorithm) => format!("{algorithm}: the script before issue 16"),
            Self::Chosen(Algorithm::FixedWindow) => {
                "fixed_window: pipeline SET PX NX, INCRBY, PTTL (chosen until 4d4ac5a)".to_owned()
            }
            Self::Chosen(algorithm) => format!("{algorithm}: chosen (what the limiter sends)"),
            Self::FixedPipeline => {
                "fixed_window: pipeline INCRBY, PEXPIRE NX, PTTL (what the limiter sends)"
                    .to_owned()
            }
            Self::FixedMulti => "fixed_window: MULTI INCRBY, PEXPIRE NX, PTTL EXEC".to_owned(),
            Self::FixedLean => {
                "fixed_window: lean Lua (INCRBY, PEXPIRE or PTTL), chosen 4d4ac5a until this change"
                    .to_owned()
            }
            Self::SlidingLean => {
                "sliding_window: lean Lua, integer reply, SET PX every time".to_owned()
            }
            Self::GcraTtl => "gcra: TAT in the key's expiry, always SET".to_owned(),
            Self::GcraTimeInt => "gcra: TIME and an absolute TAT, integer reply".to_owned(),
            Self::SlidingIndex => {
                "sliding_window: TIME, the index in the value (chosen until 50c4e8c)".to_owned()
            }
            Self::SlidingText => {
                "sliding_window: PTTL clock, counts as text (chosen 50c4e8c until 9093771)"
                    .to_owned()
            }
            Self::GcraMicros => "gcra: PTTL and GET every time (chosen until 50c4e8c)".to_owned(),
            Self::GcraFraction => {
                "gcra: chosen, an interval of 100.5 ms (reads the value too)".to_owned()
            }
        }
    }
}

struct Fixture {
    conn: ConnectionManager,
    scripts: Scripts,
    keys: Vec<String>,
}

struct Scripts {
    fixed_before: redis::Script,
    sliding_before: redis::Script,
    gcra_before: redis::Script,
    sliding: redis::Script,
    gcra: redis::Script,
    fixed_lean: redis::Script,
    sliding_lean: redis::Script,
    gcra_ttl: redis::Script,
    gcra_time_int: redis::Script,
    sliding_index: redis::Script,
    sliding_text: redis::Script,
    gcra_micros: redis::Script,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let plan = Plan {
        rounds: run_rounds(DEFAULT_ROUNDS),
        key_count: KEY_COUNT,
        warm_up: WARM_UP,
        run_for: run_duration(DEFAULT_SECS),
    };
    let server = TestRedis::start().await;
    let info = redis::IntoConnectionInfo::into_connection_info(server.url(0))
        .expect("test Redis URL must parse")
        .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
    let client = redis::Client::open(info).expect("test Redis URL must parse");
    let conn = ConnectionManager::new(client)
        .await
        .expect("ConnectionManager must connect to the test Redis");
    print_machine("rate-limit formulations against the naive pipeline", &conn).await;
    println!("{plan}, {KEY_COUNT} keys, every check allowed.\n");
    let fixture = Arc::new(Fixture {
        conn,
        scripts: Scripts {
            fixed_before: redis::Script::new(FIXED_BEFORE_LUA),
            sliding_before: redis::Script::new(SLIDING_BEFORE_LUA),
            gcra_before: redis::Script::new(GCRA_BEFORE_LUA),
            sliding: redis::Script::new(Algorithm::SlidingWindow.script().lua()),
            gcra: redis::Script::new(Algorithm::Gcra.script().lua()),
            fixed_lean: redis::Script::new(FIXED_LEAN_LUA),
            sliding_lean: redis::Script::new(SLIDING_LEAN_LUA),
            gcra_ttl: redis::Script::new(GCRA_TTL_LUA),
            gcra_time_int: redis::Script::new(GCRA_TIME_INT_LUA),
            sliding_index: redis::Script::new(SLIDING_INDEX_LUA),
            sliding_text: redis::Script::new(SLIDING_TEXT_LUA),
            gcra_micros: redis::Script::new(GCRA_MICROS_LUA),
        },
        keys: (0..KEY_COUNT).map(|i| format!("ip:{i}")).collect(),
    });
    let forms = [
        Form::Before(Algorithm::FixedWindow),
        Form::FixedPipeline,
        Form::FixedMulti,
        Form::FixedLean,
        Form::Chosen(Algorithm::FixedWindow),
        Form::Before(Algorithm::SlidingWindow),
        Form::SlidingLean,
        Form::SlidingIndex,
        Form::SlidingText,
        Form::Chosen(Algorithm::SlidingWindow),
        Form::Before(Algorithm::Gcra),
        Form::GcraTimeInt,
        Form::GcraTtl,
        Form::GcraMicros,
        Form::GcraFraction,
        Form::Chosen(Algorithm::Gcra),
    ];
    println!("| formulation | tasks | naive ops/s | formulation ops/s | ratio |");
    println!("|---|---:|---:|---:|---:|");
    // `BENCH_FILTER=gcra` runs only the formulations whose label holds it.
    let filter = std::env::var("BENCH_FILTER").unwrap_or_default();
    for concurrency in CONCURRENCIES {
        for form in forms
            .into_iter()
            .filter(|form| form.label().contains(&filter))
        {
            let c = plan.compare(&fixture, Form::Naive, form, concurrency).await;
            println!("| {} | {concurrency} | {c} |", form.label());
        }
    }
}

impl Workload for Fixture {
    type Op = Form;

    async fn run(&self, form: Form, index: usize) {
        let mut conn = self.conn.clone();
        let key = &self.keys[index];
        let s = &self.scripts;
        let allowed = match form {
            Form::Naive => {
                let key = format!("naive:{key}");
                let (n,): (i64,) = redis::pipe()
                    .cmd("INCR")
                    .arg(&key)
                    .cmd("PEXPIRE")
                    .arg(&key)
                    .arg(WINDOW_MS)
                    .ignore()
                    .query_async(&mut conn)
                    .await
                    .expect("naive pipeline");
                n as u64 <= LIMIT
            }
            Form::FixedPipeline | Form::FixedMulti => {
                let key = format!("fp:{key}");
                let mut pipe = redis::pipe();
                if matches!(form, Form::FixedMulti) {
                    pipe.atomic();
                }
                let (n, _, _ttl): (i64, i64, i64) = pipe
                    .cmd("INCRBY")
                    .arg(&key)
                    .arg(1)
                    .cmd("PEXPIRE")
                    .arg(&key)
                    .arg(WINDOW_MS)
                    .arg("NX")
                    .cmd("PTTL")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .expect("fixed-window pipeline");
                n as u64 <= LIMIT
            }
            Form::Chosen(Algorithm::FixedWindow) => {
                let key = format!("fs:{key}");
                let (_, n, _ttl): (Option<String>, i64, i64) = redis::pipe()
                    .cmd("SET")
                    .arg(&key)
                    .arg(0)
                    .arg("PX")
                    .arg(WINDOW_MS)
                    .arg("NX")
                    .cmd("INCRBY")
                    .arg(&key)
                    .arg(1)
                    .cmd("PTTL")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .expect("fixed-window SET NX pipeline");
                n as u64 <= LIMIT
            }
            Form::FixedLean => {
                let reply: Vec<i64> = invoke(&s.fixed_lean, &format!("fl:{key}"), &[1, WINDOW_MS])
                    .invoke_async(&mut conn)
                    .await
                    .expect("lean fixed window");
                reply[0] as u64 <= LIMIT
            }
            Form::Before(algorithm) => {
                let (script, args) = match algorithm {
                    Algorithm::FixedWindow => (&s.fixed_before, [LIMIT, WINDOW_MS, 1]),
                    Algorithm::SlidingWindow => (&s.sliding_before, [LIMIT, WINDOW_MS, 1]),
                    Algorithm::Gcra => (&s.gcra_before, [GCRA_INTERVAL_US, GCRA_CAPACITY_US, 1]),
                };
                let key = format!("b{}:{key}", algorithm.as_str());
                let reply: Vec<i64> = invoke(script, &key, &args)
                    .invoke_async(&mut conn)
                    .await
                    .expect("the script before issue 16");
                reply[0] == 1
            }
            Form::Chosen(algorithm) => {
                let (script, args) = match algorithm {
                    Algorithm::Gcra => (&s.gcra, [GCRA_INTERVAL_US, GCRA_CAPACITY_US, 1]),
                    _ => (&s.sliding, [LIMIT, WINDOW_MS, 1]),
                };
                let key = format!("c{}:{key}", algorithm.as_str());
                // Both answer an allowed check with an integer ≥ 0.
                let reply: redis::Value = invoke(script, &key, &args)
                    .invoke_async(&mut conn)
                    .await
                    .expect("the chosen script");
                matches!(reply, redis::Value::Int(n) if n >= 0)
            }
            Form::SlidingLean | Form::SlidingIndex | Form::SlidingText => {
                let (script, prefix) = match form {
                    Form::SlidingLean => (&s.sliding_lean, "sl"),
                    Form::SlidingIndex => (&s.sliding_index, "si"),
                    _ => (&s.sliding_text, "st"),
                };
                let reply: redis::Value =
                    invoke(script, &format!("{prefix}:{key}"), &[LIMIT, WINDOW_MS, 1])
                        .invoke_async(&mut conn)
                        .await
                        .expect("lean sliding window");
                matches!(reply, redis::Value::Int(_))
            }
            Form::GcraTtl | Form::GcraTimeInt | Form::GcraMicros | Form::GcraFraction => {
                let (script, prefix, interval) = match form {
                    Form::GcraTtl => (&s.gcra_ttl, "gt", GCRA_INTERVAL_US),
                    Form::GcraTimeInt => (&s.gcra_time_int, "gi", GCRA_INTERVAL_US),
                    Form::GcraMicros => (&s.gcra_micros, "gm", GCRA_INTERVAL_US),
                    _ => (&s.gcra, "gf", GCRA_INTERVAL_US + 500),
                };
                let reply: i64 = invoke(
                    script,
                    &format!("{prefix}:{key}"),
                    &[interval, GCRA_CAPACITY_US, 1],
                )
                .invoke_async(&mut conn)
                .await
                .expect("gcra variant");
                reply >= 0
            }
        };
        assert!(allowed, "{form:?}: the bench quota must never be reached");
    }
}

fn invoke<'a>(script: &'a redis::Script, key: &str, args: &[u64]) -> redis::ScriptInvocation<'a> {
    let mut invocation = script.prepare_invoke();
    invocation.key(key);
    for arg in args {
        invocation.arg(*arg);
    }
    invocation
}
