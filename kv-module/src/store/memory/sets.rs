//! [`KvSets`] on the memory backend: each call one step under the
//! database lock, as each is one command on Redis.

use std::collections::BTreeSet;
use std::ops::Bound;

use async_trait::async_trait;

use super::core::Core;
use crate::error::Result;
use crate::store::{KvSets, ScanCursor, ScanPage};

type Set = BTreeSet<Vec<u8>>;

/// Tags a memory cursor, so that the position after the empty member is
/// not the start.
const CURSOR_TAG: u8 = b'm';

#[async_trait]
impl KvSets for Core {
    fn store_name(&self) -> &str {
        &self.name
    }

    async fn add(&self, key: &str, members: &[&[u8]]) -> Result<u64> {
        if members.is_empty() {
            return Ok(0);
        }
        self.update(key, |set: &mut Set| {
            Ok(members.iter().filter(|m| set.insert(m.to_vec())).count() as u64)
        })
    }

    async fn remove(&self, key: &str, members: &[&[u8]]) -> Result<u64> {
        if members.is_empty() {
            return Ok(0);
        }
        self.update(key, |set: &mut Set| {
            Ok(members.iter().filter(|m| set.remove(**m)).count() as u64)
        })
    }

    async fn members(&self, key: &str) -> Result<Vec<Vec<u8>>> {
        self.read(key, |set: Option<&Set>| {
            set.into_iter().flatten().cloned().collect()
        })
    }

    async fn is_member(&self, key: &str, member: &[u8]) -> Result<bool> {
        self.read(key, |set: Option<&Set>| {
            set.is_some_and(|set| set.contains(member))
        })
    }

    async fn count(&self, key: &str) -> Result<u64> {
        self.read(key, |set: Option<&Set>| {
            set.map_or(0, |set| set.len() as u64)
        })
    }

    /// The cursor is the last member returned: members are ordered, so the
    /// next page starts after it, whatever was added or removed meanwhile.
    async fn scan(&self, key: &str, cursor: &ScanCursor, count: u32) -> Result<ScanPage> {
        let after = match cursor.position() {
            [] => Bound::Unbounded,
            [CURSOR_TAG, last @ ..] => Bound::Excluded(last.to_vec()),
            // Another backend's cursor: start over rather than fail.
            _ => Bound::Unbounded,
        };
        let count = usize::try_from(count.max(1)).unwrap_or(usize::MAX);
        self.read(key, |set: Option<&Set>| {
            let Some(set) = set else {
                return ScanPage::default();
            };
            let mut range = set.range((after, Bound::Unbounded));
            let members: Vec<Vec<u8>> = range.by_ref().take(count).cloned().collect();
            let next = match (range.next(), members.last()) {
                (Some(_), Some(last)) => {
                    let mut position = vec![CURSOR_TAG];
                    position.extend_from_slice(last);
                    Some(ScanCursor::at(position))
                }
                _ => None,
            };
            ScanPage { members, next }
        })
    }
}
