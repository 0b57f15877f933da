//! The one-time-code service's atomic steps — `issue`, `verify` (which
//! also claims), `commit`, `release` and `withdraw` — each a [`Script`]:
//! Lua on Redis, its Rust twin under the memory backend's lock.
//!
//! Keys (under the store's prefix; `<slot>`, `<subject>` and `<client>`
//! are keyed HMACs, so neither subjects, purposes nor clients appear in
//! key names, and `{tag}` is the first 16 characters of `<subject>`):
//!
//! | key | value | TTL |
//! |---|---|---|
//! | `otp:{tag}:code:<slot>` | `{failed attempts}:{hex HMAC of the code}`, plus `:{claim token}:{claim deadline ms}` while claimed | the code's lifetime |
//! | `otp:{tag}:cooldown:<slot>` | `1` | the resend cooldown |
//! | `otp:{tag}:daily:<subject>` | codes issued in the window | 24 h from the first |
//! | `otp:{tag}:failures:<subject>` | failed verifications in the window | the failure window from the first |
//! | `otp:{tag}:client-daily:<subject>:<client>` | codes issued to the client in the window | 24 h from the first |
//! | `otp:{tag}:client-failures:<subject>:<client>` | the client's failed verifications | the failure window from the first |
//!
//! Every key of one subject carries the subject's hash tag, so each
//! script's keys — all passed in `KEYS`, none built inside — share a slot
//! on a Redis Cluster.
//!
//! A claim lives inside the code's record (not at a key of its own), so a
//! re-issued code never inherits the claim of the code it replaces, and the
//! claim can never outlive the code. Its deadline is on the server's clock
//! (`TIME`), which every instance shares.
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
    /// Subject or client locked (`n` = ms left in the failure window).
    pub(crate) const LOCKED: i64 = 3;
    /// verify: the right code, claimed by another verifier (`n` = ms left
    /// on the claim).
    pub(crate) const IN_PROGRESS: i64 = 4;
    /// issue: the client's daily cap (`n` = ms left).
    pub(crate) const CLIENT_CAP: i64 = 5;
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
-- Gives one count back (a withdrawn code); the window stays.
local function unbump(key)
  local count = counter(key)
  if count <= 1 then
    redis.call('DEL', key)
  else
    redis.call('SET', key, int(count - 1), 'KEEPTTL')
  end
end
-- A code record: attempts, digest, and the claim's token and deadline
-- (nil when unclaimed).
local function parse(record)
  local attempts, digest = string.match(record, '^(%d+):(%x+)$')
  if attempts then
    return tonumber(attempts), digest, nil, nil
  end
  local a, d, token, deadline = string.match(record, '^(%d+):(%x+):(%x+):(%d+)$')
  if not a then
    error('malformed one-time code record')
  end
  return tonumber(a), d, token, tonumber(deadline)
end
"#
    };
}

/// `issue`: `KEYS` = code, cooldown, daily, failures, client daily, client
/// failures; `ARGV` = digest, ttl ms, cooldown ms (0: none), daily cap,
/// daily window ms, failure limit, failure window ms, client daily cap,
/// client failure limit. Refuses a locked subject or client, then a
/// cooldown, then the client's and the subject's daily caps; otherwise
/// counts the code (for both) and stores its digest, replacing any
/// earlier code of the slot (and its claim).
pub(crate) static ISSUE: Script = Script::new(
    "otp issue",
    concat!(
        lua_prelude!(),
        prelude!(),
        r#"
if counter(KEYS[4]) >= tonumber(ARGV[6]) then
  return {3, remaining(KEYS[4], ARGV[7])}
end
if counter(KEYS[6]) >= tonumber(ARGV[9]) then
  return {3, remaining(KEYS[6], ARGV[7])}
end
if ARGV[3] ~= '0' then
  local cooldown = redis.call('PTTL', KEYS[2])
  if cooldown > 0 then
    return {1, cooldown}
  end
end
local mine = counter(KEYS[5])
if mine >= tonumber(ARGV[8]) then
  return {5, remaining(KEYS[5], ARGV[5])}
end
local issued = counter(KEYS[3])
if issued >= tonumber(ARGV[4]) then
  return {2, remaining(KEYS[3], ARGV[5])}
end
bump(KEYS[3], issued, ARGV[5])
bump(KEYS[5], mine, ARGV[5])
redis.call('SET', KEYS[1], '0:' .. ARGV[1], 'PX', ARGV[2])
if ARGV[3] ~= '0' then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
end
return {0, tonumber(ARGV[2])}
"#
    ),
    issue_memory,
);

