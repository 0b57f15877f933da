//! The cache's [`Script`]s: the look before a load (which takes a load
//! ticket), the write-back of a load (only if its ticket is still there),
//! the write marker before a repository write, the end of a write-through
//! update (only if the marker is still the writer's), and the release of
//! a lease (only by its holder). Each is one atomic step: Lua on Redis,
//! the Rust twin under the memory backend's lock. Invalidation needs no
//! script: it deletes the record's keys in one `UNLINK`.
//!
//! Every key a script touches comes in `KEYS`: the entry
//! `{key_prefix}:{<key>}`, the negative key `{key_prefix}~nf:{<key>}`, the
//! mark `{key_prefix}~mark:{<key>}` and, when the script touches it, the
//! lease `{key_prefix}~lease:{<key>}`. All carry the key as their hash
//! tag, so they share a slot on a Redis Cluster whatever the key is (see
//! [`CacheKeys::entry_key`](super::CacheKeys::entry_key)).
//!
//! # A full Redis
//!
//! A Redis at `maxmemory` under `noeviction` refuses every command that
//! may grow memory (`SET`), and still runs `GET`, `DEL` and scripts. So
//! each script makes its `SET` its *first* write, through `redis.pcall`
//! (Redis refuses a script's first write when it started out of memory,
//! and lets later ones through, not to stop a script half-way), and says
//! in its reply when it was refused; what it must do anyway is a `DEL`.
//! Correctness never needs a `SET` to succeed: a refused ticket means no
//! write-back, a refused marker is replaced by deleting the entry and the
//! mark (which ends every ticket of the loads in flight).

use crate::store::{Script, ScriptRun, ScriptValue};

