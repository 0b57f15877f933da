//! [`KvSetsExt`]: typed (serde JSON) members over any [`KvSets`].

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::store::kv_store_ext::{decode, encode};
use crate::store::{KvSets, ScanCursor};

/// Set members as JSON. Implemented for every [`KvSets`]. A member is its
/// JSON text, so two values are one member only when they encode to the
/// same bytes: use types whose encoding is stable (structs, `BTreeMap`,
/// not `HashMap`).
///
/// ```
/// use std::sync::Arc;
/// use kv_module::{KvSetsExt, KvStore, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_module::Result<()> {
/// let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new("tags", "app"));
/// assert_eq!(store.sets().add_json("post:1", &[1_u32, 2, 2]).await?, 2);
/// assert!(store.sets().is_member_json("post:1", &2_u32).await?);
/// let mut ids: Vec<u32> = store.sets().members_json("post:1").await?;
/// ids.sort();
/// assert_eq!(ids, [1, 2]);
/// # Ok(())
/// # }
/// ```
pub trait KvSetsExt: KvSets {
    /// Adds `members` as JSON; returns how many were new.
    fn add_json<T: Serialize + Sync>(
        &self,
        key: &str,
        members: &[T],
    ) -> impl Future<Output = Result<u64>> + Send {
        async move {
            let encoded = encode_all(self.store_name(), key, members)?;
            let refs: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
            self.add(key, &refs).await
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

    /// Whether `member` (as JSON) is in the set.
    fn is_member_json<T: Serialize + ?Sized + Sync>(
        &self,
        key: &str,
        member: &T,
    ) -> impl Future<Output = Result<bool>> + Send {
        async move {
            let bytes = encode(self.store_name(), key, member)?;
            self.is_member(key, &bytes).await
        }
    }

    /// Every member decoded from JSON, in no set order.
    fn members_json<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Vec<T>>> + Send {
        async move {
            self.members(key)
                .await?
                .iter()
                .map(|bytes| decode(self.store_name(), key, bytes))
                .collect()
        }
    }

    /// One page of [`KvSets::scan`], members decoded from JSON, with the
    /// cursor of the next page (`None` at the end).
    fn scan_json<T: DeserializeOwned>(
        &self,
        key: &str,
        cursor: &ScanCursor,
        count: u32,
    ) -> impl Future<Output = Result<(Vec<T>, Option<ScanCursor>)>> + Send {
        async move {
            let page = self.scan(key, cursor, count).await?;
            let members = page
                .members
                .iter()
                .map(|bytes| decode(self.store_name(), key, bytes))
                .collect::<Result<Vec<T>>>()?;
            Ok((members, page.next))
        }
    }
}

impl<S: KvSets + ?Sized> KvSetsExt for S {}

/// Every value as JSON, or the first encoding error.
pub(crate) fn encode_all<T: Serialize>(
    store: &str,
    key: &str,
    values: &[T],
) -> Result<Vec<Vec<u8>>> {
    values
        .iter()
        .map(|value| encode(store, key, value))
        .collect()
}
