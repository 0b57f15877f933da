//! The session manager's atomic steps: each a [`Script`] with its Lua (for
//! Redis) and its Rust twin (for the memory backend), run by the same
//! tests on both.
//!
//! Every script is given every key it touches in `KEYS` and builds none;
//! all of them carry the user's hash tag `{tag}` (the first 16 characters
//! of the user key, which every session id of the user starts with), so
//! each script's keys share a slot on a Redis Cluster:
//!
//! * `session:{tag}:<handle>`: the record (see [`data`](super::data)),
//!   with TTL `min(idle, absolute expiry - now)`.
//! * `user_sessions:{tag}`: the index of the tag's sessions, a JSON object
//!   `{handle: current expiry ms}` — the expiry its record has now. Every
//!   script that moves a record's expiry (create, refresh, cycle) writes
//!   its index entry in the same step, so a member whose record idled out
//!   is known by its expiry alone: every write of the index drops the
//!   members whose expiry has passed, without looking at keys it was not
//!   given. The index's TTL is its longest-lived member's, so it never
//!   outlives the sessions it lists.
//!
//! Listing needs no script (`GET` of the index, then one `MGET` of the
//! records). "Log out everywhere" is [`DELETE_ALL`], given the index and
//! the records the client read from it; it reports the members it was not
//! given (sessions created since the client's read), and the client runs
//! it again for those.

use std::collections::{BTreeMap, BTreeSet};

use subtle::ConstantTimeEq;

use super::data::{RecordHeader, parse_header};
use crate::store::{Script, ScriptRun, ScriptValue, lua_prelude};

