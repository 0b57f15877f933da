//! The cache's [`Script`]s: the write-back of a load (only if the entry is
//! still what the loader saw), the end of a write-through update (only if
//! the entry still holds the writer's marker), the invalidation after a
//! write (with the lease), and the release of a lease (only by its
//! holder). Each is one atomic step: Lua on Redis, the Rust
//! twin under the memory backend's lock.

use crate::store::{Script, ScriptOps, ScriptValue};

/// Writes a loaded entry back if the entry is unchanged since the loader
/// looked at it, and releases the loader's lease in the same step.
///
/// `KEYS`: entry, [lease]. `ARGV`: `"0"` (expected absent) or `"1"`
/// (expected the bytes `ARGV[2]`), expected bytes, new entry, PX
/// milliseconds, [lease token]. Returns 1 when written, 0 when not.
pub(crate) static FILL: Script = Script::new(
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

fn fill(ops: &mut dyn ScriptOps, keys: &[String], args: &[Vec<u8>]) -> Result<ScriptValue, String> {
    let entry = key(keys, 0)?;
    let current = ops.get(entry);
    let same = if arg(args, 0)? == b"0" {
        current.is_none()
    } else {
        current.as_deref() == Some(arg(args, 1)?)
    };
    if same {
        ops.set(entry, arg(args, 2)?, Some(millis(arg(args, 3)?)?));
    }
    if let Some(lease) = keys.get(1) {
        release_if_held(ops, lease, arg(args, 4)?);
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

fn finish_write(
    ops: &mut dyn ScriptOps,
    keys: &[String],
    args: &[Vec<u8>],
) -> Result<ScriptValue, String> {
    let entry = key(keys, 0)?;
    let (marker, value, value_px) = (arg(args, 0)?, arg(args, 1)?, millis(arg(args, 2)?)?);
    let (tombstone, tombstone_px) = (arg(args, 3)?, millis(arg(args, 4)?)?);
    if let Some(lease) = keys.get(1) {
        ops.del(lease);
    }
    if ops.get(entry).as_deref() == Some(marker) {
        ops.set(entry, value, Some(value_px));
        return Ok(ScriptValue::Int(1));
    }
    ops.set(entry, tombstone, Some(tombstone_px));
    Ok(ScriptValue::Int(0))
}

/// Invalidates an entry after a write: a tombstone replaces whatever it
/// holds, and the key's lease is deleted (as for [`FINISH_WRITE`]).
///
/// `KEYS`: entry, lease. `ARGV`: tombstone, tombstone PX. Returns 1.
pub(crate) static INVALIDATE: Script = Script::new(
    r#"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
"#,
    invalidate,
);

fn invalidate(
    ops: &mut dyn ScriptOps,
    keys: &[String],
    args: &[Vec<u8>],
) -> Result<ScriptValue, String> {
    let (entry, lease) = (key(keys, 0)?, key(keys, 1)?);
    let (tombstone, px) = (arg(args, 0)?, millis(arg(args, 1)?)?);
    ops.set(entry, tombstone, Some(px));
    ops.del(lease);
    Ok(ScriptValue::Int(1))
}

/// Deletes a lease if it still holds the caller's token (a lease that
/// expired and was taken by another process is left alone).
///
/// `KEYS`: lease. `ARGV`: token. Returns 1 when released.
pub(crate) static RELEASE_LEASE: Script = Script::new(
    r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"#,
    release_lease,
);

fn release_lease(
    ops: &mut dyn ScriptOps,
    keys: &[String],
    args: &[Vec<u8>],
) -> Result<ScriptValue, String> {
    let released = release_if_held(ops, key(keys, 0)?, arg(args, 0)?);
    Ok(ScriptValue::Int(i64::from(released)))
}

fn release_if_held(ops: &mut dyn ScriptOps, lease: &str, token: &[u8]) -> bool {
    if ops.get(lease).as_deref() == Some(token) {
        return ops.del(lease);
    }
    false
}

fn key(keys: &[String], index: usize) -> Result<&str, String> {
    keys.get(index)
        .map(String::as_str)
        .ok_or_else(|| format!("cache script: missing KEYS[{}]", index + 1))
}

fn arg(args: &[Vec<u8>], index: usize) -> Result<&[u8], String> {
    args.get(index)
        .map(Vec::as_slice)
        .ok_or_else(|| format!("cache script: missing ARGV[{}]", index + 1))
}

/// A PX argument: decimal milliseconds, at least 1 (as Redis requires).
fn millis(arg: &[u8]) -> Result<u64, String> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .ok_or_else(|| "ERR invalid expire time in 'set' command".to_owned())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::MemoryStore;
    use crate::store::{KeyTtl, KvStore, Ttl};

    fn args(items: &[&str]) -> Vec<Vec<u8>> {
        items.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[tokio::test]
    async fn fill_compares_and_releases() {
        let store = MemoryStore::new("t", "p");
        // Expected absent, and absent: written.
        let reply = store
            .run_script(&FILL, &["e"], &args(&["0", "", "v1", "60000"]))
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(1));
        assert_eq!(
            store.get_bytes("e").await.unwrap().as_deref(),
            Some(&b"v1"[..])
        );
        assert!(matches!(
            store.ttl("e").await.unwrap(),
            KeyTtl::ExpiresIn(_)
        ));
        // Expected absent, but present: not written.
        let reply = store
            .run_script(&FILL, &["e"], &args(&["0", "", "v2", "60000"]))
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(0));
        // Expected these bytes: written; the lease is released when it
        // holds the token, and kept when it holds another.
        store.set_bytes("l", b"tok", Ttl::secs(5)).await.unwrap();
        let reply = store
            .run_script(
                &FILL,
                &["e", "l"],
                &args(&["1", "v1", "v3", "60000", "other"]),
            )
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(1));
        assert!(store.exists("l").await.unwrap());
        let reply = store
            .run_script(
                &FILL,
                &["e", "l"],
                &args(&["1", "v1", "v4", "60000", "tok"]),
            )
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(0), "the entry is v3 now");
        assert!(
            !store.exists("l").await.unwrap(),
            "released even without a write"
        );
        assert_eq!(
            store.get_bytes("e").await.unwrap().as_deref(),
            Some(&b"v3"[..])
        );
    }

    #[tokio::test]
    async fn finish_write_needs_the_marker() {
        let store = MemoryStore::new("t", "p");
        store.set_bytes("e", b"mark", Ttl::secs(5)).await.unwrap();
        let reply = store
            .run_script(
                &FINISH_WRITE,
                &["e"],
                &args(&["mark", "value", "60000", "tomb", "1000"]),
            )
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(1));
        assert_eq!(
            store.get_bytes("e").await.unwrap().as_deref(),
            Some(&b"value"[..])
        );
        let reply = store
            .run_script(
                &FINISH_WRITE,
                &["e"],
                &args(&["mark", "value2", "60000", "tomb", "1000"]),
            )
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(0));
        assert_eq!(
            store.get_bytes("e").await.unwrap().as_deref(),
            Some(&b"tomb"[..])
        );
        let ttl = store.ttl("e").await.unwrap().remaining().unwrap();
        assert!(ttl <= Duration::from_secs(1));
        // With a lease key: deleted whatever it holds.
        store
            .set_bytes("l", b"someone", Ttl::secs(5))
            .await
            .unwrap();
        store
            .run_script(
                &FINISH_WRITE,
                &["e", "l"],
                &args(&["mark", "value", "60000", "tomb", "1000"]),
            )
            .await
            .unwrap();
        assert!(!store.exists("l").await.unwrap());
    }

    #[tokio::test]
    async fn invalidate_writes_a_tombstone_and_drops_the_lease() {
        let store = MemoryStore::new("t", "p");
        store.set_bytes("e", b"value", Ttl::Never).await.unwrap();
        store
            .set_bytes("l", b"someone", Ttl::secs(5))
            .await
            .unwrap();
        let reply = store
            .run_script(&INVALIDATE, &["e", "l"], &args(&["tomb", "1000"]))
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(1));
        assert_eq!(
            store.get_bytes("e").await.unwrap().as_deref(),
            Some(&b"tomb"[..])
        );
        let ttl = store.ttl("e").await.unwrap().remaining().unwrap();
        assert!(ttl <= Duration::from_secs(1));
        assert!(!store.exists("l").await.unwrap());
    }

    #[tokio::test]
    async fn release_only_by_the_holder_and_bad_arguments_fail() {
        let store = MemoryStore::new("t", "p");
        store.set_bytes("l", b"tok", Ttl::secs(5)).await.unwrap();
        let no = store
            .run_script(&RELEASE_LEASE, &["l"], &args(&["nope"]))
            .await
            .unwrap();
        assert_eq!(no, ScriptValue::Int(0));
        let yes = store
            .run_script(&RELEASE_LEASE, &["l"], &args(&["tok"]))
            .await
            .unwrap();
        assert_eq!(yes, ScriptValue::Int(1));
        assert!(store.run_script(&RELEASE_LEASE, &["l"], &[]).await.is_err());
        assert!(
            store
                .run_script(&FILL, &["e"], &args(&["0", "", "v", "0"]))
                .await
                .is_err()
        );
    }
}
