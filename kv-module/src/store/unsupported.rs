//! [`Unsupported`]: the data-type operations of a store that does not
//! provide them, each failing with [`KvError::Unsupported`].
//!
//! The data-type accessors of [`KvStore`](crate::KvStore)
//! ([`hashes`](crate::KvStore::hashes), ...) default to it, so that a
//! store written before they existed (a test double, a wrapper) still
//! compiles; both backends of this crate, and the wrappers of its test
//! suite, provide every type. A wrapper must forward the accessors to the
//! store it wraps.

use async_trait::async_trait;

use crate::error::{KvError, Result};
use std::ops::Bound;
use std::time::Duration;

use crate::store::{
    End, KvHashes, KvLists, KvSets, KvSortedSets, KvTransactions, Limit, Order, ScanCursor,
    ScanPage, Scored, Transaction, Ttl, UpdateFn,
};

/// Fails every operation with [`KvError::Unsupported`]; sends nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unsupported;

fn refuse<T>(op: &'static str) -> Result<T> {
    Err(KvError::Unsupported {
        op,
        reason: "the store does not provide this data type; a wrapper store must forward its accessor",
    })
}

#[async_trait]
impl KvHashes for Unsupported {
    fn store_name(&self) -> &str {
        ""
    }
    async fn set(&self, _: &str, _: &str, _: &[u8]) -> Result<bool> {
        refuse("HSET")
    }
    async fn set_many(&self, _: &str, _: &[(&str, &[u8])], _: Option<Ttl>) -> Result<u64> {
        refuse("HSET")
    }
    async fn get(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>> {
        refuse("HGET")
    }
    async fn get_many(&self, _: &str, _: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        refuse("HMGET")
    }
    async fn get_all(&self, _: &str) -> Result<Vec<(String, Vec<u8>)>> {
        refuse("HGETALL")
    }
    async fn delete(&self, _: &str, _: &[&str]) -> Result<u64> {
        refuse("HDEL")
    }
    async fn incr_by(&self, _: &str, _: &str, _: i64) -> Result<i64> {
        refuse("HINCRBY")
    }
    async fn exists(&self, _: &str, _: &str) -> Result<bool> {
        refuse("HEXISTS")
    }
    async fn len(&self, _: &str) -> Result<u64> {
        refuse("HLEN")
    }
}

#[async_trait]
impl KvSets for Unsupported {
    fn store_name(&self) -> &str {
        ""
    }
    async fn add(&self, _: &str, _: &[&[u8]]) -> Result<u64> {
        refuse("SADD")
    }
    async fn remove(&self, _: &str, _: &[&[u8]]) -> Result<u64> {
        refuse("SREM")
    }
    async fn members(&self, _: &str) -> Result<Vec<Vec<u8>>> {
        refuse("SMEMBERS")
    }
    async fn is_member(&self, _: &str, _: &[u8]) -> Result<bool> {
        refuse("SISMEMBER")
    }
    async fn count(&self, _: &str) -> Result<u64> {
        refuse("SCARD")
    }
    async fn scan(&self, _: &str, _: &ScanCursor, _: u32) -> Result<ScanPage> {
        refuse("SSCAN")
    }
}

#[async_trait]
impl KvSortedSets for Unsupported {
    fn store_name(&self) -> &str {
        ""
    }
    async fn add(&self, _: &str, _: &[(f64, &[u8])]) -> Result<u64> {
        refuse("ZADD")
    }
    async fn remove(&self, _: &str, _: &[&[u8]]) -> Result<u64> {
        refuse("ZREM")
    }
    async fn score(&self, _: &str, _: &[u8]) -> Result<Option<f64>> {
        refuse("ZSCORE")
    }
    async fn incr_by(&self, _: &str, _: &[u8], _: f64) -> Result<f64> {
        refuse("ZINCRBY")
    }
    async fn count(&self, _: &str) -> Result<u64> {
        refuse("ZCARD")
    }
    async fn count_by_score(&self, _: &str, _: Bound<f64>, _: Bound<f64>) -> Result<u64> {
        refuse("ZCOUNT")
    }
    async fn range_by_rank(&self, _: &str, _: i64, _: i64, _: Order) -> Result<Vec<Scored>> {
        refuse("ZRANGE")
    }
    async fn range_by_score(
        &self,
        _: &str,
        _: Bound<f64>,
        _: Bound<f64>,
        _: Order,
        _: Option<Limit>,
    ) -> Result<Vec<Scored>> {
        refuse("ZRANGE")
    }
    async fn remove_by_score(&self, _: &str, _: Bound<f64>, _: Bound<f64>) -> Result<u64> {
        refuse("ZREMRANGEBYSCORE")
    }
}

#[async_trait]
impl KvLists for Unsupported {
    fn store_name(&self) -> &str {
        ""
    }
    async fn push(&self, _: &str, _: End, _: &[&[u8]]) -> Result<u64> {
        refuse("LPUSH")
    }
    async fn pop(&self, _: &str, _: End, _: usize) -> Result<Vec<Vec<u8>>> {
        refuse("LPOP")
    }
    async fn range(&self, _: &str, _: i64, _: i64) -> Result<Vec<Vec<u8>>> {
        refuse("LRANGE")
    }
    async fn len(&self, _: &str) -> Result<u64> {
        refuse("LLEN")
    }
    async fn trim(&self, _: &str, _: i64, _: i64) -> Result<()> {
        refuse("LTRIM")
    }
    async fn blocking_pop(
        &self,
        _: &[&str],
        _: End,
        _: Duration,
    ) -> Result<Option<(String, Vec<u8>)>> {
        refuse("BLPOP")
    }
}

#[async_trait]
impl KvTransactions for Unsupported {
    fn store_name(&self) -> &str {
        ""
    }
    async fn run(&self, _: &Transaction) -> Result<()> {
        refuse("EVALSHA")
    }
    async fn update(&self, _: &str, _: Option<Ttl>, _: UpdateFn<'_>) -> Result<Option<Vec<u8>>> {
        refuse("GET")
    }
}
