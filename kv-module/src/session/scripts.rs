//! The session manager's atomic steps: each a [`Script`] with its Lua (for
//! Redis) and its Rust twin (for the memory backend), run by the same
//! tests on both.
//!
//! Every script gets two key *bases* as `KEYS` — the stored forms of
//! `session:` and `user_sessions:`, so the store's prefix applies — and
//! appends handles and user keys to them. (Keys built inside a script are
//! fine on a single Redis; a Redis Cluster would need hash tags.)
//!
//! * `session:{handle}`: the record (see [`data`](super::data)), with
//!   TTL `min(idle, absolute expiry - now)`.
//! * `user_sessions:{user key}`: the user's index, a JSON object
//!   `{handle: absolute expiry ms}`. Members are pruned when their absolute
//!   expiry passes (on every write of the index) or their record is gone
//!   (on `create` and `list`); the index's TTL is its longest-lived
//!   member's, so it never outlives the sessions it lists. An index entry
//!   keeps the session's *absolute* expiry, which a refresh never moves, so
//!   refreshing a session does not touch the index.

use std::collections::BTreeMap;

use subtle::ConstantTimeEq;

use super::data::{RecordHeader, parse_header};
use crate::store::{Script, ScriptOps, ScriptValue};

/// The Lua shared by the scripts: the server clock, the record header and
/// the index.
macro_rules! prelude {
    () => {
        r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function int(n)
  return string.format('%d', n)
end
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
-- Writes the index without the members whose absolute expiry has passed,
-- expiring with its longest-lived member; an empty index is deleted.
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

/// `create`: `ARGV` = handle, user key, data tail, idle ms, absolute ms.
/// Writes the record only if the handle is new (`NX`) and adds it to the
/// user's index (pruning members whose record is gone). 1 if created.
pub(crate) static CREATE: Script = Script::new(
    concat!(
        prelude!(),
        r#"
local now = now_ms()
local absolute = now + tonumber(ARGV[5])
local ttl = math.min(tonumber(ARGV[4]), absolute - now)
local record = '{"last_seen":' .. int(now) .. ',"absolute_expiry":' .. int(absolute)
  .. ',"created_at":' .. int(now) .. ',"user_key":"' .. ARGV[2] .. '",' .. ARGV[3]
if not redis.call('SET', KEYS[1] .. ARGV[1], record, 'NX', 'PX', int(ttl)) then
  return 0
end
local index_key = KEYS[2] .. ARGV[2]
local index = load_index(index_key)
for handle, _ in pairs(index) do
  if redis.call('EXISTS', KEYS[1] .. handle) == 0 then
    index[handle] = nil
  end
end
index[ARGV[1]] = absolute
save_index(index_key, index, now)
return 1
"#
    ),
    create_memory,
);

/// `refresh`: `ARGV` = handle, idle ms, minimum age ms. Unless the last
/// refresh is younger than the minimum age (then nothing is written, so
/// concurrent requests refresh a session once per interval), stamps
/// `last_seen` and sets the TTL to `min(idle, absolute expiry - now)`,
/// leaving the data bytes as they are. 1 if the session exists.
pub(crate) static REFRESH: Script = Script::new(
    concat!(
        prelude!(),
        r#"
local key = KEYS[1] .. ARGV[1]
local record = redis.call('GET', key)
if not record then
  return 0
end
local last_seen, keep, absolute = header(record)
local now = now_ms()
if absolute <= now then
  redis.call('DEL', key)
  return 0
end
if now - last_seen < tonumber(ARGV[3]) then
  return 1
end
local ttl = math.min(tonumber(ARGV[2]), absolute - now)
redis.call('SET', key, '{"last_seen":' .. int(now) .. ',' .. string.sub(record, keep), 'PX', int(ttl))
return 1
"#
    ),
    refresh_memory,
);

/// `update`: `ARGV` = handle, user key, data tail. Replaces the data of an
/// existing session, keeping its TTL; never creates one. 1 if updated, 0 if
/// the session does not exist, -1 if the data names another user.
pub(crate) static UPDATE: Script = Script::new(
    concat!(
        prelude!(),
        r#"
local key = KEYS[1] .. ARGV[1]
local record = redis.call('GET', key)
if not record then
  return 0
end
local _, _, _, user_key, tail = header(record)
if user_key ~= ARGV[2] then
  return -1
end
redis.call('SET', key, string.sub(record, 1, tail - 1) .. ARGV[3], 'KEEPTTL')
return 1
"#
    ),
    update_memory,
);

/// `delete`: `ARGV` = handle, and the user key the session must belong to
/// (empty: any). Deletes the record and its index entry. 1 if deleted.
pub(crate) static DELETE: Script = Script::new(
    concat!(
        prelude!(),
        r#"
local key = KEYS[1] .. ARGV[1]
local record = redis.call('GET', key)
if not record then
  return 0
end
local _, _, _, user_key = header(record)
if ARGV[2] ~= '' and user_key ~= ARGV[2] then
  return 0
end
redis.call('DEL', key)
local index_key = KEYS[2] .. user_key
local index = load_index(index_key)
index[ARGV[1]] = nil
save_index(index_key, index, now_ms())
return 1
"#
    ),
    delete_memory,
);

/// `cycle_id`: `ARGV` = old handle, new handle. Moves the record (same
/// bytes, same TTL) to the new handle and swaps the index entry, in one
/// step: the old id stops working at once. 1 if moved, 0 if the session
/// does not exist, -1 if the new handle is taken.
pub(crate) static CYCLE: Script = Script::new(
    concat!(
        prelude!(),
        r#"
local old = KEYS[1] .. ARGV[1]
local record = redis.call('GET', old)
if not record then
  return 0
end
local _, _, absolute, user_key = header(record)
local now = now_ms()
local ttl = redis.call('PTTL', old)
if ttl == -1 then
  ttl = absolute - now
end
if ttl <= 0 then
  return 0
end
if not redis.call('SET', KEYS[1] .. ARGV[2], record, 'NX', 'PX', int(ttl)) then
  return -1
end
redis.call('DEL', old)
local index_key = KEYS[2] .. user_key
local index = load_index(index_key)
index[ARGV[1]] = nil
index[ARGV[2]] = absolute
save_index(index_key, index, now)
return 1
"#
    ),
    cycle_memory,
);

/// `list_user_sessions`: `ARGV` = user key. The user's live sessions as
/// `[handle, record, handle, record, ...]`, pruning the index of the rest.
pub(crate) static LIST: Script = Script::new(
    concat!(
        prelude!(),
        r#"
local index_key = KEYS[2] .. ARGV[1]
local index = load_index(index_key)
local now = now_ms()
local found = {}
for handle, expiry in pairs(index) do
  local record = expiry > now and redis.call('GET', KEYS[1] .. handle)
  if record then
    table.insert(found, handle)
    table.insert(found, record)
  else
    index[handle] = nil
  end
end
save_index(index_key, index, now)
return found
"#
    ),
    list_memory,
);

/// `delete_user_sessions`: `ARGV` = user key. Deletes every session in the
/// user's index, then the index; the number of sessions deleted.
pub(crate) static DELETE_ALL: Script = Script::new(
    concat!(
        prelude!(),
        r#"
local index_key = KEYS[2] .. ARGV[1]
local index = load_index(index_key)
local deleted = 0
for handle, _ in pairs(index) do
  deleted = deleted + redis.call('DEL', KEYS[1] .. handle)
end
redis.call('DEL', index_key)
return deleted
"#
    ),
    delete_all_memory,
);

// ---- The Rust twins: the same steps over `ScriptOps`, in the same order.

type Reply = Result<ScriptValue, String>;

fn key(keys: &[String], i: usize) -> Result<&str, String> {
    keys.get(i)
        .map(String::as_str)
        .ok_or_else(|| format!("missing KEYS[{}]", i + 1))
}

fn arg(args: &[Vec<u8>], i: usize) -> Result<&[u8], String> {
    args.get(i)
        .map(Vec::as_slice)
        .ok_or_else(|| format!("missing ARGV[{}]", i + 1))
}

fn arg_str(args: &[Vec<u8>], i: usize) -> Result<&str, String> {
    std::str::from_utf8(arg(args, i)?).map_err(|_| format!("ARGV[{}] is not UTF-8", i + 1))
}

fn arg_u64(args: &[Vec<u8>], i: usize) -> Result<u64, String> {
    arg_str(args, i)?
        .parse()
        .map_err(|_| format!("ARGV[{}] is not an integer", i + 1))
}

fn header(record: &[u8]) -> Result<RecordHeader<'_>, String> {
    parse_header(record).ok_or_else(|| "malformed session record".to_owned())
}

fn load_index(ops: &mut dyn ScriptOps, key: &str) -> Result<BTreeMap<String, u64>, String> {
    let Some(raw) = ops.get(key) else {
        return Ok(BTreeMap::new());
    };
    let parsed: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&raw).map_err(|_| "malformed session index".to_owned())?;
    parsed
        .into_iter()
        .map(|(handle, expiry)| {
            // Lua's cjson writes numbers as floats when it must; accept both.
            let expiry = expiry
                .as_u64()
                .or_else(|| expiry.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .ok_or_else(|| "malformed session index".to_owned())?;
            Ok((handle, expiry))
        })
        .collect()
}

fn save_index(ops: &mut dyn ScriptOps, key: &str, mut index: BTreeMap<String, u64>, now: u64) {
    index.retain(|_, expiry| *expiry > now);
    match index.values().max() {
        None => {
            ops.del(key);
        }
        Some(&last) => {
            // Serializing a map of strings to integers cannot fail.
            let json = serde_json::to_vec(&index).unwrap_or_default();
            ops.set(key, &json, Some(last - now));
        }
    }
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn create_memory(ops: &mut dyn ScriptOps, keys: &[String], args: &[Vec<u8>]) -> Reply {
    let (sessions, indexes) = (key(keys, 0)?, key(keys, 1)?);
    let (handle, user_key, tail) = (arg_str(args, 0)?, arg_str(args, 1)?, arg(args, 2)?);
    let (idle, absolute_ms) = (arg_u64(args, 3)?, arg_u64(args, 4)?);
    let now = ops.now_ms();
    let absolute = now.saturating_add(absolute_ms);
    let ttl = idle.min(absolute - now);
    let session_key = format!("{sessions}{handle}");
    if ops.pttl(&session_key) != -2 {
        return Ok(ScriptValue::Int(0));
    }
    let record = concat(&[
        format!(
            "{{\"last_seen\":{now},\"absolute_expiry\":{absolute},\"created_at\":{now},\"user_key\":\"{user_key}\","
        )
        .as_bytes(),
        tail,
    ]);
    ops.set(&session_key, &record, Some(ttl));
    let index_key = format!("{indexes}{user_key}");
    let mut index = load_index(ops, &index_key)?;
    index.retain(|member, _| ops.pttl(&format!("{sessions}{member}")) != -2);
    index.insert(handle.to_owned(), absolute);
    save_index(ops, &index_key, index, now);
    Ok(ScriptValue::Int(1))
}

fn refresh_memory(ops: &mut dyn ScriptOps, keys: &[String], args: &[Vec<u8>]) -> Reply {
    let session_key = format!("{}{}", key(keys, 0)?, arg_str(args, 0)?);
    let (idle, min_age) = (arg_u64(args, 1)?, arg_u64(args, 2)?);
    let Some(record) = ops.get(&session_key) else {
        return Ok(ScriptValue::Int(0));
    };
    let header = header(&record)?;
    let now = ops.now_ms();
    if header.absolute_expiry <= now {
        ops.del(&session_key);
        return Ok(ScriptValue::Int(0));
    }
    if now.saturating_sub(header.last_seen) < min_age {
        return Ok(ScriptValue::Int(1));
    }
    let ttl = idle.min(header.absolute_expiry - now);
    let refreshed = concat(&[
        format!("{{\"last_seen\":{now},").as_bytes(),
        &record[header.after_last_seen..],
    ]);
    ops.set(&session_key, &refreshed, Some(ttl));
    Ok(ScriptValue::Int(1))
}

fn update_memory(ops: &mut dyn ScriptOps, keys: &[String], args: &[Vec<u8>]) -> Reply {
    let session_key = format!("{}{}", key(keys, 0)?, arg_str(args, 0)?);
    let (user_key, tail) = (arg_str(args, 1)?, arg(args, 2)?);
    let Some(record) = ops.get(&session_key) else {
        return Ok(ScriptValue::Int(0));
    };
    let header = header(&record)?;
    if header.user_key != user_key {
        return Ok(ScriptValue::Int(-1));
    }
    let updated = concat(&[&record[..header.tail_offset], tail]);
    ops.set_keep_ttl(&session_key, &updated);
    Ok(ScriptValue::Int(1))
}

fn delete_memory(ops: &mut dyn ScriptOps, keys: &[String], args: &[Vec<u8>]) -> Reply {
    let (sessions, indexes) = (key(keys, 0)?, key(keys, 1)?);
    let (handle, owner) = (arg_str(args, 0)?, arg_str(args, 1)?);
    let session_key = format!("{sessions}{handle}");
    let Some(record) = ops.get(&session_key) else {
        return Ok(ScriptValue::Int(0));
    };
    let header = header(&record)?;
    // Owners are hashes, not secrets; constant time all the same.
    if !owner.is_empty() && !bool::from(header.user_key.as_bytes().ct_eq(owner.as_bytes())) {
        return Ok(ScriptValue::Int(0));
    }
    ops.del(&session_key);
    let index_key = format!("{indexes}{}", header.user_key);
    let mut index = load_index(ops, &index_key)?;
    index.remove(handle);
    let now = ops.now_ms();
    save_index(ops, &index_key, index, now);
    Ok(ScriptValue::Int(1))
}

fn cycle_memory(ops: &mut dyn ScriptOps, keys: &[String], args: &[Vec<u8>]) -> Reply {
    let (sessions, indexes) = (key(keys, 0)?, key(keys, 1)?);
    let (old, new) = (arg_str(args, 0)?, arg_str(args, 1)?);
    let old_key = format!("{sessions}{old}");
    let Some(record) = ops.get(&old_key) else {
        return Ok(ScriptValue::Int(0));
    };
    let header = header(&record)?;
    let now = ops.now_ms();
    let ttl = match ops.pttl(&old_key) {
        -1 => i64::try_from(header.absolute_expiry.saturating_sub(now)).unwrap_or(i64::MAX),
        ttl => ttl,
    };
    let Ok(ttl @ 1..) = u64::try_from(ttl) else {
        return Ok(ScriptValue::Int(0));
    };
    let new_key = format!("{sessions}{new}");
    if ops.pttl(&new_key) != -2 {
        return Ok(ScriptValue::Int(-1));
    }
    ops.set(&new_key, &record, Some(ttl));
    ops.del(&old_key);
    let index_key = format!("{indexes}{}", header.user_key);
    let absolute = header.absolute_expiry;
    let mut index = load_index(ops, &index_key)?;
    index.remove(old);
    index.insert(new.to_owned(), absolute);
    save_index(ops, &index_key, index, now);
    Ok(ScriptValue::Int(1))
}

fn list_memory(ops: &mut dyn ScriptOps, keys: &[String], args: &[Vec<u8>]) -> Reply {
    let (sessions, indexes) = (key(keys, 0)?, key(keys, 1)?);
    let index_key = format!("{indexes}{}", arg_str(args, 0)?);
    let mut index = load_index(ops, &index_key)?;
    let now = ops.now_ms();
    let mut found = Vec::new();
    index.retain(|handle, expiry| {
        let record = (*expiry > now)
            .then(|| ops.get(&format!("{sessions}{handle}")))
            .flatten();
        match record {
            Some(record) => {
                found.push(ScriptValue::Bytes(handle.as_bytes().to_vec()));
                found.push(ScriptValue::Bytes(record));
                true
            }
            None => false,
        }
    });
    save_index(ops, &index_key, index, now);
    Ok(ScriptValue::Array(found))
}

fn delete_all_memory(ops: &mut dyn ScriptOps, keys: &[String], args: &[Vec<u8>]) -> Reply {
    let (sessions, indexes) = (key(keys, 0)?, key(keys, 1)?);
    let index_key = format!("{indexes}{}", arg_str(args, 0)?);
    let index = load_index(ops, &index_key)?;
    let deleted = index
        .keys()
        .filter(|handle| ops.del(&format!("{sessions}{handle}")))
        .count();
    ops.del(&index_key);
    Ok(ScriptValue::Int(i64::try_from(deleted).unwrap_or(i64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KvStore, MemoryStore};

    fn args(parts: &[&str]) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.as_bytes().to_vec()).collect()
    }

    /// `create` never overwrites an existing record (the `NX` branch, which
    /// random 256-bit ids never reach through the manager).
    #[tokio::test(flavor = "current_thread")]
    async fn create_is_nx_and_indexes_once() {
        let store = MemoryStore::new("s", "app");
        let keys = ["session:", "user_sessions:"];
        let first = args(&["h1", "u1", r#""user_id":"a"}"#, "60000", "120000"]);
        let second = args(&["h1", "u1", r#""user_id":"b"}"#, "60000", "120000"]);
        let reply = store.run_script(&CREATE, &keys, &first).await.unwrap();
        assert_eq!(reply, ScriptValue::Int(1));
        let reply = store.run_script(&CREATE, &keys, &second).await.unwrap();
        assert_eq!(reply, ScriptValue::Int(0), "an existing handle is kept");
        let record = store.get_bytes("session:h1").await.unwrap().unwrap();
        assert!(record.ends_with(br#""user_id":"a"}"#));
        let index = store.get_bytes("user_sessions:u1").await.unwrap().unwrap();
        let index: BTreeMap<String, u64> = serde_json::from_slice(&index).unwrap();
        assert_eq!(index.keys().collect::<Vec<_>>(), ["h1"]);
    }

    /// A record that is not in the manager's format is a script error, not
    /// a silent success.
    #[tokio::test(flavor = "current_thread")]
    async fn malformed_records_are_errors() {
        let store = MemoryStore::new("s", "app");
        store
            .set_bytes("session:h1", b"{}", crate::Ttl::secs(60))
            .await
            .unwrap();
        let keys = ["session:", "user_sessions:"];
        let err = store
            .run_script(&REFRESH, &keys, &args(&["h1", "1000", "0"]))
            .await
            .unwrap_err();
        assert!(matches!(err, crate::KvError::Backend { .. }), "{err:?}");
    }
}
