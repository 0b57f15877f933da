//! [`Transaction`] (a batch of writes over any data type) and
//! [`KvTransactions`] (running one all-or-nothing, and compare-and-set
//! [`update`](KvTransactions::update)), reached through
//! [`KvStore::transactions`](crate::KvStore::transactions).

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::store::{End, Ttl};

/// Attempts [`update`](KvTransactions::update) makes before giving up with
/// [`KvError::Conflict`](crate::KvError::Conflict).
pub const UPDATE_ATTEMPTS: u32 = 16;

/// The function [`update`](KvTransactions::update) computes the new value
/// with: the current bytes (`None`: missing) to the new ones (`None`:
/// delete the key). It may run more than once (once per attempt), so it
/// should compute and nothing else.
pub type UpdateFn<'a> = &'a (dyn Fn(Option<&[u8]>) -> Option<Vec<u8>> + Send + Sync);

/// All-or-nothing batches of writes, and compare-and-set, with the same
/// semantics on every backend. Reached as `store.transactions()`.
///
/// # Contract
///
/// | method | Redis | memory | reply |
/// |---|---|---|---|
/// | [`run`](Self::run) | one script (`EVALSHA`): checks every key's type, then writes; one `MULTI`/`EXEC` when every write takes a key of any type (`set`, `delete`, `expire`) | validate, then write, under the database lock | `Ok(())` once every write is applied |
/// | [`update`](Self::update) | `GET`, then a compare-and-set script, retried on conflict (at most [`UPDATE_ATTEMPTS`]) | read, compute, write under the lock | the value written (`None`: deleted) |
///
/// # [`run`](Self::run): all or nothing, in one round trip
///
/// The writes of a [`Transaction`] are applied in order as one atomic
/// step: no reader ever sees some of them without the others. Before
/// anything is written every write is checked against the type its key
/// will hold at that point (a `set` makes it a string, a `delete` makes it
/// missing, a hash write a hash, ...); a write to a key of another type
/// fails the whole transaction with
/// [`KvError::WrongType`](crate::KvError::WrongType) naming that key, and
/// nothing is written. (A `MULTI` could not promise that: Redis does not
/// roll back the commands of a `MULTI` around a failing one.) The check
/// takes a collection a write removes from as still of its type, even if
/// the removal empties it. An invalid TTL is
/// [`KvError::InvalidArgument`](crate::KvError::InvalidArgument) and a
/// NaN score too, before anything is sent.
///
/// Increments (`INCRBY`, `HINCRBY`, `ZINCRBY`) are not transaction writes:
/// whether one fails (not an integer, overflow) depends on values that a
/// check ahead of the writes would have to compute as Redis does. Each
/// increment is atomic on its own; for an increment that must land with
/// other writes, write a [`Script`](crate::Script).
///
/// On a Redis Cluster all the keys of a transaction must share a hash slot
/// (one hash tag, [`SlotTag`](crate::store::SlotTag)): other transactions
/// are [`KvError::CrossSlot`](crate::KvError::CrossSlot) naming the keys,
/// before anything is sent. An empty transaction sends nothing.
///
/// # [`update`](Self::update): compare-and-set on the shared connection
///
/// `update` never uses `WATCH`, which belongs to a connection, and the
/// store's connections are shared by every task. It reads the value,
/// computes the new one with `f` locally, and writes it with a script
/// that checks the value is still the one read; when another writer got
/// there first it reads again and retries, at most [`UPDATE_ATTEMPTS`]
/// times, then fails with [`KvError::Conflict`](crate::KvError::Conflict)
/// having written nothing. Concurrent updates of one key therefore never
/// lose one another's changes. With `ttl` `None` the key keeps its expiry
/// (a new key gets none); with `Some` the expiry is set or removed. The key
/// must hold a string (or be missing), else
/// [`KvError::WrongType`](crate::KvError::WrongType).
///
/// ```
/// use std::sync::Arc;
/// use kv_module::{KvStore, MemoryStore, Ttl};
/// use kv_module::store::{End, Transaction};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_module::Result<()> {
/// let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new("shop", "app"));
/// // Move an order from the pending set to the done list, atomically.
/// store.sets().add("{order}:pending", &[b"42"]).await?;
/// let tx = Transaction::new()
///     .set_remove("{order}:pending", &[b"42"])
///     .list_push("{order}:done", End::Back, &[b"42"])
///     .hash_set("{order}:42", "state", b"done")
///     .set("{order}:last", b"42", Ttl::Never);
/// store.transactions().run(&tx).await?;
/// assert_eq!(store.sets().count("{order}:pending").await?, 0);
///
/// let hits = store
///     .transactions()
///     .update("hits", None, &|current| {
///         let n: u64 = current.and_then(|b| std::str::from_utf8(b).ok()?.parse().ok()).unwrap_or(0);
///         Some((n + 1).to_string().into_bytes())
///     })
///     .await?;
/// assert_eq!(hits.as_deref(), Some(&b"1"[..]));
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait KvTransactions: Send + Sync {
    /// The name of the store these operations belong to (for errors).
    fn store_name(&self) -> &str;

    /// Applies every write of `tx`, in order, all or nothing, in one round
    /// trip.
    async fn run(&self, tx: &Transaction) -> Result<()>;

    /// Replaces the string at `key` with `f(current)` (`None` from `f`
    /// deletes it), as a compare-and-set retried on conflict; returns what
    /// was written.
    async fn update(&self, key: &str, ttl: Option<Ttl>, f: UpdateFn<'_>)
    -> Result<Option<Vec<u8>>>;
}

/// A batch of writes over any data type, applied all or nothing by
/// [`KvTransactions::run`]. Built by chaining; cheap to run many times.
///
/// Keys are caller keys, as everywhere; on a Redis Cluster they must share
/// one hash tag.
///
/// `Debug` shows the writes' commands and keys, never their values (they
/// may carry user data).
#[derive(Clone, Default, PartialEq)]
pub struct Transaction {
    pub(crate) ops: Vec<TxOp>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.ops
                    .iter()
                    .map(|op| format!("{} {}", op.command(), op.key())),
            )
            .finish()
    }
}

