//! [`Core`]: what a [`MemoryStore`](super::MemoryStore) is (its name,
//! prefix, server, database and closed flag), and the type the data-type
//! traits ([`KvHashes`](crate::KvHashes), ...) are implemented on.
//!
//! The traits live on this inner value rather than on `MemoryStore`
//! itself so that their method names (`get`, `set`, `delete`, ...) never
//! clash with [`KvStore`](crate::KvStore)'s or
//! [`KvStoreExt`](crate::KvStoreExt)'s on the store: callers reach them
//! through `store.hashes()`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::server::{Db, DbIndex, MemoryServer};
use super::value::Collection;
use crate::error::{KvError, Result};
use crate::store::KeySpace;

/// What [`KvError::Unavailable`] names as the address of a memory store.
pub(crate) const ADDR: &str = "memory";

/// One memory store's identity and its way to its database.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) name: Arc<str>,
    pub(crate) space: KeySpace,
    pub(crate) server: MemoryServer,
    pub(crate) db: DbIndex,
    pub(crate) closed: AtomicBool,
}

impl Core {
    /// Fails once the store is closed.
    ///
    /// Checked where the Redis store would first need its connection
    /// (after validating arguments, after short-circuiting empty batches),
    /// so that both backends report the same error for the same call.
    pub(crate) fn ensure_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(KvError::Unavailable {
                store: self.name.clone(),
                addr: Arc::from(ADDR),
                source: "the store is closed".into(),
            });
        }
        Ok(())
    }

    /// Locks this store's database.
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Db> {
        self.server.lock(self.db)
    }

    /// The deadline `millis` from `now`, `None` for no expiry.
    pub(crate) fn deadline(
        &self,
        now: Instant,
        millis: Option<u64>,
        key: &str,
    ) -> Result<Option<Instant>> {
        let Some(millis) = millis else {
            return Ok(None);
        };
        // `MAX_TTL` keeps this far inside the clock's range; the check
        // only turns an impossible overflow into an error, not a panic.
        now.checked_add(Duration::from_millis(millis))
            .map(Some)
            .ok_or_else(|| KvError::InvalidArgument {
                store: self.name.clone(),
                key: Some(key.to_owned()),
                reason: "the TTL is beyond the clock's range".to_owned(),
            })
    }

    /// `WRONGTYPE` for the caller's `key`.
    pub(crate) fn wrong_type(&self, key: &str) -> KvError {
        KvError::WrongType {
            store: self.name.clone(),
            key: key.to_owned(),
        }
    }

    /// Runs `f` on the collection of type `C` at `key` under the lock
    /// (`None` for a missing key, which reads as empty):
    /// [`KvError::WrongType`] when the key holds another type.
    pub(crate) fn read<C: Collection, R>(
        &self,
        key: &str,
        f: impl FnOnce(Option<&C>) -> R,
    ) -> Result<R> {
        self.ensure_open()?;
        let stored = self.space.stored_key(key);
        let db = self.lock();
        match db.get(&stored, Instant::now()) {
            None => Ok(f(None)),
            Some(entry) => match C::of(&entry.value) {
                Some(collection) => Ok(f(Some(collection))),
                None => Err(self.wrong_type(key)),
            },
        }
    }

    /// Runs `f` on the collection of type `C` at `key` under the lock, as
    /// a Redis write command does: a missing key starts empty (stored
    /// without expiry only if `f` leaves something in it), an existing one
    /// keeps its expiry, and a collection `f` leaves empty is removed.
    /// [`KvError::WrongType`] when the key holds another type; an error
    /// from `f` must mean `f` changed nothing.
    pub(crate) fn update<C: Collection, R>(
        &self,
        key: &str,
        f: impl FnOnce(&mut C) -> Result<R>,
    ) -> Result<R> {
        self.ensure_open()?;
        let stored = self.space.stored_key(key);
        let mut db = self.lock();
        let now = Instant::now();
        self.update_locked(&mut db, key, &stored, now, f)
    }

    /// [`update`](Self::update) on a database already locked (several
    /// keys in one atomic step).
    pub(crate) fn update_locked<C: Collection, R>(
        &self,
        db: &mut Db,
        key: &str,
        stored: &str,
        now: Instant,
        f: impl FnOnce(&mut C) -> Result<R>,
    ) -> Result<R> {
        match db.value_mut(stored, now) {
            Some(value) => {
                let Some(collection) = C::of_mut(value) else {
                    return Err(self.wrong_type(key));
                };
                let reply = f(collection)?;
                if collection.is_empty() {
                    db.remove(stored, now);
                }
                Ok(reply)
            }
            None => {
                let mut collection = C::default();
                let reply = f(&mut collection)?;
                if !collection.is_empty() {
                    db.insert(stored.to_owned(), collection.into_value(), None, now);
                }
                Ok(reply)
            }
        }
    }
}