/// The Lua the session scripts share (after the common [`lua_prelude!`]):
/// the record header and the index.
macro_rules! prelude {
    () => {
        r#"
-- last seen, keep (where "absolute_expiry" starts), absolute expiry, user
-- key, tail (where the application's data starts).
local function header(record)
  local last_seen, keep, absolute, user_key, tail = string.match(record,
    '^{"last_seen":(%d+),()"absolute_expiry":(%d+),"created_at":%d+,"user_key":"([%w_%-]+)",()')
  if not last_seen then
    error('malformed session record')
  end
  return tonumber(last_seen), keep, tonumber(absolute), user_key, tail
end
local function load_index(key)
  local raw = redis.call('GET', key)
  if not raw then
    return {}
  end
  local ok, index = pcall(cjson.decode, raw)
  if not ok or type(index) ~= 'table' then
    error('malformed session index')
  end
  for _, expiry in pairs(index) do
    if type(expiry) ~= 'number' then
      error('malformed session index')
    end
  end
  return index
end
-- Writes the index without the members whose expiry has passed, expiring
-- with its longest-lived member; an empty index is deleted.
local function save_index(key, index, now)
  local live, last, count = {}, 0, 0
  for handle, expiry in pairs(index) do
    if expiry > now then
      live[handle] = expiry
      count = count + 1
      if expiry > last then
        last = expiry
      end
    end
  end
  if count == 0 then
    redis.call('DEL', key)
  else
    redis.call('SET', key, cjson.encode(live), 'PX', int(last - now))
  end
end
"#
    };
}

/// `create`: `KEYS` = record, index; `ARGV` = handle, user key, data
/// tail, idle ms, absolute ms. Writes the record only if it is new (`NX`)
/// and adds it to the index with its expiry. 1 if created.
pub(crate) static CREATE: Script = Script::new(
    "session create",
    concat!(
        lua_prelude!(),
        prelude!(),
        r#"
local now = now_ms()
local absolute = now + tonumber(ARGV[5])
local ttl = math.min(tonumber(ARGV[4]), absolute - now)
local record = '{"last_seen":' .. int(now) .. ',"absolute_expiry":' .. int(absolute)
  .. ',"created_at":' .. int(now) .. ',"user_key":"' .. ARGV[2] .. '",' .. ARGV[3]
if not redis.call('SET', KEYS[1], record, 'NX', 'PX', int(ttl)) then
  return 0
end
local index = load_index(KEYS[2])
index[ARGV[1]] = now + ttl
save_index(KEYS[2], index, now)
return 1
"#
    ),
    create_memory,
);

/// `refresh`: `KEYS` = record, index; `ARGV` = handle, idle ms, minimum
/// age ms. Unless the last refresh is younger than the minimum age (then
/// nothing is written, so concurrent requests refresh a session once per
/// interval), stamps `last_seen`, sets the TTL to `min(idle, absolute
/// expiry - now)` — leaving the data bytes as they are — and moves the
/// index entry to the new expiry. 1 if the session exists.
pub(crate) static REFRESH: Script = Script::new(
    "session refresh",
    concat!(
        lua_prelude!(),
        prelude!(),
        r#"
local record = redis.call('GET', KEYS[1])
if not record then
  return 0
end
local last_seen, keep, absolute = header(record)
local now = now_ms()
if absolute <= now then
  -- Its index entry expired no later than this: the next write drops it.
  redis.call('DEL', KEYS[1])
  return 0
end
if now - last_seen < tonumber(ARGV[3]) then
  return 1
end
local ttl = math.min(tonumber(ARGV[2]), absolute - now)
redis.call('SET', KEYS[1], '{"last_seen":' .. int(now) .. ',' .. string.sub(record, keep), 'PX', int(ttl))
local index = load_index(KEYS[2])
index[ARGV[1]] = now + ttl
save_index(KEYS[2], index, now)
return 1
"#
    ),
    refresh_memory,
);

/// `update`: `KEYS` = record; `ARGV` = user key, data tail. Replaces the
/// data of an existing session, keeping its TTL (so its index entry stays
/// right); never creates one. 1 if updated, 0 if the session does not
/// exist, -1 if the data names another user.
pub(crate) static UPDATE: Script = Script::new(
    "session update",
    concat!(
        lua_prelude!(),
        prelude!(),
        r#"
local record = redis.call('GET', KEYS[1])
if not record then
  return 0
end
local _, _, _, user_key, tail = header(record)
if user_key ~= ARGV[1] then
  return -1
end
redis.call('SET', KEYS[1], string.sub(record, 1, tail - 1) .. ARGV[2], 'KEEPTTL')
return 1
"#
    ),
    update_memory,
);

/// `delete`: `KEYS` = record, index; `ARGV` = handle, and the user key the
/// session must belong to (empty: any). Deletes the record and its index
/// entry. 1 if deleted.
pub(crate) static DELETE: Script = Script::new(
    "session delete",
    concat!(
        lua_prelude!(),
        prelude!(),
        r#"
local record = redis.call('GET', KEYS[1])
if not record then
  return 0
end
local _, _, _, user_key = header(record)
if ARGV[2] ~= '' and user_key ~= ARGV[2] then
  return 0
end
redis.call('DEL', KEYS[1])
local index = load_index(KEYS[2])
index[ARGV[1]] = nil
save_index(KEYS[2], index, now_ms())
return 1
"#
    ),
    delete_memory,
);

/// `cycle_id`: `KEYS` = old record, new record, index (the new id keeps
/// the tag); `ARGV` = old handle, new handle. Moves the record (same
/// bytes, same TTL) to the new handle and swaps the index entry, in one
/// step: the old id stops working at once. 1 if moved, 0 if the session
/// does not exist, -1 if the new handle is taken.
pub(crate) static CYCLE: Script = Script::new(
    "session cycle id",
    concat!(
        lua_prelude!(),
        prelude!(),
        r#"
local record = redis.call('GET', KEYS[1])
if not record then
  return 0
end
local _, _, absolute = header(record)
local now = now_ms()
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -1 then
  ttl = absolute - now
end
if ttl <= 0 then
  return 0
end
if not redis.call('SET', KEYS[2], record, 'NX', 'PX', int(ttl)) then
  return -1
end
redis.call('DEL', KEYS[1])
local index = load_index(KEYS[3])
index[ARGV[1]] = nil
index[ARGV[2]] = now + ttl
save_index(KEYS[3], index, now)
return 1
"#
    ),
    cycle_memory,
);

/// `delete_user_sessions`, one round: `KEYS` = index, then records;
/// `ARGV` = user key, then the handle of each record (`ARGV[i]` names
/// `KEYS[i]`). Deletes each given record of that user and drops it (or a
/// member whose record is gone) from the index; a record of another user
/// sharing the tag is left alone. Replies `{deleted, pending}`: the number
/// deleted, and the live index members that were not given — sessions
/// created since the client read the index, for the next round.
pub(crate) static DELETE_ALL: Script = Script::new(
    "session delete all",
    concat!(
        lua_prelude!(),
        prelude!(),
        r#"
if #ARGV ~= #KEYS then
  error('one handle per record key expected')
end
local index = load_index(KEYS[1])
local given, deleted = {}, 0
for i = 2, #KEYS do
  local handle = ARGV[i]
  given[handle] = true
  local record = redis.call('GET', KEYS[i])
  if not record then
    index[handle] = nil
  else
    local _, _, _, user_key = header(record)
    if user_key == ARGV[1] then
      redis.call('DEL', KEYS[i])
      index[handle] = nil
      deleted = deleted + 1
    end
  end
end
local now = now_ms()
save_index(KEYS[1], index, now)
local pending = {}
for handle, expiry in pairs(index) do
  if expiry > now and not given[handle] then
    table.insert(pending, handle)
  end
end
return {deleted, pending}
"#
    ),
    delete_all_memory,
);

// ---- The index, as the client and the twins read it.

/// Parses an index: `{handle: expiry ms}`. `None` when malformed.
pub(crate) fn parse_index(raw: &[u8]) -> Option<BTreeMap<String, u64>> {
    let parsed: BTreeMap<String, serde_json::Value> = serde_json::from_slice(raw).ok()?;
    parsed
        .into_iter()
        .map(|(handle, expiry)| {
            // Lua's cjson writes numbers as floats when it must; accept both.
            let expiry = expiry
                .as_u64()
                .or_else(|| expiry.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))?;
            Some((handle, expiry))
        })
        .collect()
}