/// `verify` (and `claim`): `KEYS` = code, failures, client failures;
/// `ARGV` = digest, max attempts, failure limit, client failure limit,
/// failure window ms, claim token (empty: verify, consuming at once),
/// claim ttl ms. A locked subject or client is refused before anything is
/// compared. A match under a live claim is "in progress"; otherwise it
/// consumes the code, or (with a token) claims it. A mismatch counts
/// against the subject and the client (each locked at its limit) and, when
/// the code is not claimed, against the code (burned at max attempts or
/// when the subject locks). A claimed code is not burned: its holder has
/// proven to know it.
pub(crate) static VERIFY: Script = Script::new(
    "otp verify",
    concat!(
        lua_prelude!(),
        prelude!(),
        r#"
local limit = tonumber(ARGV[3])
local client_limit = tonumber(ARGV[4])
local failures = counter(KEYS[2])
if failures >= limit then
  return {3, remaining(KEYS[2], ARGV[5])}
end
local client_failures = counter(KEYS[3])
if client_failures >= client_limit then
  return {3, remaining(KEYS[3], ARGV[5])}
end
local record = redis.call('GET', KEYS[1])
if not record then
  return {2, 0}
end
local attempts, digest, token, deadline = parse(record)
local now = now_ms()
local claimed = token and deadline > now
if digest == ARGV[1] then
  if claimed then
    return {4, deadline - now}
  end
  if ARGV[6] == '' then
    redis.call('DEL', KEYS[1])
  else
    local until_ms = now + tonumber(ARGV[7])
    redis.call('SET', KEYS[1],
      int(attempts) .. ':' .. digest .. ':' .. ARGV[6] .. ':' .. int(until_ms), 'KEEPTTL')
  end
  return {0, 0}
end
bump(KEYS[2], failures, ARGV[5])
bump(KEYS[3], client_failures, ARGV[5])
local left = tonumber(ARGV[2]) - attempts
if not claimed then
  if failures + 1 >= limit then
    redis.call('DEL', KEYS[1])
    return {3, remaining(KEYS[2], ARGV[5])}
  end
  attempts = attempts + 1
  left = tonumber(ARGV[2]) - attempts
  if left <= 0 then
    redis.call('DEL', KEYS[1])
  else
    redis.call('SET', KEYS[1], int(attempts) .. ':' .. digest, 'KEEPTTL')
  end
end
if failures + 1 >= limit then
  return {3, remaining(KEYS[2], ARGV[5])}
end
if client_failures + 1 >= client_limit then
  return {3, remaining(KEYS[3], ARGV[5])}
end
if left < 0 then
  left = 0
end
return {1, left}
"#
    ),
    verify_memory,
);

/// `commit`: `KEYS` = code; `ARGV` = digest, claim token. Consumes the
/// code when the claim is still this one's — or when it lapsed and nobody
/// took the code since (the record is still this code, unclaimed). Any
/// other state (consumed, re-issued, claimed by another) is `{2, 0}`: the
/// hand-over lost the code.
pub(crate) static COMMIT: Script = Script::new(
    "otp commit",
    concat!(
        lua_prelude!(),
        prelude!(),
        r#"
local record = redis.call('GET', KEYS[1])
if not record then
  return {2, 0}
end
local attempts, digest, token, deadline = parse(record)
if digest ~= ARGV[1] then
  return {2, 0}
end
if token == ARGV[2] or not token or deadline <= now_ms() then
  redis.call('DEL', KEYS[1])
  return {0, 0}
end
return {2, 0}
"#
    ),
    commit_memory,
);

/// `release`: `KEYS` = code; `ARGV` = claim token. Drops this claim from
/// the record (the code verifies again, its attempts as they were); `{2,
/// 0}` when the claim is no longer there.
pub(crate) static RELEASE: Script = Script::new(
    "otp release",
    concat!(
        lua_prelude!(),
        prelude!(),
        r#"
local record = redis.call('GET', KEYS[1])
if not record then
  return {2, 0}
end
local attempts, digest, token = parse(record)
if token ~= ARGV[1] then
  return {2, 0}
end
redis.call('SET', KEYS[1], int(attempts) .. ':' .. digest, 'KEEPTTL')
return {0, 0}
"#
    ),
    release_memory,
);

