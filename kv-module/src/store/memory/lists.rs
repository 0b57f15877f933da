//! [`KvLists`] on the memory backend: each call one step under the
//! database lock; a blocking pop sleeps until a push wakes it.

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::core::Core;
use super::server::{Db, Popper};
use super::value::Value;
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
    /// Hands values pushed to `stored` to the blocking pops waiting on it,
    /// earliest first, one value each, as Redis serves blocked clients
    /// right after the command that pushed; wakes them if any was served.
    /// Called under the lock by every write that pushes to a list.
    pub(crate) fn serve_poppers(&self, db: &mut Db, stored: &str, now: Instant) {
        let mut served = false;
        loop {
            let waiting = db.poppers.iter().find_map(|(ticket, popper)| {
                let at = popper.keys.iter().position(|key| key == stored);
                match (&popper.served, at) {
                    (None, Some(at)) => Some((*ticket, at, popper.end)),
                    _ => None,
                }
            });
            let Some((ticket, at, end)) = waiting else {
                break;
            };
            let value = match db.value_mut(stored, now) {
                Some(Value::List(list)) => pop_one(list, end),
                _ => None,
            };
            let Some(value) = value else {
                break;
            };
            if matches!(db.value_mut(stored, now), Some(Value::List(list)) if list.is_empty()) {
                db.remove(stored, now);
            }
            if let Some(popper) = db.poppers.get_mut(&ticket) {
                popper.served = Some((at, value));
            }
            served = true;
        }
        if served {
            self.server.pushed(self.db).notify_waiters();
        }
    }

    /// Pops at once from the first of `keys` with a value; otherwise
    /// registers a waiter and returns its ticket.
    fn pop_or_wait(
        &self,
        keys: &[&str],
        stored: &[String],
        end: End,
    ) -> Result<std::result::Result<(String, Vec<u8>), u64>> {
        self.ensure_open()?;
        let mut db = self.lock();
        let now = Instant::now();
        for (key, stored_key) in keys.iter().zip(stored) {
            let popped = self.update_locked(&mut db, key, stored_key, now, |list: &mut List| {
                Ok(pop_one(list, end))
            })?;
            if let Some(value) = popped {
                return Ok(Ok(((*key).to_owned(), value)));
            }
        }
        let ticket = db.next_popper;
        db.next_popper = db.next_popper.wrapping_add(1);
        db.poppers.insert(
            ticket,
            Popper {
                keys: stored.to_vec(),
                end,
                served: None,
            },
        );
        Ok(Err(ticket))
    }
}

/// A registered waiter: removed when the pop ends, however it ends. A
/// value handed to a pop that is dropped before taking it goes back where
/// it came from (and to the next waiter).
struct Waiting<'a> {
    core: &'a Core,
    ticket: u64,
}

impl Waiting<'_> {
    /// Takes the value a push handed over, if any, and leaves the queue.
    fn finish(&self) -> Option<(usize, Vec<u8>)> {
        let mut db = self.core.lock();
        db.poppers
            .remove(&self.ticket)
            .and_then(|popper| popper.served)
    }

    /// The value a push handed over, without leaving the queue.
    fn served(&self) -> bool {
        let db = self.core.lock();
        db.poppers
            .get(&self.ticket)
            .is_some_and(|popper| popper.served.is_some())
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut db = self.core.lock();
        let Some(popper) = db.poppers.remove(&self.ticket) else {
            return;
        };
        let Some((at, value)) = popper.served else {
            return;
        };
        // Cancelled after being served: give the value back.
        let Some(stored) = popper.keys.get(at).cloned() else {
            return;
        };
        let now = Instant::now();
        // Back at the end it was taken from.
        let back = popper.end;
        let restored = match db.value_mut(&stored, now) {
            Some(Value::List(list)) => {
                match back {
                    End::Front => list.push_front(value),
                    End::Back => list.push_back(value),
                }
                true
            }
            Some(_) => false,
            None => {
                db.insert(
                    stored.clone(),
                    Value::List(VecDeque::from([value])),
                    None,
                    now,
                );
                true
            }
        };
        if restored {
            self.core.serve_poppers(&mut db, &stored, now);
        }
    }
}

#[async_trait]
impl KvLists for Core {
    fn store_name(&self) -> &str {
        &self.name
    }