// ---- The Rust twins: the same steps through `ScriptRun`, in the same
// order.

type Reply = Result<ScriptValue, String>;

fn header(record: &[u8]) -> Result<RecordHeader<'_>, String> {
    parse_header(record).ok_or_else(|| "malformed session record".to_owned())
}

fn load_index(run: &mut ScriptRun<'_>, key: &str) -> Result<BTreeMap<String, u64>, String> {
    match run.get(key)? {
        None => Ok(BTreeMap::new()),
        Some(raw) => parse_index(&raw).ok_or_else(|| "malformed session index".to_owned()),
    }
}

fn save_index(
    run: &mut ScriptRun<'_>,
    key: &str,
    mut index: BTreeMap<String, u64>,
    now: u64,
) -> Result<(), String> {
    index.retain(|_, expiry| *expiry > now);
    match index.values().max() {
        None => {
            run.del(key)?;
            Ok(())
        }
        Some(&last) => {
            // Serializing a map of strings to integers cannot fail.
            let json = serde_json::to_vec(&index).unwrap_or_default();
            run.set(key, &json, Some(last - now))
        }
    }
}

fn create_memory(run: &mut ScriptRun<'_>) -> Reply {
    let (record_key, index_key) = (run.key(0)?, run.key(1)?);
    let (handle, user_key, tail) = (run.arg_str(0)?, run.arg_str(1)?, run.arg_bytes(2)?);
    let (idle, absolute_ms) = (run.arg_u64(3)?, run.arg_u64(4)?);
    let now = run.now_ms();
    let absolute = now.saturating_add(absolute_ms);
    let ttl = idle.min(absolute - now);
    if run.pttl(record_key)? != -2 {
        return Ok(ScriptValue::Int(0));
    }
    let record = [
        format!(
            "{{\"last_seen\":{now},\"absolute_expiry\":{absolute},\"created_at\":{now},\"user_key\":\"{user_key}\","
        )
        .as_bytes(),
        tail,
    ]
    .concat();
    run.set(record_key, &record, Some(ttl))?;
    let mut index = load_index(run, index_key)?;
    index.insert(handle.to_owned(), now + ttl);
    save_index(run, index_key, index, now)?;
    Ok(ScriptValue::Int(1))
}