/// `withdraw`: `KEYS` = code, cooldown, daily, client daily; `ARGV` =
/// digest. Only when the record is exactly this code, never tried nor
/// claimed: removes it and its cooldown and gives back its count to both
/// daily caps. Anything else — a newer code, a tried or claimed one, none —
/// is left alone (`{2, 0}`).
pub(crate) static WITHDRAW: Script = Script::new(
    "otp withdraw",
    concat!(
        lua_prelude!(),
        prelude!(),
        r#"
if redis.call('GET', KEYS[1]) ~= '0:' .. ARGV[1] then
  return {2, 0}
end
redis.call('DEL', KEYS[1], KEYS[2])
unbump(KEYS[3])
unbump(KEYS[4])
return {0, 0}
"#
    ),
    withdraw_memory,
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

fn unbump(run: &mut ScriptRun<'_>, key: &str) -> Result<(), String> {
    match counter(run, key)? {
        0 | 1 => run.del(key).map(drop),
        count => run.set_keep_ttl(key, (count - 1).to_string().as_bytes()),
    }
}

/// A parsed code record.
struct Record {
    attempts: u64,
    digest: String,
    /// The claim's token and deadline (server ms), when claimed.
    claim: Option<(String, u64)>,
}

impl Record {
    fn parse(bytes: &[u8]) -> Result<Self, String> {
        let malformed = || "malformed one-time code record".to_owned();
        let text = std::str::from_utf8(bytes).map_err(|_| malformed())?;
        let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
        let parts: Vec<&str> = text.split(':').collect();
        let (attempts, digest, claim) = match parts.as_slice() {
            [attempts, digest] => (attempts, digest, None),
            [attempts, digest, token, deadline] if hex(token) => (
                attempts,
                digest,
                Some((
                    (*token).to_owned(),
                    deadline.parse().map_err(|_| malformed())?,
                )),
            ),
            _ => return Err(malformed()),
        };
        if !hex(digest) {
            return Err(malformed());
        }
        Ok(Self {
            attempts: attempts.parse().map_err(|_| malformed())?,
            digest: (*digest).to_owned(),
            claim,
        })
    }

    fn matches(&self, digest: &[u8]) -> bool {
        self.digest.as_bytes().ct_eq(digest).into()
    }
}

fn issue_memory(run: &mut ScriptRun<'_>) -> Reply {
    let (code, cooldown, daily, failures) = (run.key(0)?, run.key(1)?, run.key(2)?, run.key(3)?);
    let (client_daily, client_failures) = (run.key(4)?, run.key(5)?);
    let digest = run.arg_bytes(0)?;
    let (ttl, cooldown_ms, cap) = (run.arg_u64(1)?, run.arg_u64(2)?, run.arg_u64(3)?);
    let (daily_window, limit, failure_window) = (run.arg_u64(4)?, run.arg_u64(5)?, run.arg_u64(6)?);
    let (client_cap, client_limit) = (run.arg_u64(7)?, run.arg_u64(8)?);
    if counter(run, failures)? >= limit {
        let left = remaining(run, failures, failure_window)?;
        return reply(status::LOCKED, left);
    }
    if counter(run, client_failures)? >= client_limit {
        let left = remaining(run, client_failures, failure_window)?;
        return reply(status::LOCKED, left);
    }
    if cooldown_ms != 0 {
        let left = run.pttl(cooldown)?;
        if left > 0 {
            return reply(status::RETRY_OR_INVALID, left);
        }
    }
    let mine = counter(run, client_daily)?;
    if mine >= client_cap {
        let left = remaining(run, client_daily, daily_window)?;
        return reply(status::CLIENT_CAP, left);
    }
    let issued = counter(run, daily)?;
    if issued >= cap {
        let left = remaining(run, daily, daily_window)?;
        return reply(status::CAP_OR_UNKNOWN, left);
    }
    bump(run, daily, issued, daily_window)?;
    bump(run, client_daily, mine, daily_window)?;
    run.set(code, &[b"0:", digest].concat(), Some(ttl))?;
    if cooldown_ms != 0 {
        run.set(cooldown, b"1", Some(cooldown_ms))?;
    }
    reply(status::OK, i64::try_from(ttl).unwrap_or(i64::MAX))
}

fn verify_memory(run: &mut ScriptRun<'_>) -> Reply {
    let (code, failures_key, client_key) = (run.key(0)?, run.key(1)?, run.key(2)?);
    let digest = run.arg_bytes(0)?;
    let (max_attempts, limit, client_limit) = (run.arg_u64(1)?, run.arg_u64(2)?, run.arg_u64(3)?);
    let window = run.arg_u64(4)?;
    let (token, claim_ttl) = (run.arg_str(5)?, run.arg_u64(6)?);
    let failures = counter(run, failures_key)?;
    if failures >= limit {
        let left = remaining(run, failures_key, window)?;
        return reply(status::LOCKED, left);
    }
    let client_failures = counter(run, client_key)?;
    if client_failures >= client_limit {
        let left = remaining(run, client_key, window)?;
        return reply(status::LOCKED, left);
    }
    let Some(bytes) = run.get(code)? else {
        return reply(status::CAP_OR_UNKNOWN, 0);
    };
    let record = Record::parse(&bytes)?;
    let now = run.now_ms();
    let claim_left = match &record.claim {
        Some((_, deadline)) if *deadline > now => Some(deadline - now),
        _ => None,
    };
    if record.matches(digest) {
        if let Some(left) = claim_left {
            return reply(status::IN_PROGRESS, i64::try_from(left).unwrap_or(i64::MAX));
        }
        if token.is_empty() {
            run.del(code)?;
        } else {
            let until = now.saturating_add(claim_ttl);
            let value = format!("{}:{}:{token}:{until}", record.attempts, record.digest);
            run.set_keep_ttl(code, value.as_bytes())?;
        }
        return reply(status::OK, 0);
    }
    bump(run, failures_key, failures, window)?;
    bump(run, client_key, client_failures, window)?;
    let mut left = max_attempts.saturating_sub(record.attempts);
    if claim_left.is_none() {
        if failures + 1 >= limit {
            run.del(code)?;
            let left = remaining(run, failures_key, window)?;
            return reply(status::LOCKED, left);
        }
        let attempts = record.attempts + 1;
        left = max_attempts.saturating_sub(attempts);
        if left == 0 {
            run.del(code)?;
        } else {
            run.set_keep_ttl(code, format!("{attempts}:{}", record.digest).as_bytes())?;
        }
    }
    if failures + 1 >= limit {
        let left = remaining(run, failures_key, window)?;
        return reply(status::LOCKED, left);
    }
    if client_failures + 1 >= client_limit {
        let left = remaining(run, client_key, window)?;
        return reply(status::LOCKED, left);
    }
    reply(
        status::RETRY_OR_INVALID,
        i64::try_from(left).unwrap_or(i64::MAX),
    )
}

fn commit_memory(run: &mut ScriptRun<'_>) -> Reply {
    let code = run.key(0)?;
    let (digest, token) = (run.arg_bytes(0)?, run.arg_str(1)?);
    let Some(bytes) = run.get(code)? else {
        return reply(status::CAP_OR_UNKNOWN, 0);
    };
    let record = Record::parse(&bytes)?;
    if !record.matches(digest) {
        return reply(status::CAP_OR_UNKNOWN, 0);
    }
    let now = run.now_ms();
    let ours = match &record.claim {
        None => true,
        Some((held, deadline)) => held == token || *deadline <= now,
    };
    if ours {
        run.del(code)?;
        return reply(status::OK, 0);
    }
    reply(status::CAP_OR_UNKNOWN, 0)
}

fn release_memory(run: &mut ScriptRun<'_>) -> Reply {
    let code = run.key(0)?;
    let token = run.arg_str(0)?;
    let Some(bytes) = run.get(code)? else {
        return reply(status::CAP_OR_UNKNOWN, 0);
    };
    let record = Record::parse(&bytes)?;
    match &record.claim {
        Some((held, _)) if held == token => {
            let value = format!("{}:{}", record.attempts, record.digest);
            run.set_keep_ttl(code, value.as_bytes())?;
            reply(status::OK, 0)
        }
        _ => reply(status::CAP_OR_UNKNOWN, 0),
    }
}

fn withdraw_memory(run: &mut ScriptRun<'_>) -> Reply {
    let (code, cooldown, daily, client_daily) =
        (run.key(0)?, run.key(1)?, run.key(2)?, run.key(3)?);
    let digest = run.arg_bytes(0)?;
    let unused = [b"0:", digest].concat();
    if run.get(code)?.as_deref() != Some(unused.as_slice()) {
        return reply(status::CAP_OR_UNKNOWN, 0);
    }
    run.del(code)?;
    run.del(cooldown)?;
    unbump(run, daily)?;
    unbump(run, client_daily)?;
    reply(status::OK, 0)
}