/// One write of a [`Transaction`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TxOp {
    /// `SET key value [PX]`: any type becomes this string.
    Set {
        key: String,
        value: Vec<u8>,
        ttl: Ttl,
    },
    /// `DEL key`.
    Delete { key: String },
    /// `PEXPIRE key ms`: a missing key stays missing.
    Expire { key: String, ttl: Duration },
    /// `HSET key field value …`.
    HashSet {
        key: String,
        fields: Vec<(String, Vec<u8>)>,
    },
    /// `HDEL key field …`.
    HashDelete { key: String, fields: Vec<String> },
    /// `SADD key member …`.
    SetAdd { key: String, members: Vec<Vec<u8>> },
    /// `SREM key member …`.
    SetRemove { key: String, members: Vec<Vec<u8>> },
    /// `ZADD key score member …`.
    SortedSetAdd {
        key: String,
        members: Vec<(f64, Vec<u8>)>,
    },
    /// `ZREM key member …`.
    SortedSetRemove { key: String, members: Vec<Vec<u8>> },
    /// `LPUSH`/`RPUSH key value …`.
    ListPush {
        key: String,
        end: End,
        values: Vec<Vec<u8>>,
    },
}

/// The type a key must hold for a write, or holds after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyType {
    None,
    String,
    Hash,
    List,
    Set,
    SortedSet,
}

impl TxOp {
    /// The key written.
    pub(crate) fn key(&self) -> &str {
        match self {
            Self::Set { key, .. }
            | Self::Delete { key }
            | Self::Expire { key, .. }
            | Self::HashSet { key, .. }
            | Self::HashDelete { key, .. }
            | Self::SetAdd { key, .. }
            | Self::SetRemove { key, .. }
            | Self::SortedSetAdd { key, .. }
            | Self::SortedSetRemove { key, .. }
            | Self::ListPush { key, .. } => key,
        }
    }

