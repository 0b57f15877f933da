//! [`KvTransactions`] on Redis: a transaction is one script that checks
//! every key's type before it writes anything, or, when no write of it
//! depends on a key's type, one `MULTI`/`EXEC`; `update` is a `GET` and a
//! compare-and-set script, retried on conflict. All go through the
//! store's call path (deadline, breaker, the cluster slot check).
//!
//! Why two forms: a `MULTI` does not roll back the commands around one
//! that fails, and a write of the wrong type (`HSET` on a string) fails
//! only when `EXEC` runs it; hence the script, which checks first. But
//! `SET`, `DEL` and `PEXPIRE` take a key of any type and cannot fail once
//! queued (an out-of-memory refusal comes at queueing, and aborts the
//! whole `EXEC`), so a batch of only those is all or nothing as a
//! `MULTI`, and costs Redis about half what the script does (measured in
//! `tests/benches/data_types.rs`).

use async_trait::async_trait;

use super::core::{Core, redis_only, sized_cmd};
use super::link::Route;
use crate::error::{KvError, Result};
use crate::store::transaction::{TxOp, check};
use crate::store::{KvTransactions, Script, Transaction, Ttl, UPDATE_ATTEMPTS, UpdateFn};

/// Runs the writes of a transaction, all or nothing (public so that
/// benchmarks and audits can send the very script the store runs). `ARGV[1]` is the
/// number of writes; each write follows as its command, the index of its
/// key in `KEYS`, its argument count and its arguments. Every key's
/// type is checked against what each write needs, following the writes in
/// order, before the first write; a mismatch returns `{0, i}` (the `i`-th
/// write) and writes nothing; success returns `{1, 0}`. (A failing
/// command in a script, as in a `MULTI`, does not undo the ones before
/// it: hence the check first.)
pub static TRANSACTION_SCRIPT: Script = Script::new(
    "transaction",
    r#"
    local need = {HSET='hash', HDEL='hash', SADD='set', SREM='set', ZADD='zset', ZREM='zset',
                  LPUSH='list', RPUSH='list'}
    local makes = {SET='string', DEL='none', HSET='hash', SADD='set', ZADD='zset',
                   LPUSH='list', RPUSH='list'}
    local types, ops, pos = {}, {}, 2
    for i = 1, tonumber(ARGV[1]) do
      local cmd, k, argc = ARGV[pos], tonumber(ARGV[pos + 1]), tonumber(ARGV[pos + 2])
      ops[i] = {cmd, k, pos + 3, pos + 2 + argc}
      pos = pos + 3 + argc
      local n = need[cmd]
      if n then
        -- A key's type is asked only when a write needs one and no write
        -- before it in the batch decided it.
        if types[k] == nil then types[k] = redis.call('TYPE', KEYS[k]).ok end
        if types[k] ~= 'none' and types[k] ~= n then return {0, i} end
      end
      if makes[cmd] then types[k] = makes[cmd] end
    end
    for i = 1, #ops do
      local cmd, key, first, last = ops[i][1], KEYS[ops[i][2]], ops[i][3], ops[i][4]
      if last < first then
        redis.call(cmd, key)
      else
        -- `unpack` is limited to a few thousand values: long writes go in
        -- chunks (an even size keeps field-value and score-member pairs
        -- whole), with the same effect as one command.
        for from = first, last, 1000 do
          redis.call(cmd, key, unpack(ARGV, from, math.min(from + 999, last)))
        end
      end
    end
    return {1, 0}
    "#,
    redis_only,
);

/// Compare-and-set of a string (public for the same reason): `ARGV[1]` `1` when `ARGV[2]` is the value
/// expected, `0` when the key is expected missing; `ARGV[3]` `set` (to
/// `ARGV[4]`, with `ARGV[5]` `keep` for `KEEPTTL`, `never`, or a `PX` in
/// milliseconds) or `del`. Returns `{1}` when written; on a conflict `{0,
/// current}` (`{0}` when the key is missing), so the next attempt needs no
/// `GET` of its own.
pub static COMPARE_AND_SET_SCRIPT: Script = Script::new(
    "compare and set",
    r#"
    local current = redis.call('GET', KEYS[1])
    if ARGV[1] == '1' then
      if current ~= ARGV[2] then return {0, current} end
    elseif current then
      return {0, current}
    end
    if ARGV[3] == 'del' then
      redis.call('DEL', KEYS[1])
    elseif ARGV[5] == 'keep' then
      redis.call('SET', KEYS[1], ARGV[4], 'KEEPTTL')
    elseif ARGV[5] == 'never' then
      redis.call('SET', KEYS[1], ARGV[4])
    else
      redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
    end
    return {1}
    "#,
    redis_only,
);

