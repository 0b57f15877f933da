//! [`KvSortedSetsExt`]: typed (serde JSON) members over any
//! [`KvSortedSets`].

use std::future::Future;
use std::ops::Bound;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::store::kv_store_ext::{decode, encode};
use crate::store::sets_ext::encode_all;
use crate::store::{KvSortedSets, Limit, Order, Scored};

/// Sorted-set members as JSON (ties are ordered by their JSON bytes).
/// Implemented for every [`KvSortedSets`]; as for sets, use types whose
/// encoding is stable.
///
/// ```
/// use std::sync::Arc;
/// use kv_module::{KvSortedSetsExt, KvStore, MemoryStore};
/// use kv_module::store::Order;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_module::Result<()> {
/// let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new("games", "app"));
/// store.sorted_sets().add_json("board", &[(10.0, "ada"), (20.0, "bob")]).await?;
/// let top: Vec<(String, f64)> =
///     store.sorted_sets().range_by_rank_json("board", 0, 0, Order::Descending).await?;
/// assert_eq!(top, vec![("bob".to_string(), 20.0)]);
/// # Ok(())
/// # }
/// ```
pub trait KvSortedSetsExt: KvSortedSets {
    /// Adds or updates `(score, member)` pairs, members as JSON; returns
    /// how many were new.
    fn add_json<T: Serialize + Sync>(
        &self,
        key: &str,
        members: &[(f64, T)],
    ) -> impl Future<Output = Result<u64>> + Send {
        async move {
            let encoded = members
                .iter()
                .map(|(score, member)| Ok((*score, encode(self.store_name(), key, member)?)))
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<(f64, &[u8])> = encoded.iter().map(|(s, m)| (*s, m.as_slice())).collect();
            self.add(key, &refs).await
        }
    }

    /// The score of `member` (as JSON).
    fn score_json<T: Serialize + ?Sized + Sync>(
        &self,
        key: &str,
        member: &T,
    ) -> impl Future<Output = Result<Option<f64>>> + Send {
        async move {
            let bytes = encode(self.store_name(), key, member)?;
            self.score(key, &bytes).await
        }
    }

    /// Removes `members` (as JSON); returns how many were there.
    fn remove_json<T: Serialize + Sync>(
        &self,
        key: &str,
        members: &[T],
    ) -> impl Future<Output = Result<u64>> + Send {
        async move {
            let encoded = encode_all(self.store_name(), key, members)?;
            let refs: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
            self.remove(key, &refs).await
        }
    }

    /// Adds `delta` to the score of `member` (as JSON); returns the new
    /// score.
    fn incr_by_json<T: Serialize + ?Sized + Sync>(
        &self,
        key: &str,
        member: &T,
        delta: f64,
    ) -> impl Future<Output = Result<f64>> + Send {
        async move {
            let bytes = encode(self.store_name(), key, member)?;
            self.incr_by(key, &bytes, delta).await
        }
    }

    /// [`KvSortedSets::range_by_rank`], members decoded from JSON.
    fn range_by_rank_json<T: DeserializeOwned>(
        &self,
        key: &str,
        start: i64,
        stop: i64,
        order: Order,
    ) -> impl Future<Output = Result<Vec<(T, f64)>>> + Send {
        async move {
            let raw = self.range_by_rank(key, start, stop, order).await?;
            decode_scored(self.store_name(), key, raw)
        }
    }

    /// [`KvSortedSets::range_by_score`], members decoded from JSON.
    fn range_by_score_json<T: DeserializeOwned>(
        &self,
        key: &str,
        min: Bound<f64>,
        max: Bound<f64>,
        order: Order,
        limit: Option<Limit>,
    ) -> impl Future<Output = Result<Vec<(T, f64)>>> + Send {
        async move {
            let raw = self.range_by_score(key, min, max, order, limit).await?;
            decode_scored(self.store_name(), key, raw)
        }
    }
}

impl<Z: KvSortedSets + ?Sized> KvSortedSetsExt for Z {}

fn decode_scored<T: DeserializeOwned>(
    store: &str,
    key: &str,
    raw: Vec<Scored>,
) -> Result<Vec<(T, f64)>> {
    raw.into_iter()
        .map(|(member, score)| Ok((decode(store, key, &member)?, score)))
        .collect()
}
