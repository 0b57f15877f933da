//! The write path of [`KvCachedRepository`]: `create`, `update`, `delete` and
//! `invalidate`. Each writes the repository (`invalidate` excepted) and
//! then clears the record's keys or, in write-through mode, replaces the
//! entry; updates and deletes are fenced by a write marker, so that no
//! load that began before the write can put the old value back.

use std::future::Future;

use super::config::WriteMode;
use super::entry::{encode_value, write_marker};
use super::keys::RecordKeys;
use super::kv_cached_repository::KvCachedRepository;
use super::metrics::Count;
use super::random;
use super::repository::Repository;
use super::scripts::{FINISH_WRITE, MARK};
use crate::config::millis;
use crate::error::KvError;
use crate::store::{ScriptArgs, ScriptValue};

impl<R: Repository> KvCachedRepository<R> {
    /// Creates a record in the repository, then clears whatever the cache
    /// holds for its key — above all a cached "not found" from a `get`
    /// before the record existed — so the next `get` finds the record.
    /// Returns the repository's key and record.
    ///
    /// The value is not written through, whatever the [`WriteMode`]: the
    /// key is known only once the repository has it, too late to fence
    /// it against a concurrent update of the new record with a write
    /// marker; the next `get` loads it. A load of the key that began
    /// before the create (and found nothing) does not write its "not
    /// found" back: clearing the key ends its ticket.
    ///
    /// # Errors
    ///
    /// The repository's error, unchanged (the cache is then left alone).
    /// A failing store never fails a create: the failure is counted and
    /// logged, and a "not found" cached before may then be served until
    /// it expires (`negative_ttl`).
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(cache = %self.name()),
        err(level = "debug")
    )]
    pub async fn create(&self, new: R::New) -> Result<(R::Key, R::Value), R::Error> {
        let (key, value) = self.repository.create(new).await?;
        let keys = self.record_keys(self.entry_key(&key));
        if self.clear(&keys).await.is_err() {
            tracing::warn!(
                cache = self.name(),
                key = keys.entry,
                negative_ttl = ?self.config.negative_ttl,
                "cannot clear the key of a created record: a \"not found\" cached \
                 before may be served until it expires"
            );
        }
        self.state.flights.forget(&keys.entry);
        Ok((key, value))
    }

    /// Applies `update` in the repository, then — by the configured
    /// [`WriteMode`] — caches the record the repository returned or
    /// invalidates the entry. Returns the repository's result.
    ///
    /// Before the repository is written, a write marker replaces the
    /// key's load ticket and the entry is deleted, so that no reader
    /// keeps the old value while the write is in progress and no load
    /// writes a value back until it is done. An update cancelled half-way
    /// (a client that hung up) therefore leaves at worst the marker,
    /// which expires after `tombstone_ttl`, never the old value. When the
    /// store refuses the marker (out of memory), the entry and the mark
    /// are deleted instead (`DEL` is always allowed), which keeps the
    /// same promise.
    ///
    /// # Errors
    ///
    /// The repository's error, unchanged (the entry is then invalidated,
    /// as the repository's state is unknown). A failing store never fails
    /// an update: the repository is written anyway, and the failure is
    /// counted and logged. When the store did not answer the marker at
    /// all (unreachable, timed out), the invalidation after the write runs
    /// on a task of its own, so that the update waits for the store at
    /// most once.
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(cache = %self.name(), key = %key),
        err(level = "debug")
    )]
    pub async fn update(&self, key: &R::Key, update: R::Update) -> Result<R::Value, R::Error> {
        let write_through = self.config.write_mode == WriteMode::WriteThrough;
        self.fenced(
            key,
            || self.repository.update(key, update),
            |value| write_through.then_some(value),
        )
        .await
    }

    /// Deletes the record in the repository, then invalidates the entry
    /// (fenced by a write marker, as for [`update`](Self::update)).
    /// Returns whether the record existed. Afterwards none of the key's
    /// store keys exists; the next `get` caches "not found".
    ///
    /// # Errors
    ///
    /// The repository's error, unchanged. As for
    /// [`update`](Self::update), a failing store never fails a delete.
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(cache = %self.name(), key = %key),
        err(level = "debug")
    )]
    pub async fn delete(&self, key: &R::Key) -> Result<bool, R::Error> {
        self.fenced(key, || self.repository.delete(key), |_| None)
            .await
    }

    /// Invalidates the entry of `key`, for a change made to the
    /// repository outside this cache: deletes the entry, a cached "not
    /// found", the key's load ticket (so no load in flight writes back)
    /// and its lease, in one `UNLINK`.
    ///
    /// # Errors
    ///
    /// The store's error (also counted and logged): the entry may then
    /// still be served until it expires.
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(cache = %self.name(), key = %key),
        err(level = "debug")
    )]
    pub async fn invalidate(&self, key: &R::Key) -> Result<(), KvError> {
        let keys = self.record_keys(self.entry_key(key));
        let result = self.clear(&keys).await;
        self.state.flights.forget(&keys.entry);
        result
    }

    /// A repository write fenced by a write marker: marks the record
    /// ([`mark_writing`](Self::mark_writing)), runs `write`, then writes
    /// through the value `through` picks from its result (when the marker
    /// is still in place), or else invalidates the record.
    async fn fenced<T, Fut>(
        &self,
        key: &R::Key,
        write: impl FnOnce() -> Fut,
        through: impl FnOnce(&T) -> Option<&R::Value>,
    ) -> Result<T, R::Error>
    where
        Fut: Future<Output = Result<T, R::Error>>,
    {
        let keys = self.record_keys(self.entry_key(key));
        let mark = self.mark_writing(&keys).await;
        let result = write().await;
        match (result.as_ref().ok().and_then(through), &mark) {
            (Some(value), Ok(Some(marker))) => {
                self.finish_write_through(&keys, marker, value).await;
            }
            _ => self.finish_invalidate(&keys, &mark).await,
        }
        self.state.flights.forget(&keys.entry);
        result
    }

    /// Before a repository write: a write marker replaces the key's mark
    /// (ending the tickets of loads in flight) and the entry and any
    /// cached "not found" are deleted. `Ok(Some(marker))` when the marker
    /// was written, `Ok(None)` when the store refused it (out of memory:
    /// the mark was deleted instead), `Err` when the store failed
    /// (counted and logged).
    async fn mark_writing(&self, keys: &RecordKeys) -> Result<Option<Vec<u8>>, KvError> {
        let name = self.name();
        let marker = write_marker(&random::token());
        let args = ScriptArgs::new()
            .bytes(marker.clone())
            .uint(millis(self.config.tombstone_ttl));
        match self.store.run_script(&MARK, &keys.record(), &args).await {
            Ok(ScriptValue::Int(1)) => {
                self.state.counters.store_ok(name);
                Ok(Some(marker))
            }
            Ok(_) => {
                self.state.counters.count(&self.name, Count::StoreError);
                tracing::warn!(
                    cache = name,
                    key = keys.entry,
                    "the store refused the write marker (out of memory?): \
                     the entry and the load tickets were deleted instead"
                );
                Ok(None)
            }
            Err(err) => {
                self.store_failed("mark write", &keys.entry, &err);
                Err(err)
            }
        }
    }

    /// After a write-through update: the new value replaces the marker,
    /// unless something else replaced the marker meanwhile (then the
    /// entry is deleted).
    async fn finish_write_through(&self, keys: &RecordKeys, marker: &[u8], value: &R::Value) {
        let counters = &self.state.counters;
        let name = self.name();
        let entry_key = keys.entry.as_str();
        let encoded = match encode_value(value) {
            Ok(bytes) => bytes,
            Err(err) => {
                counters.count(&self.name, Count::StoreError);
                tracing::warn!(cache = name, key = entry_key, error = %err, "cannot encode the updated value; invalidating");
                return self.invalidate_after_write(keys, true).await;
            }
        };
        let args = ScriptArgs::new()
            .bytes(marker.to_vec())
            .bytes(encoded)
            .uint(self.jittered_ms(millis(self.config.ttl)));
        match self
            .store
            .run_script(&FINISH_WRITE, &keys.all(), &args)
            .await
        {
            Ok(ScriptValue::Int(1)) => counters.store_ok(name),
            Ok(ScriptValue::Int(2)) => {
                counters.count(&self.name, Count::StoreError);
                tracing::warn!(
                    cache = name,
                    key = entry_key,
                    "the store refused the updated value (out of memory?): invalidated instead"
                );
            }
            Ok(_) => tracing::debug!(
                cache = name,
                key = entry_key,
                "a concurrent write or invalidation replaced the marker: invalidated instead"
            ),
            Err(err) => {
                self.store_failed("write through", entry_key, &err);
                self.marker_left(entry_key);
            }
        }
    }

    /// After a write: the record's keys are deleted. When the store did
    /// not even answer the marker (`mark` failed as unavailable), on a
    /// task of its own: the request does not wait for the store a second
    /// time, and the invalidation still happens if the store comes back.
    async fn finish_invalidate(&self, keys: &RecordKeys, mark: &Result<Option<Vec<u8>>, KvError>) {
        if mark.as_ref().is_err_and(KvError::is_unavailable) {
            let cache = self.clone();
            let keys = keys.clone();
            tokio::spawn(async move { cache.invalidate_after_write(&keys, false).await });
            return;
        }
        self.invalidate_after_write(keys, matches!(mark, Ok(Some(_))))
            .await;
    }

    /// Deletes the record's keys after a write; `marked` when the write's
    /// marker is in the store (it then keeps loads from writing back
    /// until it expires, should this deletion fail).
    async fn invalidate_after_write(&self, keys: &RecordKeys, marked: bool) {
        if self.clear(keys).await.is_ok() {
            return;
        }
        if marked {
            self.marker_left(&keys.entry);
        } else {
            tracing::warn!(
                cache = self.name(),
                key = keys.entry,
                ttl = ?self.config.ttl,
                "cannot invalidate after a write: if the store kept the entry, \
                 it may serve the previous value until it expires"
            );
        }
    }

    fn marker_left(&self, entry_key: &str) {
        tracing::debug!(
            cache = self.name(),
            key = entry_key,
            expires_in = ?self.config.tombstone_ttl,
            "the write marker stays until it expires; loads are not written back meanwhile"
        );
    }

    /// Deletes every key of the record in one `UNLINK` (which a full
    /// Redis still runs): the entry, a cached "not found", the mark (a
    /// load in flight began before this and will not write back) and,
    /// with the lease enabled, the lease (the processes waiting for that
    /// load need not). A failure is counted and logged.
    async fn clear(&self, keys: &RecordKeys) -> Result<(), KvError> {
        match self.store.delete_keys(&keys.all()).await {
            Ok(_) => {
                self.state.counters.store_ok(self.name());
                Ok(())
            }
            Err(err) => {
                self.store_failed("invalidate", &keys.entry, &err);
                Err(err)
            }
        }
    }
}