fn refresh_memory(run: &mut ScriptRun<'_>) -> Reply {
    let (record_key, index_key) = (run.key(0)?, run.key(1)?);
    let (handle, idle, min_age) = (run.arg_str(0)?, run.arg_u64(1)?, run.arg_u64(2)?);
    let Some(record) = run.get(record_key)? else {
        return Ok(ScriptValue::Int(0));
    };
    let header = header(&record)?;
    let now = run.now_ms();
    if header.absolute_expiry <= now {
        run.del(record_key)?;
        return Ok(ScriptValue::Int(0));
    }
    if now.saturating_sub(header.last_seen) < min_age {
        return Ok(ScriptValue::Int(1));
    }
    let ttl = idle.min(header.absolute_expiry - now);
    let refreshed = [
        format!("{{\"last_seen\":{now},").as_bytes(),
        &record[header.after_last_seen..],
    ]
    .concat();
    run.set(record_key, &refreshed, Some(ttl))?;
    let mut index = load_index(run, index_key)?;
    index.insert(handle.to_owned(), now + ttl);
    save_index(run, index_key, index, now)?;
    Ok(ScriptValue::Int(1))
}

fn update_memory(run: &mut ScriptRun<'_>) -> Reply {
    let record_key = run.key(0)?;
    let (user_key, tail) = (run.arg_str(0)?, run.arg_bytes(1)?);
    let Some(record) = run.get(record_key)? else {
        return Ok(ScriptValue::Int(0));
    };
    let header = header(&record)?;
    if header.user_key != user_key {
        return Ok(ScriptValue::Int(-1));
    }
    let updated = [&record[..header.tail_offset], tail].concat();
    run.set_keep_ttl(record_key, &updated)?;
    Ok(ScriptValue::Int(1))
}

/// Whether a record's user key is `user_key`. Owners are hashes, not
/// secrets; constant time all the same.
fn owned_by(header: &RecordHeader<'_>, user_key: &str) -> bool {
    bool::from(header.user_key.as_bytes().ct_eq(user_key.as_bytes()))
}

fn delete_memory(run: &mut ScriptRun<'_>) -> Reply {
    let (record_key, index_key) = (run.key(0)?, run.key(1)?);
    let (handle, owner) = (run.arg_str(0)?, run.arg_str(1)?);
    let Some(record) = run.get(record_key)? else {
        return Ok(ScriptValue::Int(0));
    };
    let header = header(&record)?;
    if !owner.is_empty() && !owned_by(&header, owner) {
        return Ok(ScriptValue::Int(0));
    }
    run.del(record_key)?;
    let mut index = load_index(run, index_key)?;
    index.remove(handle);
    let now = run.now_ms();
    save_index(run, index_key, index, now)?;
    Ok(ScriptValue::Int(1))
}

fn cycle_memory(run: &mut ScriptRun<'_>) -> Reply {
    let (old_key, new_key, index_key) = (run.key(0)?, run.key(1)?, run.key(2)?);
    let (old, new) = (run.arg_str(0)?, run.arg_str(1)?);
    let Some(record) = run.get(old_key)? else {
        return Ok(ScriptValue::Int(0));
    };
    let header = header(&record)?;
    let now = run.now_ms();
    let ttl = match run.pttl(old_key)? {
        -1 => i64::try_from(header.absolute_expiry.saturating_sub(now)).unwrap_or(i64::MAX),
        ttl => ttl,
    };
    let Ok(ttl @ 1..) = u64::try_from(ttl) else {
        return Ok(ScriptValue::Int(0));
    };
    if run.pttl(new_key)? != -2 {
        return Ok(ScriptValue::Int(-1));
    }
    run.set(new_key, &record, Some(ttl))?;
    run.del(old_key)?;
    let mut index = load_index(run, index_key)?;
    index.remove(old);
    index.insert(new.to_owned(), now + ttl);
    save_index(run, index_key, index, now)?;
    Ok(ScriptValue::Int(1))
}

