//! [`KvLists`] on Redis: one command per call through the store's call
//! path; blocking pops on dedicated connections (`blocking.rs`).

use std::time::Duration;

use async_trait::async_trait;

use super::core::Core;
use super::link::Route;
use crate::error::Result;
use crate::store::lists::check_blocking;
use crate::store::{End, KvLists};

fn command(end: End, front: &'static str, back: &'static str) -> &'static str {
    match end {
        End::Front => front,
        End::Back => back,
    }
}

#[async_trait]
impl KvLists for Core {
    fn store_name(&self) -> &str {
        &self.ctx().store
    }

    async fn push(&self, key: &str, end: End, values: &[&[u8]]) -> Result<u64> {
        if values.is_empty() {
            return self.len(key).await;
        }
        self.on_key(command(end, "LPUSH", "RPUSH"), key, |cmd| {
            cmd.arg(values);
        })
        .await
    }

    async fn pop(&self, key: &str, end: End, count: usize) -> Result<Vec<Vec<u8>>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let popped: Option<Vec<Vec<u8>>> = self
            .on_key(command(end, "LPOP", "RPOP"), key, |cmd| {
                cmd.arg(count);
            })
            .await?;
        Ok(popped.unwrap_or_default())
    }

    async fn range(&self, key: &str, start: i64, stop: i64) -> Result<Vec<Vec<u8>>> {
        self.on_key("LRANGE", key, |cmd| {
            cmd.arg(start).arg(stop);
        })
        .await
    }

    async fn len(&self, key: &str) -> Result<u64> {
        self.on_key("LLEN", key, |_| {}).await
    }

    async fn trim(&self, key: &str, start: i64, stop: i64) -> Result<()> {
        self.on_key("LTRIM", key, |cmd| {
            cmd.arg(start).arg(stop);
        })
        .await
    }

    async fn blocking_pop(
        &self,
        keys: &[&str],
        end: End,
        timeout: Duration,
    ) -> Result<Option<(String, Vec<u8>)>> {
        check_blocking(&self.ctx().store, keys, timeout)?;
        let op = command(end, "BLPOP", "BRPOP");
        let stored: Vec<String> = keys.iter().map(|k| self.space.stored_key(k)).collect();
        self.check_one_slot(op, keys, &stored)?;
        let mut cmd = redis::cmd(op);
        cmd.arg(&stored);
        // Seconds with millisecond precision, as `BLPOP` reads its timeout.
        let ms = timeout.as_millis().max(1);
        cmd.arg(format!("{}.{:03}", ms / 1000, ms % 1000));
        let route = stored.first().map_or(Route::All, |key| Route::Key(key));
        let popped: Option<(String, Vec<u8>)> = self
            .link
            .call_blocking(op, keys.first().copied(), route, timeout, |mut conn| {
                let cmd = &cmd;
                async move { cmd.query_async(&mut conn).await }
            })
            .await?;
        Ok(popped.map(|(stored, value)| {
            let key = self.space.caller_key(&stored).unwrap_or(&stored).to_owned();
            (key, value)
        }))
    }
}
