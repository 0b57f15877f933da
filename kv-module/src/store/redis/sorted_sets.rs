//! [`KvSortedSets`] on Redis: one command per call, each through the
//! store's call path (deadline, breaker, error mapping).

use std::ops::Bound;

use async_trait::async_trait;

use super::core::Core;
use crate::error::Result;
use crate::store::sorted_sets::{check_bounds, check_score};
use crate::store::{KvSortedSets, Limit, Order, Scored};

/// A score as Redis parses it (`strtod`): the shortest text that reads
/// back as the same `f64`, `inf` and `-inf` included.
fn score_arg(score: f64) -> String {
    format!("{score:e}")
}

/// A range bound: `x`, `(x`, or `-inf`/`+inf` for an open end.
fn bound_arg(bound: Bound<f64>, open: &str) -> String {
    match bound {
        Bound::Included(x) => score_arg(x),
        Bound::Excluded(x) => format!("({}", score_arg(x)),
        Bound::Unbounded => open.to_owned(),
    }
}

/// The pairs of a `WITHSCORES` reply: flat (RESP2) or nested (RESP3).
fn scored(value: redis::Value) -> redis::RedisResult<Vec<Scored>> {
    let items: Vec<redis::Value> = redis::from_redis_value(value)?;
    if items
        .iter()
        .all(|item| matches!(item, redis::Value::Array(_)))
    {
        return items
            .into_iter()
            .map(|pair| Ok(redis::from_redis_value(pair)?))
            .collect();
    }
    let mut items = items.into_iter();
    let mut pairs = Vec::with_capacity(items.len() / 2);
    while let (Some(member), Some(score)) = (items.next(), items.next()) {
        pairs.push((
            redis::from_redis_value(member)?,
            redis::from_redis_value(score)?,
        ));
    }
    Ok(pairs)
}

impl Core {
    /// `ZRANGE` (`args` after the key) with `WITHSCORES`, parsed.
    async fn zrange(&self, key: &str, args: &[String]) -> Result<Vec<Scored>> {
        let stored = self.space.stored_key(key);
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(&stored).arg(args).arg("WITHSCORES");
        self.link
            .call(
                "ZRANGE",
                Some(key),
                super::link::Route::Key(&stored),
                |mut conn| {
                    let cmd = &cmd;
                    async move { scored(cmd.query_async(&mut conn).await?) }
                },
            )
            .await
    }
}

#[async_trait]
impl KvSortedSets for Core {
    fn store_name(&self) -> &str {
        &self.ctx().store
    }

    async fn add(&self, key: &str, members: &[(f64, &[u8])]) -> Result<u64> {
        for (score, _) in members {
            check_score(&self.ctx().store, key, *score)?;
        }
        if members.is_empty() {
            return Ok(0);
        }
        self.on_key("ZADD", key, |cmd| {
            for (score, member) in members {
                cmd.arg(score_arg(*score)).arg(*member);
            }
        })
        .await
    }

    async fn remove(&self, key: &str, members: &[&[u8]]) -> Result<u64> {
        if members.is_empty() {
            return Ok(0);
        }
        self.on_key("ZREM", key, |cmd| {
            cmd.arg(members);
        })
        .await
    }

    async fn score(&self, key: &str, member: &[u8]) -> Result<Option<f64>> {
        self.on_key("ZSCORE", key, |cmd| {
            cmd.arg(member);
        })
        .await
    }

    async fn incr_by(&self, key: &str, member: &[u8], delta: f64) -> Result<f64> {
        check_score(&self.ctx().store, key, delta)?;
        self.on_key("ZINCRBY", key, |cmd| {
            cmd.arg(score_arg(delta)).arg(member);
        })
        .await
    }

    async fn count(&self, key: &str) -> Result<u64> {
        self.on_key("ZCARD", key, |_| {}).await
    }

    async fn count_by_score(&self, key: &str, min: Bound<f64>, max: Bound<f64>) -> Result<u64> {
        check_bounds(&self.ctx().store, key, min, max)?;
        self.on_key("ZCOUNT", key, |cmd| {
            cmd.arg(bound_arg(min, "-inf")).arg(bound_arg(max, "+inf"));
        })
        .await
    }

    async fn range_by_rank(
        &self,
        key: &str,
        start: i64,
        stop: i64,
        order: Order,
    ) -> Result<Vec<Scored>> {
        let mut args = vec![start.to_string(), stop.to_string()];
        if order == Order::Descending {
            args.push("REV".to_owned());
        }
        self.zrange(key, &args).await
    }

    async fn range_by_score(
        &self,
        key: &str,
        min: Bound<f64>,
        max: Bound<f64>,
        order: Order,
        limit: Option<Limit>,
    ) -> Result<Vec<Scored>> {
        check_bounds(&self.ctx().store, key, min, max)?;
        let (min, max) = (bound_arg(min, "-inf"), bound_arg(max, "+inf"));
        // With `REV` Redis takes the bounds as (max, min).
        let mut args = match order {
            Order::Ascending => vec![min, max, "BYSCORE".to_owned()],
            Order::Descending => vec![max, min, "BYSCORE".to_owned(), "REV".to_owned()],
        };
        if let Some(Limit { offset, count }) = limit {
            // Redis reads a count it cannot hold as "all"; so does `None`.
            let count = i64::try_from(count).unwrap_or(-1);
            // An offset past every member returns nothing either way.
            let offset = offset.min(i64::MAX.unsigned_abs());
            args.extend(["LIMIT".to_owned(), offset.to_string(), count.to_string()]);
        }
        self.zrange(key, &args).await
    }

    async fn remove_by_score(&self, key: &str, min: Bound<f64>, max: Bound<f64>) -> Result<u64> {
        check_bounds(&self.ctx().store, key, min, max)?;
        self.on_key("ZREMRANGEBYSCORE", key, |cmd| {
            cmd.arg(bound_arg(min, "-inf")).arg(bound_arg(max, "+inf"));
        })
        .await
    }
}