    /// The Redis command of this write.
    pub(crate) fn command(&self) -> &'static str {
        match self {
            Self::Set { .. } => "SET",
            Self::Delete { .. } => "DEL",
            Self::Expire { .. } => "PEXPIRE",
            Self::HashSet { .. } => "HSET",
            Self::HashDelete { .. } => "HDEL",
            Self::SetAdd { .. } => "SADD",
            Self::SetRemove { .. } => "SREM",
            Self::SortedSetAdd { .. } => "ZADD",
            Self::SortedSetRemove { .. } => "ZREM",
            Self::ListPush {
                end: End::Front, ..
            } => "LPUSH",
            Self::ListPush { end: End::Back, .. } => "RPUSH",
        }
    }

    /// The type the key must hold (or be missing) for this write; `None`
    /// for writes that take any type.
    pub(crate) fn needs(&self) -> Option<KeyType> {
        match self {
            Self::Set { .. } | Self::Delete { .. } | Self::Expire { .. } => None,
            Self::HashSet { .. } | Self::HashDelete { .. } => Some(KeyType::Hash),
            Self::SetAdd { .. } | Self::SetRemove { .. } => Some(KeyType::Set),
            Self::SortedSetAdd { .. } | Self::SortedSetRemove { .. } => Some(KeyType::SortedSet),
            Self::ListPush { .. } => Some(KeyType::List),
        }
    }

    /// The type the key holds after this write, as the transaction's check
    /// counts it; `None` for writes that leave it as it was.
    pub(crate) fn makes(&self) -> Option<KeyType> {
        match self {
            Self::Set { .. } => Some(KeyType::String),
            Self::Delete { .. } => Some(KeyType::None),
            Self::HashSet { .. } => Some(KeyType::Hash),
            Self::SetAdd { .. } => Some(KeyType::Set),
            Self::SortedSetAdd { .. } => Some(KeyType::SortedSet),
            Self::ListPush { .. } => Some(KeyType::List),
            Self::Expire { .. }
            | Self::HashDelete { .. }
            | Self::SetRemove { .. }
            | Self::SortedSetRemove { .. } => None,
        }
    }
}

/// Which write of a transaction fails the type check, given the types
/// its keys hold now (`current(key)`): the index of the first write to a
/// key of another type.
pub(crate) fn first_type_error(
    ops: &[TxOp],
    mut current: impl FnMut(&str) -> KeyType,
) -> Option<usize> {
    let mut types: Vec<(&str, KeyType)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let key = op.key();
        let held = match types.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                types.push((key, current(key)));
                types.len() - 1
            }
        };
        if let Some(need) = op.needs() {
            let now = types[held].1;
            if now != KeyType::None && now != need {
                return Some(i);
            }
        }
        if let Some(made) = op.makes() {
            types[held].1 = made;
        }
    }
    None
}