/// The command and arguments (after the key) of one write.
fn command(store: &std::sync::Arc<str>, op: &TxOp) -> Result<(&'static str, Vec<Vec<u8>>)> {
    let text = |s: &str| s.as_bytes().to_vec();
    Ok(match op {
        TxOp::Set { key, value, ttl } => {
            let mut args = vec![value.clone()];
            if let Some(ms) = ttl.to_millis(store, key)? {
                args.extend([text("PX"), text(&ms.to_string())]);
            }
            ("SET", args)
        }
        TxOp::Delete { .. } => ("DEL", Vec::new()),
        TxOp::Expire { key, ttl } => {
            let ms = crate::store::duration_millis(*ttl, store, key)?;
            ("PEXPIRE", vec![text(&ms.to_string())])
        }
        TxOp::HashSet { fields, .. } => (
            "HSET",
            fields
                .iter()
                .flat_map(|(f, v)| [text(f), v.clone()])
                .collect(),
        ),
        TxOp::HashDelete { fields, .. } => ("HDEL", fields.iter().map(|f| text(f)).collect()),
        TxOp::SetAdd { members, .. } => ("SADD", members.clone()),
        TxOp::SetRemove { members, .. } => ("SREM", members.clone()),
        TxOp::SortedSetAdd { members, .. } => (
            "ZADD",
            members
                .iter()
                .flat_map(|(s, m)| [text(&format!("{s:e}")), m.clone()])
                .collect(),
        ),
        TxOp::SortedSetRemove { members, .. } => ("ZREM", members.clone()),
        TxOp::ListPush { values, .. } => (op.command(), values.clone()),
    })
}

impl Core {
    /// A transaction of writes that take a key of any type (`SET`, `DEL`,
    /// `PEXPIRE`) as one `MULTI`/`EXEC`: all or nothing without a script
    /// (see the module docs).
    async fn run_multi(&self, tx: &Transaction) -> Result<()> {
        let store = &self.ctx().store;
        let keys = tx.keys();
        let stored: Vec<String> = keys.iter().map(|k| self.space.stored_key(k)).collect();
        self.check_one_slot("MULTI", &keys, &stored)?;
        let _forget = self.forget_after(&stored);
        let mut pipe = redis::Pipeline::with_capacity(tx.ops.len());
        pipe.atomic();
        for op in &tx.ops {
            let (name, rest) = command(store, op)?;
            let key = self.space.stored_key(op.key());
            let bytes = key.len() + rest.iter().map(|arg| arg.len()).sum::<usize>();
            let mut cmd = sized_cmd(name, 1 + rest.len(), bytes);
            cmd.arg(key);
            for arg in rest {
                cmd.arg(arg);
            }
            pipe.add_command(cmd).ignore();
        }
        // One slot (checked above on a cluster): the first key routes it.
        let route = stored.first().map_or(Route::All, |key| Route::Key(key));
        self.link
            .call(
                "MULTI",
                keys.first().copied(),
                route,
                |mut conn| async move { pipe.query_async::<()>(&mut conn).await },
            )
            .await
    }
}

#[async_trait]
impl KvTransactions for Core {
    fn store_name(&self) -> &str {
        &self.ctx().store
    }

    async fn run(&self, tx: &Transaction) -> Result<()> {
        let store = &self.ctx().store;
        check(store, tx)?;
        if tx.is_empty() {
            return Ok(());
        }
        if tx.ops.iter().all(|op| op.needs().is_none()) {
            return self.run_multi(tx).await;
        }
        let keys = tx.keys();
        let mut args: Vec<Vec<u8>> = vec![tx.len().to_string().into_bytes()];
        for op in &tx.ops {
            let (cmd, rest) = command(store, op)?;
            let index = keys.iter().position(|k| *k == op.key()).unwrap_or(0) + 1;
            args.push(cmd.as_bytes().to_vec());
            args.push(index.to_string().into_bytes());
            args.push(rest.len().to_string().into_bytes());
            args.extend(rest);
        }
        let (applied, failed): (i64, usize) = self.eval(&TRANSACTION_SCRIPT, &keys, &args).await?;
        if applied == 1 {
            return Ok(());
        }
        let key = failed
            .checked_sub(1)
            .and_then(|i| tx.ops.get(i))
            .map_or_else(|| keys[0].to_owned(), |op| op.key().to_owned());
        Err(KvError::WrongType {
            store: store.clone(),
            key,
        })
    }

    async fn update(
        &self,
        key: &str,
        ttl: Option<Ttl>,
        f: UpdateFn<'_>,
    ) -> Result<Option<Vec<u8>>> {
        let store = &self.ctx().store;
        let expiry: Vec<u8> = match ttl {
            None => b"keep".to_vec(),
            Some(ttl) => match ttl.to_millis(store, key)? {
                None => b"never".to_vec(),
                Some(ms) => ms.to_string().into_bytes(),
            },
        };
        let mut current: Option<Vec<u8>> = self.on_key("GET", key, |_| {}).await?;
        for _ in 0..UPDATE_ATTEMPTS {
            let next = f(current.as_deref());
            let args: [&[u8]; 5] = [
                if current.is_some() { b"1" } else { b"0" },
                current.as_deref().unwrap_or_default(),
                if next.is_some() { b"set" } else { b"del" },
                next.as_deref().unwrap_or_default(),
                &expiry,
            ];
            let reply: Vec<redis::Value> =
                self.eval(&COMPARE_AND_SET_SCRIPT, &[key], &args).await?;
            match reply.as_slice() {
                [redis::Value::Int(1)] => return Ok(next),
                [_] => current = None,
                [_, redis::Value::BulkString(now)] => current = Some(now.clone()),
                _ => {
                    return Err(KvError::Backend {
                        store: store.clone(),
                        op: "EVALSHA",
                        key: Some(key.to_owned()),
                        source: "unexpected reply of the compare-and-set script".into(),
                    });
                }
            }
        }
        Err(KvError::Conflict {
            store: store.clone(),
            key: key.to_owned(),
            attempts: UPDATE_ATTEMPTS,
        })
    }
}