    async fn push(&self, key: &str, end: End, values: &[&[u8]]) -> Result<u64> {
        self.ensure_open()?;
        let stored = self.space.stored_key(key);
        let mut db = self.lock();
        let now = Instant::now();
        let len = self.update_locked(&mut db, key, &stored, now, |list: &mut List| {
            for value in values {
                match end {
                    End::Front => list.push_front(value.to_vec()),
                    End::Back => list.push_back(value.to_vec()),
                }
            }
            Ok(list.len() as u64)
        })?;
        // The reply is the length after the push, before waiting pops
        // take their values (as `LPUSH` replies on Redis).
        self.serve_poppers(&mut db, &stored, now);
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

    /// Pops at once when it can; otherwise queues a waiter that a push
    /// serves (earliest waiter first) and wakes. Each wait registers for
    /// the wake-up *before* checking, so none is missed.
    async fn blocking_pop(
        &self,
        keys: &[&str],
        end: End,
        timeout: Duration,
    ) -> Result<Option<(String, Vec<u8>)>> {
        check_blocking(&self.name, keys, timeout)?;
        let deadline = Instant::now() + timeout;
        let stored: Vec<String> = keys.iter().map(|k| self.space.stored_key(k)).collect();
        let ticket = match self.pop_or_wait(keys, &stored, end)? {
            Ok(popped) => return Ok(Some(popped)),
            Err(ticket) => ticket,
        };
        let waiting = Waiting { core: self, ticket };
        let pushed = self.server.pushed(self.db);
        loop {
            let notified = pushed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if waiting.served() {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break;
            }
        }
        // A value served just as the deadline passed is still taken.
        Ok(waiting
            .finish()
            .map(|(at, value)| (keys[at].to_owned(), value)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::MemoryStore;
    use crate::store::{End, KvStore};

    /// Waits (yielding, no sleep) until `n` pops wait on the store's db.
    async fn waiting(store: &MemoryStore, n: usize) {
        while store.core.lock().poppers.len() != n {
            tokio::task::yield_now().await;
        }
    }

    type Popped = crate::Result<Option<(String, Vec<u8>)>>;

    fn spawn_pop(
        store: &Arc<MemoryStore>,
        keys: &'static [&'static str],
    ) -> tokio::task::JoinHandle<Popped> {
        let store = Arc::clone(store);
        tokio::spawn(async move {
            store
                .lists()
                .blocking_pop(keys, End::Front, Duration::from_secs(30))
                .await
        })
    }

    #[tokio::test]
    async fn waiting_pops_are_served_in_arrival_order() {
        let store = Arc::new(MemoryStore::new("fifo", "app"));
        let first = spawn_pop(&store, &["q"]);
        waiting(&store, 1).await;
        let second = spawn_pop(&store, &["other", "q"]);
        waiting(&store, 2).await;
        let lists = store.lists();
        // The push replies the length before the waiters take their values.
        assert_eq!(
            lists
                .push("q", End::Back, &[b"1", b"2", b"3"])
                .await
                .unwrap(),
            3
        );
        assert_eq!(lists.range("q", 0, -1).await.unwrap(), vec![b"3".to_vec()]);
        let first = first.await.unwrap().unwrap();
        let second = second.await.unwrap().unwrap();
        assert_eq!(first, Some(("q".to_string(), b"1".to_vec())));
        assert_eq!(second, Some(("q".to_string(), b"2".to_vec())));
        assert!(store.core.lock().poppers.is_empty());
    }

    #[tokio::test]
    async fn a_cancelled_pop_gives_its_value_back() {
        let store = Arc::new(MemoryStore::new("cancel", "app"));
        let lists = store.lists();
        let task = spawn_pop(&store, &["q"]);
        waiting(&store, 1).await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert!(store.core.lock().poppers.is_empty(), "left the queue");
        // Served, then dropped before taking the value: it goes back.
        let served = {
            let core = &store.core;
            let stored = core.space.stored_key("q");
            let ticket = match core.pop_or_wait(&["q"], &[stored], End::Front).unwrap() {
                Err(ticket) => ticket,
                Ok(popped) => panic!("nothing to pop yet: {popped:?}"),
            };
            super::Waiting { core, ticket }
        };
        lists.push("q", End::Back, &[b"a", b"b"]).await.unwrap();
        assert_eq!(lists.len("q").await.unwrap(), 1, "one served");
        drop(served);
        assert_eq!(
            lists.range("q", 0, -1).await.unwrap(),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
        assert!(!store.exists("none").await.unwrap());
    }
}
