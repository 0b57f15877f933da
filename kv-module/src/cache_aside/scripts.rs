//! The cache's [`Script`]s: the write-back of a load (only if the entry is
//! still what the loader saw), the end of a write-through update (only if
//! the entry still holds the writer's marker), the invalidation after a
//! write (with the lease), and the release of a lease (only by its
//! holder). Each is one atomic step: Lua on Redis, the Rust
//! twin under the memory backend's lock.
//!
//! Every key a script touches comes in `KEYS`: the entry
//! `{key_prefix}:{<key>}` and, when the script touches it, the lease
//! `{key_prefix}~lease:{<key>}`. Both carry the key as their hash tag, so
//! they share a slot on a Redis Cluster whatever the key is (see
//! [`CacheSettings::entry_key`](super::CacheSettings::entry_key)).

use crate::store::{Script, ScriptRun, ScriptValue};

/// Writes a loaded entry back if the entry is unchanged since the loader
/// looked at it, and releases the loader's lease in the same step.
///
/// `KEYS`: entry, [lease]. `ARGV`: `"0"` (expected absent) or `"1"`
/// (expected the bytes `ARGV[2]`), expected bytes, new entry, PX
/// milliseconds, [lease token]. Returns 1 when written, 0 when not.
pub(crate) static FILL: Script = Script::new(
    "cache fill",
    r#"
local current = redis.call('GET', KEYS[1])
local same
if ARGV[1] == '0' then same = (current == false) else same = (current == ARGV[2]) end
if same then redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4]) end
if #KEYS > 1 and redis.call('GET', KEYS[2]) == ARGV[5] then redis.call('DEL', KEYS[2]) end
if same then return 1 end
return 0
"#,
    fill,
);

fn fill(run: &mut ScriptRun<'_>) -> Result<ScriptValue, String> {
    let entry = run.key(0)?;
    let current = run.get(entry)?;
    let same = if run.arg_bytes(0)? == b"0" {
        current.is_none()
    } else {
        current.as_deref() == Some(run.arg_bytes(1)?)
    };
    if same {
        run.set(entry, run.arg_bytes(2)?, Some(run.arg_u64(3)?))?;
    }
    if run.keys().len() > 1 {
        let (lease, token) = (run.key(1)?, run.arg_bytes(4)?);
        release_if_held(run, lease, token)?;
    }
    Ok(ScriptValue::Int(i64::from(same)))
}

/// Ends a write-through update: replaces the writer's marker with the new
/// value, or — when anything else replaced the marker meanwhile (another
/// writer, an invalidation) — writes a tombstone instead, since this
/// writer cannot know whose value is newer. Either way the key's lease,
/// if given, is deleted: a load in flight began before this write, so its
/// write-back will be refused, and the processes waiting for it need not.
///
/// `KEYS`: entry, [lease]. `ARGV`: marker, value entry, value PX,
/// tombstone, tombstone PX. Returns 1 when the value was written, 0 for
/// the tombstone.
pub(crate) static FINISH_WRITE: Script = Script::new(
    "cache finish write",
    r#"
if #KEYS > 1 then redis.call('DEL', KEYS[2]) end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
return 0
"#,
    finish_write,
);

fn finish_write(run: &mut ScriptRun<'_>) -> Result<ScriptValue, String> {
    let entry = run.key(0)?;
    let (marker, value, value_px) = (run.arg_bytes(0)?, run.arg_bytes(1)?, run.arg_u64(2)?);
    let (tombstone, tombstone_px) = (run.arg_bytes(3)?, run.arg_u64(4)?);
    if run.keys().len() > 1 {
        run.del(run.key(1)?)?;
    }
    if run.get(entry)?.as_deref() == Some(marker) {
        run.set(entry, value, Some(value_px))?;
        return Ok(ScriptValue::Int(1));
    }
    run.set(entry, tombstone, Some(tombstone_px))?;
    Ok(ScriptValue::Int(0))
}

/// Invalidates an entry after a write: a tombstone replaces whatever it
/// holds, and the key's lease is deleted (as for [`FINISH_WRITE`]).
///
/// `KEYS`: entry, lease. `ARGV`: tombstone, tombstone PX. Returns 1.
pub(crate) static INVALIDATE: Script = Script::new(
    "cache invalidate",
    r#"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
"#,
    invalidate,
);

fn invalidate(run: &mut ScriptRun<'_>) -> Result<ScriptValue, String> {
    let (entry, lease) = (run.key(0)?, run.key(1)?);
    let (tombstone, px) = (run.arg_bytes(0)?, run.arg_u64(1)?);
    run.set(entry, tombstone, Some(px))?;
    run.del(lease)?;
    Ok(ScriptValue::Int(1))
}

/// Deletes a lease if it still holds the caller's token (a lease that
/// expired and was taken by another process is left alone).
///
/// `KEYS`: lease. `ARGV`: token. Returns 1 when released.
pub(crate) static RELEASE_LEASE: Script = Script::new(
    "cache release lease",
    r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"#,
    release_lease,
);

