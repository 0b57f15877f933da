//! [`KvTransactions`] on the memory backend: a transaction is checked,
//! then applied, under the database lock; `update` reads, computes and
//! writes under it, so it never conflicts.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::time::Instant;

use super::core::Core;
use super::server::Db;
use super::value::{SortedSet, Value};
use crate::error::Result;
use crate::store::transaction::{KeyType, TxOp, check, first_type_error};
use crate::store::{End, KvTransactions, Transaction, Ttl, UpdateFn, duration_millis};

fn key_type(db: &Db, stored: &str, now: Instant) -> KeyType {
    match db.get(stored, now).map(|entry| &entry.value) {
        None => KeyType::None,
        Some(Value::String(_)) => KeyType::String,
        Some(Value::Hash(_)) => KeyType::Hash,
        Some(Value::List(_)) => KeyType::List,
        Some(Value::Set(_)) => KeyType::Set,
        Some(Value::SortedSet(_)) => KeyType::SortedSet,
    }
}

impl Core {
    /// Applies one checked write.
    fn apply(&self, db: &mut Db, op: &TxOp, now: Instant) -> Result<()> {
        let key = op.key();
        let stored = self.space.stored_key(key);
        match op {
            TxOp::Set { value, ttl, .. } => {
                let deadline = self.deadline(now, ttl.to_millis(&self.name, key)?, key)?;
                db.insert(
                    stored,
                    Value::String(Arc::from(value.as_slice())),
                    deadline,
                    now,
                );
            }
            TxOp::Delete { .. } => {
                db.remove(&stored, now);
            }
            TxOp::Expire { ttl, .. } => {
                let ms = duration_millis(*ttl, &self.name, key)?;
                let deadline = self.deadline(now, Some(ms), key)?;
                db.set_expiry(&stored, deadline, now);
            }
            TxOp::HashSet { fields, .. } => {
                self.update_locked(db, key, &stored, now, |h: &mut BTreeMap<_, _>| {
                    for (field, value) in fields {
                        h.insert(field.as_bytes().to_vec(), value.clone());
                    }
                    Ok(())
                })?;
            }
            TxOp::HashDelete { fields, .. } => {
                self.update_locked(
                    db,
                    key,
                    &stored,
                    now,
                    |h: &mut BTreeMap<Vec<u8>, Vec<u8>>| {
                        for field in fields {
                            h.remove(field.as_bytes());
                        }
                        Ok(())
                    },
                )?;
            }
            TxOp::SetAdd { members, .. } => {
                self.update_locked(db, key, &stored, now, |s: &mut BTreeSet<_>| {
                    s.extend(members.iter().cloned());
                    Ok(())
                })?;
            }
            TxOp::SetRemove { members, .. } => {
                self.update_locked(db, key, &stored, now, |s: &mut BTreeSet<Vec<u8>>| {
                    for member in members {
                        s.remove(member);
                    }
                    Ok(())
                })?;
            }
            TxOp::SortedSetAdd { members, .. } => {
                self.update_locked(db, key, &stored, now, |z: &mut SortedSet| {
                    for (score, member) in members {
                        z.insert(member.clone(), *score);
                    }
                    Ok(())
                })?;
            }
            TxOp::SortedSetRemove { members, .. } => {
                self.update_locked(db, key, &stored, now, |z: &mut SortedSet| {
                    for member in members {
                        z.remove(member);
                    }
                    Ok(())
                })?;
            }
            TxOp::ListPush { end, values, .. } => {
                self.update_locked(db, key, &stored, now, |l: &mut VecDeque<Vec<u8>>| {
                    for value in values {
                        match end {
                            End::Front => l.push_front(value.clone()),
                            End::Back => l.push_back(value.clone()),
                        }
                    }
                    Ok(())
                })?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl KvTransactions for Core {
    fn store_name(&self) -> &str {
        &self.name
    }

    async fn run(&self, tx: &Transaction) -> Result<()> {
        check(&self.name, tx)?;
        if tx.is_empty() {
            return Ok(());
        }
        self.ensure_open()?;
        {
            let mut db = self.lock();
            let now = Instant::now();
            let failed = first_type_error(&tx.ops, |key| {
                key_type(&db, &self.space.stored_key(key), now)
            });
            if let Some(i) = failed {
                return Err(self.wrong_type(tx.ops[i].key()));
            }
            // Checked: no write below can fail on a type, and the TTLs
            // and scores were checked before the lock.
            for op in &tx.ops {
                self.apply(&mut db, op, now)?;
            }
            // Blocking pops are served once the whole transaction is in,
            // as Redis serves them after the script.
            for op in &tx.ops {
                if let TxOp::ListPush { key, .. } = op {
                    self.serve_poppers(&mut db, &self.space.stored_key(key), now);
                }
            }
        }
        Ok(())
    }

    async fn update(
        &self,
        key: &str,
        ttl: Option<Ttl>,
        f: UpdateFn<'_>,
    ) -> Result<Option<Vec<u8>>> {
        let millis = match ttl {
            Some(ttl) => Some(ttl.to_millis(&self.name, key)?),
            None => None,
        };
        self.ensure_open()?;
        let stored = self.space.stored_key(key);
        let mut db = self.lock();
        let now = Instant::now();
        let current = match db.get(&stored, now) {
            None => None,
            Some(entry) => match entry.value.as_string() {
                Some(bytes) => Some(Arc::clone(bytes)),
                None => return Err(self.wrong_type(key)),
            },
        };
        // `f` runs under the lock: it is a plain function of the bytes, and
        // nothing else can interleave, so there is never a conflict.
        let next = f(current.as_deref());
        match &next {
            None => {
                db.remove(&stored, now);
            }
            Some(bytes) => {
                let value = Value::String(Arc::from(bytes.as_slice()));
                match millis {
                    // Keep the expiry of an existing key (`KEEPTTL`).
                    None => match db.value_mut(&stored, now) {
                        Some(slot) => *slot = value,
                        None => {
                            db.insert(stored, value, None, now);
                        }
                    },
                    Some(millis) => {
                        let deadline = self.deadline(now, millis, key)?;
                        db.insert(stored, value, deadline, now);
                    }
                }
            }
        }
        Ok(next)
    }
}