impl Transaction {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of writes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether it has no write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The distinct keys written, in first-written order.
    pub fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        for op in &self.ops {
            if !keys.contains(&op.key()) {
                keys.push(op.key());
            }
        }
        keys
    }

    fn push(mut self, op: TxOp) -> Self {
        self.ops.push(op);
        self
    }

    /// `SET key value` with `ttl` (replacing a value of any type).
    pub fn set(self, key: &str, value: &[u8], ttl: Ttl) -> Self {
        self.push(TxOp::Set {
            key: key.to_owned(),
            value: value.to_vec(),
            ttl,
        })
    }

    /// `DEL key` (of any type).
    pub fn delete(self, key: &str) -> Self {
        self.push(TxOp::Delete {
            key: key.to_owned(),
        })
    }

    /// `PEXPIRE key ttl` (of any type; a missing key stays missing).
    pub fn expire(self, key: &str, ttl: Duration) -> Self {
        self.push(TxOp::Expire {
            key: key.to_owned(),
            ttl,
        })
    }

    /// `HSET key field value`.
    pub fn hash_set(self, key: &str, field: &str, value: &[u8]) -> Self {
        self.hash_set_many(key, &[(field, value)])
    }

    /// `HSET key field value …`; nothing for an empty list.
    pub fn hash_set_many(self, key: &str, fields: &[(&str, &[u8])]) -> Self {
        if fields.is_empty() {
            return self;
        }
        self.push(TxOp::HashSet {
            key: key.to_owned(),
            fields: fields
                .iter()
                .map(|(f, v)| ((*f).to_owned(), v.to_vec()))
                .collect(),
        })
    }

    /// `HDEL key field …`; nothing for an empty list.
    pub fn hash_delete(self, key: &str, fields: &[&str]) -> Self {
        if fields.is_empty() {
            return self;
        }
        self.push(TxOp::HashDelete {
            key: key.to_owned(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        })
    }

    /// `SADD key member …`; nothing for an empty list.
    pub fn set_add(self, key: &str, members: &[&[u8]]) -> Self {
        if members.is_empty() {
            return self;
        }
        self.push(TxOp::SetAdd {
            key: key.to_owned(),
            members: members.iter().map(|m| m.to_vec()).collect(),
        })
    }

    /// `SREM key member …`; nothing for an empty list.
    pub fn set_remove(self, key: &str, members: &[&[u8]]) -> Self {
        if members.is_empty() {
            return self;
        }
        self.push(TxOp::SetRemove {
            key: key.to_owned(),
            members: members.iter().map(|m| m.to_vec()).collect(),
        })
    }

    /// `ZADD key score member …`; nothing for an empty list.
    pub fn sorted_set_add(self, key: &str, members: &[(f64, &[u8])]) -> Self {
        if members.is_empty() {
            return self;
        }
        self.push(TxOp::SortedSetAdd {
            key: key.to_owned(),
            members: members.iter().map(|(s, m)| (*s, m.to_vec())).collect(),
        })
    }

    /// `ZREM key member …`; nothing for an empty list.
    pub fn sorted_set_remove(self, key: &str, members: &[&[u8]]) -> Self {
        if members.is_empty() {
            return self;
        }
        self.push(TxOp::SortedSetRemove {
            key: key.to_owned(),
            members: members.iter().map(|m| m.to_vec()).collect(),
        })
    }

    /// `LPUSH`/`RPUSH key value …`; nothing for an empty list.
    pub fn list_push(self, key: &str, end: End, values: &[&[u8]]) -> Self {
        if values.is_empty() {
            return self;
        }
        self.push(TxOp::ListPush {
            key: key.to_owned(),
            end,
            values: values.iter().map(|v| v.to_vec()).collect(),
        })
    }
}

/// Checks the arguments of every write before anything is sent: TTLs
/// (as [`Ttl::to_millis`] does) and scores (no NaN).
pub(crate) fn check(store: &std::sync::Arc<str>, tx: &Transaction) -> Result<()> {
    for op in &tx.ops {
        match op {
            TxOp::Set { key, ttl, .. } => {
                ttl.to_millis(store, key)?;
            }
            TxOp::Expire { key, ttl } => {
                crate::store::duration_millis(*ttl, store, key)?;
            }
            TxOp::SortedSetAdd { key, members } => {
                for (score, _) in members {
                    crate::store::sorted_sets::check_score(store, key, *score)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_check_follows_the_writes_in_order() {
        let none = |_: &str| KeyType::None;
        let tx = Transaction::new()
            .set("a", b"1", Ttl::Never)
            .hash_set("a", "f", b"v");
        assert_eq!(first_type_error(&tx.ops, none), Some(1));
        let tx = Transaction::new()
            .set("a", b"1", Ttl::Never)
            .delete("a")
            .hash_set("a", "f", b"v")
            .hash_delete("a", &["f"])
            .hash_set("a", "g", b"v");
        assert_eq!(first_type_error(&tx.ops, none), None);
        let list = |key: &str| {
            if key == "l" {
                KeyType::List
            } else {
                KeyType::None
            }
        };
        let tx = Transaction::new()
            .set_add("s", &[b"m"])
            .list_push("l", End::Back, &[b"x"])
            .set_add("l", &[b"m"]);
        assert_eq!(first_type_error(&tx.ops, list), Some(2));
        let tx = Transaction::new()
            .set("l", b"v", Ttl::Never)
            .expire("l", Duration::from_secs(1));
        assert_eq!(first_type_error(&tx.ops, list), None);
        assert_eq!(tx.keys(), vec!["l"]);
        assert!(Transaction::new().hash_set_many("h", &[]).is_empty());
        let tx = Transaction::new()
            .set("k", b"secret", Ttl::Never)
            .list_push("l", End::Front, &[b"secret"]);
        assert_eq!(format!("{tx:?}"), r#"["SET k", "LPUSH l"]"#);
    }
}