fn delete_all_memory(run: &mut ScriptRun<'_>) -> Reply {
    if run.arg_count() != run.keys().len() {
        return Err(run.error("one handle per record key expected"));
    }
    let index_key = run.key(0)?;
    let user_key = run.arg_str(0)?;
    let mut index = load_index(run, index_key)?;
    let mut given = BTreeSet::new();
    let mut deleted: i64 = 0;
    for i in 1..run.keys().len() {
        let (record_key, handle) = (run.key(i)?, run.arg_str(i)?);
        given.insert(handle);
        match run.get(record_key)? {
            None => {
                index.remove(handle);
            }
            Some(record) => {
                if owned_by(&header(&record)?, user_key) {
                    run.del(record_key)?;
                    index.remove(handle);
                    deleted += 1;
                }
            }
        }
    }
    let now = run.now_ms();
    let pending: Vec<ScriptValue> = index
        .iter()
        .filter(|(handle, expiry)| **expiry > now && !given.contains(handle.as_str()))
        .map(|(handle, _)| ScriptValue::Bytes(handle.as_bytes().to_vec()))
        .collect();
    save_index(run, index_key, index, now)?;
    Ok(ScriptValue::Array(vec![
        ScriptValue::Int(deleted),
        ScriptValue::Array(pending),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KvStore, MemoryStore};

    fn args(parts: &[&str]) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.as_bytes().to_vec()).collect()
    }

    const RECORD: &str = "session:{t}:h1";
    const INDEX: &str = "user_sessions:{t}";

    /// `create` never overwrites an existing record (the `NX` branch, which
    /// random 256-bit ids never reach through the manager), and indexes
    /// the record with its expiry.
    #[tokio::test(flavor = "current_thread")]
    async fn create_is_nx_and_indexes_once() {
        let store = MemoryStore::new("s", "app");
        let keys = [RECORD, INDEX];
        let first = args(&["h1", "u1", r#""user_id":"a"}"#, "60000", "120000"]);
        let second = args(&["h1", "u1", r#""user_id":"b"}"#, "60000", "120000"]);
        let reply = store.run_script(&CREATE, &keys, &first).await.unwrap();
        assert_eq!(reply, ScriptValue::Int(1));
        let reply = store.run_script(&CREATE, &keys, &second).await.unwrap();
        assert_eq!(reply, ScriptValue::Int(0), "an existing handle is kept");
        let record = store.get_bytes(RECORD).await.unwrap().unwrap();
        assert!(record.ends_with(br#""user_id":"a"}"#));
        let index = store.get_bytes(INDEX).await.unwrap().unwrap();
        let index = parse_index(&index).unwrap();
        assert_eq!(index.keys().collect::<Vec<_>>(), ["h1"]);
        let header = parse_header(&record).unwrap();
        // The entry is the record's expiry: idle (60 s) from its creation.
        assert_eq!(index["h1"], header.last_seen + 60_000);
    }

    /// A record that is not in the manager's format is a script error, not
    /// a silent success.
    #[tokio::test(flavor = "current_thread")]
    async fn malformed_records_are_errors() {
        let store = MemoryStore::new("s", "app");
        store
            .set_bytes(RECORD, b"{}", crate::Ttl::secs(60))
            .await
            .unwrap();
        let err = store
            .run_script(&REFRESH, &[RECORD, INDEX], &args(&["h1", "1000", "0"]))
            .await
            .unwrap_err();
        assert!(matches!(err, crate::KvError::Backend { .. }), "{err:?}");
    }

    /// `delete_user_sessions` needs one handle per record key: anything
    /// else is an error, before anything is deleted.
    #[tokio::test(flavor = "current_thread")]
    async fn delete_all_pairs_handles_with_record_keys() {
        let store = MemoryStore::new("s", "app");
        let create = args(&["h1", "u1", r#""user_id":"a"}"#, "60000", "120000"]);
        store
            .run_script(&CREATE, &[RECORD, INDEX], &create)
            .await
            .unwrap();
        let err = store
            .run_script(&DELETE_ALL, &[INDEX, RECORD], &args(&["u1"]))
            .await
            .unwrap_err();
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert!(
            source
                .as_deref()
                .unwrap_or("")
                .contains("session delete all"),
            "{source:?}"
        );
        assert!(store.exists(RECORD).await.unwrap());
        let reply = store
            .run_script(&DELETE_ALL, &[INDEX, RECORD], &args(&["u1", "h1"]))
            .await
            .unwrap();
        let expected = ScriptValue::Array(vec![ScriptValue::Int(1), ScriptValue::Array(vec![])]);
        assert_eq!(reply, expected);
        assert!(!store.exists(RECORD).await.unwrap());
        assert!(!store.exists(INDEX).await.unwrap(), "an empty index goes");
    }
}