/// Reads a record's keys before a load and, when there is neither a
/// cached "not found" nor a mark, records a load ticket in the mark.
///
/// `KEYS`: entry, negative, mark. `ARGV`: ticket, ticket PX. Returns
/// `{entry or nil, 1 if the negative key exists else 0, mark or nil}`:
/// the mark is the new ticket when it was recorded, nil when the store
/// refused it (out of memory).
pub(crate) static OBSERVE: Script = Script::new(
    "cache observe",
    r#"
local entry = redis.call('GET', KEYS[1])
local negative = redis.call('EXISTS', KEYS[2])
local mark = redis.call('GET', KEYS[3])
if negative == 0 and not mark then
  local set = redis.pcall('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
  if not (type(set) == 'table' and set.err) then mark = ARGV[1] end
end
return {entry, negative, mark}
"#,
    observe,
);

fn observe(run: &mut ScriptRun<'_>) -> Result<ScriptValue, String> {
    let (entry_key, negative_key, mark_key) = (run.key(0)?, run.key(1)?, run.key(2)?);
    let entry = run.get(entry_key)?;
    let negative = run.get(negative_key)?.is_some();
    let mut mark = run.get(mark_key)?;
    if !negative && mark.is_none() {
        let ticket = run.arg_bytes(0)?;
        run.set(mark_key, ticket, Some(run.arg_u64(1)?))?;
        mark = Some(ticket.to_vec());
    }
    let bytes = |b: Option<Vec<u8>>| b.map_or(ScriptValue::Nil, ScriptValue::Bytes);
    Ok(ScriptValue::Array(vec![
        bytes(entry),
        ScriptValue::Int(i64::from(negative)),
        bytes(mark),
    ]))
}

/// Writes a loaded value (to the entry) or "not found" (to the negative
/// key) if the mark still holds the loader's ticket, there is no cached
/// "not found", and the entry is as the loader saw it; the ticket is then
/// used up. Releases the loader's lease in the same step.
///
/// `KEYS`: entry, negative, mark, \[lease\]. `ARGV`: `"0"` (entry expected
/// absent) or `"1"` (expected to hold `ARGV[2]`), expected entry, ticket,
/// `"v"` (a value) or `"n"` ("not found"), what to write, PX, [lease
/// token]. Returns 1 when written, 0 when the record changed, 2 when the
/// store refused the write (out of memory).
pub(crate) static FILL: Script = Script::new(
    "cache fill",
    r#"
local result = 0
if redis.call('GET', KEYS[3]) == ARGV[3] and redis.call('EXISTS', KEYS[2]) == 0 then
  local entry = redis.call('GET', KEYS[1])
  local same
  if ARGV[1] == '0' then same = (entry == false) else same = (entry == ARGV[2]) end
  if same then
    local target = KEYS[1]
    if ARGV[4] == 'n' then target = KEYS[2] end
    local set = redis.pcall('SET', target, ARGV[5], 'PX', ARGV[6])
    if type(set) == 'table' and set.err then
      result = 2
    else
      result = 1
      if ARGV[4] == 'n' then redis.call('DEL', KEYS[1]) end
      redis.call('DEL', KEYS[3])
    end
  end
end
if #KEYS > 3 and redis.call('GET', KEYS[4]) == ARGV[7] then redis.call('DEL', KEYS[4]) end
return result
"#,
    fill,
);

fn fill(run: &mut ScriptRun<'_>) -> Result<ScriptValue, String> {
    let (entry_key, negative_key, mark_key) = (run.key(0)?, run.key(1)?, run.key(2)?);
    let mut written = false;
    if run.get(mark_key)?.as_deref() == Some(run.arg_bytes(2)?) && run.get(negative_key)?.is_none()
    {
        let entry = run.get(entry_key)?;
        let same = if run.arg_bytes(0)? == b"0" {
            entry.is_none()
        } else {
            entry.as_deref() == Some(run.arg_bytes(1)?)
        };
        if same {
            let negative = run.arg_bytes(3)? == b"n";
            let target = if negative { negative_key } else { entry_key };
            run.set(target, run.arg_bytes(4)?, Some(run.arg_u64(5)?))?;
            if negative {
                run.del(entry_key)?;
            }
            run.del(mark_key)?;
            written = true;
        }
    }
    if run.keys().len() > 3 {
        let (lease, token) = (run.key(3)?, run.arg_bytes(6)?);
        release_if_held(run, lease, token)?;
    }
    Ok(ScriptValue::Int(i64::from(written)))
}

/// Starts a repository write: the writer's marker goes into the mark
/// (replacing any load ticket, so no load in flight writes back, and
/// keeping new loads from writing back until the write ends), and the
/// entry and the negative key are deleted (no reader keeps the old value
/// meanwhile). When the store refuses the marker (out of memory), the mark
/// is deleted instead: the tickets end all the same.
///
/// `KEYS`: entry, negative, mark. `ARGV`: marker, marker PX. Returns 1
/// when the marker was written, 0 when it was refused.
pub(crate) static MARK: Script = Script::new(
    "cache mark",
    r#"
local set = redis.pcall('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[1], KEYS[2])
if type(set) == 'table' and set.err then
  redis.call('DEL', KEYS[3])
  return 0
end
return 1
"#,
    mark,
);

fn mark(run: &mut ScriptRun<'_>) -> Result<ScriptValue, String> {
    let (entry_key, negative_key, mark_key) = (run.key(0)?, run.key(1)?, run.key(2)?);
    run.set(mark_key, run.arg_bytes(0)?, Some(run.arg_u64(1)?))?;
    run.del(entry_key)?;
    run.del(negative_key)?;
    Ok(ScriptValue::Int(1))
}

/// Ends a write-through update: the new value goes into the entry if the
/// mark still holds the writer's marker; otherwise — another writer or an
/// invalidation came in between, and this writer cannot know whose value
/// the repository kept last — the entry is deleted. Either way the
/// negative key, the mark and, if given, the lease are deleted: a load in
/// flight began before this write, so its ticket is void, and the
/// processes waiting for it need not.
///
/// `KEYS`: entry, negative, mark, \[lease\]. `ARGV`: marker, value, value
/// PX. Returns 1 when the value was written, 0 when the entry was deleted,
/// 2 when the store refused the value (out of memory; deleted instead).
pub(crate) static FINISH_WRITE: Script = Script::new(
    "cache finish write",
    r#"
local result = 0
if redis.call('GET', KEYS[3]) == ARGV[1] then
  local set = redis.pcall('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  if type(set) == 'table' and set.err then result = 2 else result = 1 end
end
if result ~= 1 then redis.call('DEL', KEYS[1]) end
redis.call('DEL', KEYS[2], KEYS[3])
if #KEYS > 3 then redis.call('DEL', KEYS[4]) end
return result
"#,
    finish_write,
);

fn finish_write(run: &mut ScriptRun<'_>) -> Result<ScriptValue, String> {
    let (entry_key, negative_key, mark_key) = (run.key(0)?, run.key(1)?, run.key(2)?);
    let (marker, value, value_px) = (run.arg_bytes(0)?, run.arg_bytes(1)?, run.arg_u64(2)?);
    let own = run.get(mark_key)?.as_deref() == Some(marker);
    if own {
        run.set(entry_key, value, Some(value_px))?;
    } else {
        run.del(entry_key)?;
    }
    run.del(negative_key)?;
    run.del(mark_key)?;
    if run.keys().len() > 3 {
        run.del(run.key(3)?)?;
    }
    Ok(ScriptValue::Int(i64::from(own)))
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

    /// A record's keys, as the cache names them (one hash tag).
    const E: &str = "user:{1}";
    const N: &str = "user~nf:{1}";
    const M: &str = "user~mark:{1}";
    const L: &str = "user~lease:{1}";

    fn args(items: &[&str]) -> Vec<Vec<u8>> {
        items.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    async fn bytes(store: &MemoryStore, key: &str) -> Option<Vec<u8>> {
        store.get_bytes(key).await.unwrap()
    }

    #[tokio::test]
    async fn observe_takes_a_ticket_only_when_nothing_is_marked() {
        let store = MemoryStore::new("t", "p");
        let reply = store
            .run_script(&OBSERVE, &[E, N, M], &args(&["l:a", "1000"]))
            .await
            .unwrap();
        let ticket = ScriptValue::Bytes(b"l:a".to_vec());
        assert_eq!(
            reply,
            ScriptValue::Array(vec![ScriptValue::Nil, ScriptValue::Int(0), ticket.clone()])
        );
        assert!(matches!(store.ttl(M).await.unwrap(), KeyTtl::ExpiresIn(_)));
        // A second look shares the ticket.
        let reply = store
            .run_script(&OBSERVE, &[E, N, M], &args(&["l:b", "1000"]))
            .await
            .unwrap();
        assert_eq!(reply.as_array().unwrap()[2], ticket);
        // A cached "not found" takes no ticket.
        store.delete(M).await.unwrap();
        store.set_bytes(N, b"1", Ttl::secs(5)).await.unwrap();
        let reply = store
            .run_script(&OBSERVE, &[E, N, M], &args(&["l:c", "1000"]))
            .await
            .unwrap();
        assert_eq!(reply.as_array().unwrap()[1], ScriptValue::Int(1));
        assert_eq!(reply.as_array().unwrap()[2], ScriptValue::Nil);
        assert!(!store.exists(M).await.unwrap());
    }

    #[tokio::test]
    async fn fill_needs_the_ticket_and_uses_it_up() {
        let store = MemoryStore::new("t", "p");
        store.set_bytes(M, b"l:t", Ttl::secs(5)).await.unwrap();
        // Another ticket: not written.
        let reply = store
            .run_script(
                &FILL,
                &[E, N, M],
                &args(&["0", "", "l:x", "v", "v1", "60000"]),
            )
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(0));
        assert_eq!(bytes(&store, E).await, None);
        // The ticket, entry absent as expected: written, ticket used up.
        let reply = store
            .run_script(
                &FILL,
                &[E, N, M],
                &args(&["0", "", "l:t", "v", "v1", "60000"]),
            )
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(1));
        assert_eq!(bytes(&store, E).await.as_deref(), Some(&b"v1"[..]));
        assert!(matches!(store.ttl(E).await.unwrap(), KeyTtl::ExpiresIn(_)));
        assert!(!store.exists(M).await.unwrap());
        // A "not found" replaces an entry that did not decode, at its own
        // key; the lease goes when it holds the token, stays otherwise.
        store.set_bytes(M, b"l:u", Ttl::secs(5)).await.unwrap();
        store.set_bytes(L, b"tok", Ttl::secs(5)).await.unwrap();
        let reply = store
            .run_script(
                &FILL,
                &[E, N, M, L],
                &args(&["1", "v1", "l:u", "n", "1", "60000", "other"]),
            )
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(1));
        assert_eq!(bytes(&store, E).await, None);
        assert_eq!(bytes(&store, N).await.as_deref(), Some(&b"1"[..]));
        assert!(store.exists(L).await.unwrap());
        // A writer's marker replaced the ticket: not written; the lease
        // is released all the same.
        store.delete(N).await.unwrap();
        store.set_bytes(M, b"w:u", Ttl::secs(5)).await.unwrap();
        let reply = store
            .run_script(
                &FILL,
                &[E, N, M, L],
                &args(&["0", "", "l:u", "v", "v2", "60000", "tok"]),
            )
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(0));
        assert!(!store.exists(L).await.unwrap());
        assert_eq!(bytes(&store, E).await, None);
    }

    #[tokio::test]
    async fn mark_replaces_tickets_and_clears_the_record() {
        let store = MemoryStore::new("t", "p");
        store.set_bytes(E, b"old", Ttl::secs(60)).await.unwrap();
        store.set_bytes(N, b"1", Ttl::secs(60)).await.unwrap();
        store.set_bytes(M, b"l:t", Ttl::secs(60)).await.unwrap();
        let reply = store
            .run_script(&MARK, &[E, N, M], &args(&["w:me", "1000"]))
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(1));
        assert_eq!(bytes(&store, E).await, None);
        assert_eq!(bytes(&store, N).await, None);
        assert_eq!(bytes(&store, M).await.as_deref(), Some(&b"w:me"[..]));
        let ttl = store.ttl(M).await.unwrap().remaining().unwrap();
        assert!(ttl <= Duration::from_secs(1));
    }

    #[tokio::test]
    async fn finish_write_needs_the_marker() {
        let store = MemoryStore::new("t", "p");
        store.set_bytes(M, b"w:me", Ttl::secs(5)).await.unwrap();
        let reply = store
            .run_script(
                &FINISH_WRITE,
                &[E, N, M],
                &args(&["w:me", "value", "60000"]),
            )
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(1));
        assert_eq!(bytes(&store, E).await.as_deref(), Some(&b"value"[..]));
        assert!(!store.exists(M).await.unwrap());
        // Another writer's marker (or none): the entry is deleted, and so
        // are the mark and the lease.
        store.set_bytes(M, b"w:other", Ttl::secs(5)).await.unwrap();
        store.set_bytes(L, b"someone", Ttl::secs(5)).await.unwrap();
        let reply = store
            .run_script(
                &FINISH_WRITE,
                &[E, N, M, L],
                &args(&["w:me", "value2", "60000"]),
            )
            .await
            .unwrap();
        assert_eq!(reply, ScriptValue::Int(0));
        for key in [E, N, M, L] {
            assert!(!store.exists(key).await.unwrap(), "{key}");
        }
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
        store.set_bytes(M, b"l:t", Ttl::secs(5)).await.unwrap();
        assert!(
            store
                .run_script(&FILL, &[E, N, M], &args(&["0", "", "l:t", "v", "v", "0"]))
                .await
                .is_err()
        );
    }
}
