//! [`KvSortedSets`] on the memory backend: each call one step under the
//! database lock, as each is one command on Redis.

use std::ops::Bound;
use std::sync::Arc;

use async_trait::async_trait;

use super::core::Core;
use super::value::SortedSet;
use crate::error::{KvError, Result};
use crate::store::lists::resolve_range as ranks;
use crate::store::sorted_sets::{check_bounds, check_score};
use crate::store::{KvSortedSets, Limit, Order, Scored};

fn collect<'a>(members: impl Iterator<Item = (&'a [u8], f64)>) -> Vec<Scored> {
    members.map(|(m, s)| (m.to_vec(), s)).collect()
}

fn window(limit: Option<Limit>) -> (usize, usize) {
    match limit {
        None => (0, usize::MAX),
        Some(Limit { offset, count }) => (
            usize::try_from(offset).unwrap_or(usize::MAX),
            usize::try_from(count).unwrap_or(usize::MAX),
        ),
    }
}

#[async_trait]
impl KvSortedSets for Core {
    fn store_name(&self) -> &str {
        &self.name
    }

    async fn add(&self, key: &str, members: &[(f64, &[u8])]) -> Result<u64> {
        for (score, _) in members {
            check_score(&self.name, key, *score)?;
        }
        if members.is_empty() {
            return Ok(0);
        }
        self.update(key, |zset: &mut SortedSet| {
            Ok(members
                .iter()
                .filter(|(score, member)| zset.insert(member.to_vec(), *score))
                .count() as u64)
        })
    }

    async fn remove(&self, key: &str, members: &[&[u8]]) -> Result<u64> {
        if members.is_empty() {
            return Ok(0);
        }
        self.update(key, |zset: &mut SortedSet| {
            Ok(members.iter().filter(|m| zset.remove(m)).count() as u64)
        })
    }

    async fn score(&self, key: &str, member: &[u8]) -> Result<Option<f64>> {
        self.read(key, |zset: Option<&SortedSet>| {
            zset.and_then(|zset| zset.score(member))
        })
    }

    async fn incr_by(&self, key: &str, member: &[u8], delta: f64) -> Result<f64> {
        check_score(&self.name, key, delta)?;
        self.update(key, |zset: &mut SortedSet| {
            // A new member takes the increment itself, as in Redis (which
            // keeps `-0` a `-0`, where `0 + -0` would be `0`).
            let next = zset.score(member).map_or(delta, |score| score + delta);
            if next.is_nan() {
                return Err(KvError::InvalidArgument {
                    store: Arc::clone(&self.name),
                    key: Some(key.to_owned()),
                    reason: "the resulting score is not a number (NaN)".to_owned(),
                });
            }
            zset.insert(member.to_vec(), next);
            Ok(next)
        })
    }

    async fn count(&self, key: &str) -> Result<u64> {
        self.read(key, |zset: Option<&SortedSet>| {
            zset.map_or(0, |zset| zset.len() as u64)
        })
    }

    async fn count_by_score(&self, key: &str, min: Bound<f64>, max: Bound<f64>) -> Result<u64> {
        check_bounds(&self.name, key, min, max)?;
        self.read(key, |zset: Option<&SortedSet>| {
            zset.map_or(0, |zset| zset.by_score(min, max).count() as u64)
        })
    }

    async fn range_by_rank(
        &self,
        key: &str,
        start: i64,
        stop: i64,
        order: Order,
    ) -> Result<Vec<Scored>> {
        self.read(key, |zset: Option<&SortedSet>| {
            let Some(zset) = zset else {
                return Vec::new();
            };
            let Some((start, stop)) = ranks(start, stop, zset.len()) else {
                return Vec::new();
            };
            let n = stop - start + 1;
            match order {
                Order::Ascending => collect(zset.iter().skip(start).take(n)),
                Order::Descending => collect(zset.iter().rev().skip(start).take(n)),
            }
        })
    }

    async fn range_by_score(
        &self,
        key: &str,
        min: Bound<f64>,
        max: Bound<f64>,
        order: Order,
        limit: Option<Limit>,
    ) -> Result<Vec<Scored>> {
        check_bounds(&self.name, key, min, max)?;
        let (offset, count) = window(limit);
        self.read(key, |zset: Option<&SortedSet>| {
            let Some(zset) = zset else {
                return Vec::new();
            };
            let range = zset.by_score(min, max);
            match order {
                Order::Ascending => collect(range.skip(offset).take(count)),
                Order::Descending => collect(range.rev().skip(offset).take(count)),
            }
        })
    }

    async fn remove_by_score(&self, key: &str, min: Bound<f64>, max: Bound<f64>) -> Result<u64> {
        check_bounds(&self.name, key, min, max)?;
        self.update(key, |zset: &mut SortedSet| {
            let doomed: Vec<Vec<u8>> = zset.by_score(min, max).map(|(m, _)| m.to_vec()).collect();
            for member in &doomed {
                zset.remove(member);
            }
            Ok(doomed.len() as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ranks;

    #[test]
    fn ranks_resolve_as_redis_does() {
        assert_eq!(ranks(0, -1, 3), Some((0, 2)));
        assert_eq!(ranks(-2, -1, 3), Some((1, 2)));
        assert_eq!(ranks(-10, 1, 3), Some((0, 1)));
        assert_eq!(ranks(1, 100, 3), Some((1, 2)));
        assert_eq!(ranks(2, 1, 3), None);
        assert_eq!(ranks(3, 5, 3), None);
        assert_eq!(ranks(0, -4, 3), None);
        assert_eq!(ranks(0, -1, 0), None);
        assert_eq!(ranks(i64::MIN, i64::MAX, 2), Some((0, 1)));
    }
}
