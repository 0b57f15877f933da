//! [`DbOps`]: the [`ScriptOps`] of a locked memory database, on which the
//! Rust twins of scripts run.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::server::Db;
use super::value::Value;
use crate::store::ScriptOps;

/// A locked database seen through the Redis commands scripts use. Every
/// call happens under the one lock the script holds, so the whole script
/// is atomic.
pub(crate) struct DbOps<'a> {
    pub(crate) db: &'a mut Db,
    pub(crate) now: Instant,
}

impl DbOps<'_> {
    fn deadline(&self, ms: u64) -> Option<Instant> {
        // Beyond the clock's range the key cannot expire in practice.
        self.now.checked_add(Duration::from_millis(ms))
    }
}

impl ScriptOps for DbOps<'_> {
    fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        // A key of another type reads as missing here (a script only ever
        // reads the string keys it writes itself).
        self.db
            .get(key, self.now)
            .and_then(|entry| entry.value.as_string().map(|bytes| bytes.to_vec()))
    }

    fn set(&mut self, key: &str, value: &[u8], px: Option<u64>) {
        let deadline = px.and_then(|ms| self.deadline(ms));
        self.db.insert(
            key.to_owned(),
            Value::String(Arc::from(value)),
            deadline,
            self.now,
        );
    }

    fn set_keep_ttl(&mut self, key: &str, value: &[u8]) {
        match self.db.value_mut(key, self.now) {
            // `SET … KEEPTTL` replaces a value of any type.
            Some(slot) => *slot = Value::String(Arc::from(value)),
            None => {
                self.db.insert(
                    key.to_owned(),
                    Value::String(Arc::from(value)),
                    None,
                    self.now,
                );
            }
        }
    }

    fn del(&mut self, key: &str) -> bool {
        self.db.remove(key, self.now).is_some()
    }

    fn pttl(&mut self, key: &str) -> i64 {
        match self.db.get(key, self.now) {
            None => -2,
            Some(entry) => match entry.expires_at() {
                None => -1,
                // Rounded up: deadlines here fall between milliseconds,
                // and a script reading its key's expiry as a clock (GCRA's
                // TAT) must not lose up to a millisecond per check (Redis
                // sets and reads expiries on one millisecond clock).
                Some(at) => {
                    let left = at.saturating_duration_since(self.now);
                    let ms = left.as_nanos().div_ceil(1_000_000);
                    i64::try_from(ms).unwrap_or(i64::MAX)
                }
            },
        }
    }

    fn pexpire(&mut self, key: &str, ms: u64) -> bool {
        let deadline = self.deadline(ms);
        self.db.set_expiry(key, deadline, self.now).is_some()
    }

    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}
