//! [`KvListsExt`]: typed (serde JSON) values over any [`KvLists`].

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::store::kv_store_ext::decode;
use crate::store::sets_ext::encode_all;
use crate::store::{End, KvLists};

/// List values as JSON (a job queue of typed jobs). Implemented for every
/// [`KvLists`].
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use kv_module::{KvListsExt, KvStore, MemoryStore};
/// use kv_module::store::End;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_module::Result<()> {
/// let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new("jobs", "app"));
/// store.lists().push_json("queue", End::Back, &[("resize", 42_u64)]).await?;
/// let job: Option<(String, (String, u64))> =
///     store.lists().blocking_pop_json(&["queue"], End::Front, Duration::from_secs(1)).await?;
/// assert_eq!(job, Some(("queue".into(), ("resize".into(), 42))));
/// # Ok(())
/// # }
/// ```
pub trait KvListsExt: KvLists {
    /// Pushes `values` as JSON at `end`; returns the new length.
    fn push_json<T: Serialize + Sync>(
        &self,
        key: &str,
        end: End,
        values: &[T],
    ) -> impl Future<Output = Result<u64>> + Send {
        async move {
            let encoded = encode_all(self.store_name(), key, values)?;
            let refs: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
            self.push(key, end, &refs).await
        }
    }

    /// Pops up to `count` values from `end`, decoded from JSON. A value
    /// that does not decode is an error, and is gone from the list.
    fn pop_json<T: DeserializeOwned>(
        &self,
        key: &str,
        end: End,
        count: usize,
    ) -> impl Future<Output = Result<Vec<T>>> + Send {
        async move {
            self.pop(key, end, count)
                .await?
                .iter()
                .map(|bytes| decode(self.store_name(), key, bytes))
                .collect()
        }
    }

    /// The values from `start` to `stop`, decoded from JSON.
    fn range_json<T: DeserializeOwned>(
        &self,
        key: &str,
        start: i64,
        stop: i64,
    ) -> impl Future<Output = Result<Vec<T>>> + Send {
        async move {
            self.range(key, start, stop)
                .await?
                .iter()
                .map(|bytes| decode(self.store_name(), key, bytes))
                .collect()
        }
    }

    /// [`KvLists::blocking_pop`], decoded from JSON.
    fn blocking_pop_json<T: DeserializeOwned>(
        &self,
        keys: &[&str],
        end: End,
        timeout: Duration,
    ) -> impl Future<Output = Result<Option<(String, T)>>> + Send {
        async move {
            match self.blocking_pop(keys, end, timeout).await? {
                Some((key, bytes)) => {
                    let value = decode(self.store_name(), &key, &bytes)?;
                    Ok(Some((key, value)))
                }
                None => Ok(None),
            }
        }
    }
}

impl<L: KvLists + ?Sized> KvListsExt for L {}
