//! [`KvSortedSets`]: Redis sorted sets (members ordered by a score) on any
//! store, reached through [`KvStore::sorted_sets`](crate::KvStore::sorted_sets),
//! with [`Order`] and [`Limit`] for ranges.

use std::ops::Bound;

use async_trait::async_trait;

use crate::error::Result;

/// A member and its score, as range replies give them.
pub type Scored = (Vec<u8>, f64);

/// Sorted sets: one key holding distinct raw members, each with an `f64`
/// score, ordered by score then by member bytes, with Redis's semantics on
/// every backend. Reached as `store.sorted_sets()`.
///
/// # Contract
///
/// | method | Redis | missing key | reply |
/// |---|---|---|---|
/// | [`add`](Self::add) | `ZADD k s m …` | created, persistent | members new to the set (a known member gets the new score) |
/// | [`remove`](Self::remove) | `ZREM` | 0 | members removed; the key vanishes with its last member |
/// | [`score`](Self::score) | `ZSCORE` | `None` | |
/// | [`incr_by`](Self::incr_by) | `ZINCRBY` | created | the new score; a missing member counts as 0 |
/// | [`count`](Self::count) | `ZCARD` | 0 | |
/// | [`count_by_score`](Self::count_by_score) | `ZCOUNT` | 0 | |
/// | [`range_by_rank`](Self::range_by_rank) | `ZRANGE k start stop [REV] WITHSCORES` | empty | by rank, negative ranks from the end, in the order asked |
/// | [`range_by_score`](Self::range_by_score) | `ZRANGE k min max BYSCORE [REV] [LIMIT o n] WITHSCORES` | empty | in the order asked, after `offset`, at most `count` |
/// | [`remove_by_score`](Self::remove_by_score) | `ZREMRANGEBYSCORE` | 0 | members removed |
///
/// * Ties in score are ordered by member bytes (descending in
///   [`Order::Descending`]), as Redis orders them.
/// * Scores may be infinite; a NaN score or bound is
///   [`KvError::InvalidArgument`](crate::KvError::InvalidArgument) before
///   anything is sent, and so is an `incr_by` whose result would be NaN
///   (`+inf` plus `-inf`), with nothing changed.
/// * Score bounds are [`Bound`]s: `Included(x)` is `x`, `Excluded(x)` is
///   `(x`, `Unbounded` is `-inf` as a minimum and `+inf` as a maximum.
///   Bounds are always given as (minimum, maximum), in either order.
/// * Writes keep the key's expiry. A key holding another type is
///   [`KvError::WrongType`](crate::KvError::WrongType) naming the store and
///   key. Each call is one command, atomic on every topology.
///
/// ```
/// use std::ops::Bound;
/// use std::sync::Arc;
/// use kv_module::{KvStore, MemoryStore};
/// use kv_module::store::{Limit, Order};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_module::Result<()> {
/// let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new("games", "app"));
/// let board = store.sorted_sets();
/// board.add("board", &[(30.0, b"ada"), (10.0, b"bob"), (20.0, b"eve")]).await?;
/// board.incr_by("board", b"bob", 25.0).await?;
/// let top = board.range_by_rank("board", 0, 1, Order::Descending).await?;
/// assert_eq!(top, vec![(b"bob".to_vec(), 35.0), (b"ada".to_vec(), 30.0)]);
/// let low = board
///     .range_by_score("board", Bound::Unbounded, Bound::Excluded(35.0), Order::Ascending, Some(Limit::first(1)))
///     .await?;
/// assert_eq!(low, vec![(b"eve".to_vec(), 20.0)]);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait KvSortedSets: Send + Sync {
    /// The name of the store these operations belong to (for errors).
    fn store_name(&self) -> &str;

    /// Adds or updates `(score, member)` pairs (`ZADD`); returns how many
    /// members were new. An empty list sends nothing.
    async fn add(&self, key: &str, members: &[(f64, &[u8])]) -> Result<u64>;

    /// Removes `members` (`ZREM`); returns how many were there. An empty
    /// list sends nothing.
    async fn remove(&self, key: &str, members: &[&[u8]]) -> Result<u64>;

    /// The score of `member` (`ZSCORE`).
    async fn score(&self, key: &str, member: &[u8]) -> Result<Option<f64>>;

    /// Adds `delta` to the score of `member` (`ZINCRBY`; a missing member
    /// starts at 0) and returns the new score.
    async fn incr_by(&self, key: &str, member: &[u8], delta: f64) -> Result<f64>;

    /// Number of members (`ZCARD`).
    async fn count(&self, key: &str) -> Result<u64>;

    /// Number of members with a score between `min` and `max` (`ZCOUNT`).
    async fn count_by_score(&self, key: &str, min: Bound<f64>, max: Bound<f64>) -> Result<u64>;

    /// Members with their scores from rank `start` to rank `stop`, both
    /// included (`ZRANGE … WITHSCORES`, `REV` for [`Order::Descending`],
    /// where rank 0 is the highest score). Negative ranks count from the
    /// end (-1 is the last).
    async fn range_by_rank(
        &self,
        key: &str,
        start: i64,
        stop: i64,
        order: Order,
    ) -> Result<Vec<Scored>>;

    /// Members with their scores between `min` and `max`
    /// (`ZRANGE … BYSCORE [REV] [LIMIT] WITHSCORES`), in `order`, skipping
    /// `limit.offset` and returning at most `limit.count` (all with `None`).
    async fn range_by_score(
        &self,
        key: &str,
        min: Bound<f64>,
        max: Bound<f64>,
        order: Order,
        limit: Option<Limit>,
    ) -> Result<Vec<Scored>>;

    /// Removes the members with a score between `min` and `max`
    /// (`ZREMRANGEBYSCORE`); returns how many.
    async fn remove_by_score(&self, key: &str, min: Bound<f64>, max: Bound<f64>) -> Result<u64>;
}

/// The order of a range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Order {
    /// Lowest score first (ties: lowest member bytes first).
    #[default]
    Ascending,
    /// Highest score first (`REV`; ties: highest member bytes first).
    Descending,
}

/// A window of a score range: skip `offset` members, return at most
/// `count` (`LIMIT offset count`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limit {
    /// Members skipped.
    pub offset: u64,
    /// Members returned at most.
    pub count: u64,
}

impl Limit {
    /// The first `count` members.
    pub const fn first(count: u64) -> Self {
        Self { offset: 0, count }
    }
}

/// Refuses a NaN score: Redis does, and it has no place in the order.
pub(crate) fn check_score(store: &std::sync::Arc<str>, key: &str, score: f64) -> Result<()> {
    if score.is_nan() {
        return Err(crate::KvError::InvalidArgument {
            store: store.clone(),
            key: Some(key.to_owned()),
            reason: "a score may not be NaN".to_owned(),
        });
    }
    Ok(())
}

/// Refuses a NaN bound.
pub(crate) fn check_bounds(
    store: &std::sync::Arc<str>,
    key: &str,
    min: Bound<f64>,
    max: Bound<f64>,
) -> Result<()> {
    for bound in [min, max] {
        if let Bound::Included(x) | Bound::Excluded(x) = bound {
            check_score(store, key, x)?;
        }
    }
    Ok(())
}
