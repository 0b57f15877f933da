//! [`KvSets`] on Redis: one command per call, each through the store's
//! call path (deadline, breaker, error mapping).

use async_trait::async_trait;

use super::core::Core;
use crate::error::Result;
use crate::store::{KvSets, ScanCursor, ScanPage};

#[async_trait]
impl KvSets for Core {
    fn store_name(&self) -> &str {
        &self.ctx().store
    }

    async fn add(&self, key: &str, members: &[&[u8]]) -> Result<u64> {
        if members.is_empty() {
            return Ok(0);
        }
        self.on_key("SADD", key, |cmd| {
            cmd.arg(members);
        })
        .await
    }

    async fn remove(&self, key: &str, members: &[&[u8]]) -> Result<u64> {
        if members.is_empty() {
            return Ok(0);
        }
        self.on_key("SREM", key, |cmd| {
            cmd.arg(members);
        })
        .await
    }

    async fn members(&self, key: &str) -> Result<Vec<Vec<u8>>> {
        self.on_key("SMEMBERS", key, |_| {}).await
    }

    async fn is_member(&self, key: &str, member: &[u8]) -> Result<bool> {
        self.on_key("SISMEMBER", key, |cmd| {
            cmd.arg(member);
        })
        .await
    }

    async fn count(&self, key: &str) -> Result<u64> {
        self.on_key("SCARD", key, |_| {}).await
    }

    /// The cursor is Redis's, in decimal; `0` (the end) becomes `None`.
    async fn scan(&self, key: &str, cursor: &ScanCursor, count: u32) -> Result<ScanPage> {
        let position: &[u8] = match cursor.position() {
            [] => b"0",
            position => position,
        };
        let (next, members): (Vec<u8>, Vec<Vec<u8>>) = self
            .on_key("SSCAN", key, |cmd| {
                cmd.arg(position).arg("COUNT").arg(count.max(1));
            })
            .await?;
        let next = (next != b"0").then(|| ScanCursor::at(next));
        Ok(ScanPage { members, next })
    }
}
