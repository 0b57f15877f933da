//! [`INCR_WITH_TTL`]: the script behind the default
//! [`KvStore::incr_by_with_ttl`](crate::KvStore::incr_by_with_ttl), for
//! stores that do not implement it themselves (the Redis and memory
//! backends do, without a script).

use std::sync::Arc;
use std::time::Duration;

use super::{KeyTtl, KvStore, Script, ScriptArgs, ScriptRun, ScriptValue, duration_millis};
use crate::error::{KvError, Result};

/// `INCRBY KEYS[1] ARGV[1]`, then `PEXPIRE KEYS[1] ARGV[2]` when the key has
/// no expiry, in one step; replies `{value, pttl}` (`pttl` exactly
/// `ARGV[2]` when the script set it). A failed increment changes nothing.
/// Runs on any Redis version (no `PEXPIRE … NX`).
pub(crate) static INCR_WITH_TTL: Script = Script::new(
    "incr with ttl",
    r"
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {n, ttl}
",
    incr_with_ttl,
);

fn incr_with_ttl(run: &mut ScriptRun<'_>) -> std::result::Result<ScriptValue, String> {
    let key = run.key(0)?;
    let (delta, ms) = (run.arg_int(0)?, run.arg_u64(1)?);
    let counted = match run.get(key)? {
        None => Ok(delta),
        Some(bytes) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| text.parse::<i64>().ok())
            .ok_or("ERR value is not an integer or out of range")
            .and_then(|n| {
                n.checked_add(delta)
                    .ok_or("ERR increment or decrement would overflow")
            }),
    };
    let n = counted.map_err(str::to_owned)?;
    run.set_keep_ttl(key, n.to_string().as_bytes())?;
    let mut ttl = run.pttl(key)?;
    if ttl == -1 {
        run.pexpire(key, ms)?;
        ttl = i64::try_from(ms).unwrap_or(i64::MAX);
    }
    Ok(ScriptValue::Array(vec![
        ScriptValue::Int(n),
        ScriptValue::Int(ttl),
    ]))
}

/// The default `incr_by_with_ttl`: [`INCR_WITH_TTL`] through the store's
/// own `run_script`.
pub(crate) async fn by_script<S: KvStore + ?Sized>(
    store: &S,
    key: &str,
    delta: i64,
    ttl: Duration,
) -> Result<(i64, KeyTtl)> {
    let name: Arc<str> = Arc::from(store.name());
    let ms = duration_millis(ttl, &name, key)?;
    let args = ScriptArgs::new().int(delta).uint(ms);
    let value = store.run_script(&INCR_WITH_TTL, &[key], &args).await?;
    let reply = value.as_array().and_then(|items| match items {
        [n, ttl] => Some((n.as_int()?, ttl.as_int()?)),
        _ => None,
    });
    let Some((n, pttl)) = reply else {
        return Err(KvError::Backend {
            store: name,
            op: "incr with ttl",
            key: Some(key.to_owned()),
            source: format!("unexpected reply {value:?}").into(),
        });
    };
    Ok((n, KeyTtl::from_pttl(pttl)))
}