fn release_lease(run: &mut ScriptRun<'_>) -> Result<ScriptValue, String> {
    let (lease, token) = (run.key(0)?, run.arg_bytes(0)?);
    let released = release_if_held(run, lease, token)?;
    Ok(ScriptValue::Int(i64::from(released)))
}

fn release_if_held(run: &mut ScriptRun<'_>, lease: &str, token: &[u8]) -> Result<bool, String> {
    if run.get(lease)?.as_deref() == Some(token) {
        return run.del(lease);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::MemoryStore;
    use crate::store::{KeyTtl, KvStore, Ttl};

    /// An entry and its lease, as the cache names them (one hash tag).
    const E: &str = "user:{1}";
    const L: &str = "user~lease:{1}";

    fn args(items: &[&str]) -> Vec<Vec<u8>> {
        items.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[tokio::test]
    async fn fill_compares_and_releases() {
        let store = MemoryStore::new("t", "p");
        // Expected absent, and absent: written.
        let reply = store
            .run_script(&FILL, &[E], &args(&["0", "", "v1", "60000"]))
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(1));
        assert_eq!(
            store.get_bytes(E).await.unwrap().as_deref(),
            Some(&b"v1"[..])
        );
        assert!(matches!(store.ttl(E).await.unwrap(), KeyTtl::ExpiresIn(_)));
        // Expected absent, but present: not written.
        let reply = store
            .run_script(&FILL, &[E], &args(&["0", "", "v2", "60000"]))
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(0));
        // Expected these bytes: written; the lease is released when it
        // holds the token, and kept when it holds another.
        store.set_bytes(L, b"tok", Ttl::secs(5)).await.unwrap();
        let reply = store
            .run_script(&FILL, &[E, L], &args(&["1", "v1", "v3", "60000", "other"]))
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(1));
        assert!(store.exists(L).await.unwrap());
        let reply = store
            .run_script(&FILL, &[E, L], &args(&["1", "v1", "v4", "60000", "tok"]))
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(0), "the entry is v3 now");
        assert!(
            !store.exists(L).await.unwrap(),
            "released even without a write"
        );
        assert_eq!(
            store.get_bytes(E).await.unwrap().as_deref(),
            Some(&b"v3"[..])
        );
    }

    #[tokio::test]
    async fn finish_write_needs_the_marker() {
        let store = MemoryStore::new("t", "p");
        store.set_bytes(E, b"mark", Ttl::secs(5)).await.unwrap();
        let reply = store
            .run_script(
                &FINISH_WRITE,
                &[E],
                &args(&["mark", "value", "60000", "tomb", "1000"]),
            )
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(1));
        assert_eq!(
            store.get_bytes(E).await.unwrap().as_deref(),
            Some(&b"value"[..])
        );
        let reply = store
            .run_script(
                &FINISH_WRITE,
                &[E],
                &args(&["mark", "value2", "60000", "tomb", "1000"]),
            )
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(0));
        assert_eq!(
            store.get_bytes(E).await.unwrap().as_deref(),
            Some(&b"tomb"[..])
        );
        let ttl = store.ttl(E).await.unwrap().remaining().unwrap();
        assert!(ttl <= Duration::from_secs(1));
        // With a lease key: deleted whatever it holds.
        store.set_bytes(L, b"someone", Ttl::secs(5)).await.unwrap();
        store
            .run_script(
                &FINISH_WRITE,
                &[E, L],
                &args(&["mark", "value", "60000", "tomb", "1000"]),
            )
            .await
            .unwrap();
        assert!(!store.exists(L).await.unwrap());
    }

    #[tokio::test]
    async fn invalidate_writes_a_tombstone_and_drops_the_lease() {
        let store = MemoryStore::new("t", "p");
        store.set_bytes(E, b"value", Ttl::Never).await.unwrap();
        store.set_bytes(L, b"someone", Ttl::secs(5)).await.unwrap();
        let reply = store
            .run_script(&INVALIDATE, &[E, L], &args(&["tomb", "1000"]))
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(1));
        assert_eq!(
            store.get_bytes(E).await.unwrap().as_deref(),
            Some(&b"tomb"[..])
        );
        let ttl = store.ttl(E).await.unwrap().remaining().unwrap();
        assert!(ttl <= Duration::from_secs(1));
        assert!(!store.exists(L).await.unwrap());
    }

    #[tokio::test]
    async fn release_only_by_the_holder_and_bad_arguments_fail() {
        let store = MemoryStore::new("t", "p");
        store.set_bytes(L, b"tok", Ttl::secs(5)).await.unwrap();
        let no = store
            .run_script(&RELEASE_LEASE, &[L], &args(&["nope"]))
            .await
            .unwrap();
        assert_eq!(no, ScriptValue::Int(0));
        let yes = store
            .run_script(&RELEASE_LEASE, &[L], &args(&["tok"]))
            .await
            .unwrap();
        assert_eq!(yes, ScriptValue::Int(1));
        assert!(store.run_script(&RELEASE_LEASE, &[L], &[]).await.is_err());
        assert!(
            store
                .run_script(&FILL, &[E], &args(&["0", "", "v", "0"]))
                .await
                .is_err()
        );
    }
}
