//! [`KvLists`] on the memory backend: each call one step under the
//! database lock; a blocking pop sleeps until a push wakes it.

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::core::Core;
use crate::error::Result;
use crate::store::lists::{check_blocking, resolve_range};
use crate::store::{End, KvLists};

type List = VecDeque<Vec<u8>>;

fn pop_one(list: &mut List, end: End) -> Option<Vec<u8>> {
    match end {
        End::Front => list.pop_front(),
        End::Back => list.pop_back(),
    }
}

impl Core {
    /// Wakes the blocking pops waiting on this store's database. Called
    /// after the lock is released, by every write that may add to a list.
    pub(crate) fn wake_poppers(&self) {
        self.server.pushed(self.db).notify_waiters();
    }

    /// One non-blocking attempt of a blocking pop: the first of `keys`
    /// holding a list gives up one value.
    fn try_pop_first(&self, keys: &[&str], end: End) -> Result<Option<(String, Vec<u8>)>> {
        self.ensure_open()?;
        let mut db = self.lock();
        let now = Instant::now();
        for key in keys {
            let stored = self.space.stored_key(key);
            // A missing key has nothing to pop: `update` leaves it missing.
            let popped = self.update_locked(&mut db, key, &stored, now, |list: &mut List| {
                Ok(pop_one(list, end))
            })?;
            if let Some(value) = popped {
                return Ok(Some(((*key).to_owned(), value)));
            }
        }
        Ok(None)
    }
}

#[async_trait]
impl KvLists for Core {
    fn store_name(&self) -> &str {
        &self.name
    }

    async fn push(&self, key: &str, end: End, values: &[&[u8]]) -> Result<u64> {
        let len = self.update(key, |list: &mut List| {
            for value in values {
                match end {
                    End::Front => list.push_front(value.to_vec()),
                    End::Back => list.push_back(value.to_vec()),
                }
            }
            Ok(list.len() as u64)
        })?;
        if !values.is_empty() {
            self.wake_poppers();
        }
        Ok(len)
    }

    async fn pop(&self, key: &str, end: End, count: usize) -> Result<Vec<Vec<u8>>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        self.update(key, |list: &mut List| {
            Ok(std::iter::from_fn(|| pop_one(list, end))
                .take(count)
                .collect())
        })
    }

    async fn range(&self, key: &str, start: i64, stop: i64) -> Result<Vec<Vec<u8>>> {
        self.read(key, |list: Option<&List>| {
            let Some(list) = list else {
                return Vec::new();
            };
            match resolve_range(start, stop, list.len()) {
                Some((start, stop)) => list.range(start..=stop).cloned().collect(),
                None => Vec::new(),
            }
        })
    }

    async fn len(&self, key: &str) -> Result<u64> {
        self.read(key, |list: Option<&List>| {
            list.map_or(0, |list| list.len() as u64)
        })
    }

    async fn trim(&self, key: &str, start: i64, stop: i64) -> Result<()> {
        self.update(key, |list: &mut List| {
            match resolve_range(start, stop, list.len()) {
                Some((start, stop)) => {
                    list.truncate(stop + 1);
                    list.drain(..start);
                }
                None => list.clear(),
            }
            Ok(())
        })
    }

    /// Registers for the next push *before* each attempt, so that a push
    /// landing between an empty attempt and the wait still wakes it.
    async fn blocking_pop(
        &self,
        keys: &[&str],
        end: End,
        timeout: Duration,
    ) -> Result<Option<(String, Vec<u8>)>> {
        check_blocking(&self.name, keys, timeout)?;
        let deadline = Instant::now() + timeout;
        let pushed = self.server.pushed(self.db);
        loop {
            let notified = pushed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(popped) = self.try_pop_first(keys, end)? {
                return Ok(Some(popped));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(None);
            }
        }
    }
}
