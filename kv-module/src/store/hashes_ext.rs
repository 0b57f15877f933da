//! [`KvHashesExt`]: typed (serde JSON) fields over any [`KvHashes`].

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::store::kv_store_ext::{decode, encode};
use crate::store::{KvHashes, Ttl};

/// Hash fields holding JSON values. Implemented for every [`KvHashes`],
/// so `store.hashes().get_json::<T>(key, field)` works on any store. A
/// value that does not decode is [`KvError::Decode`](crate::KvError::Decode)
/// naming the key; one that does not encode writes nothing.
///
/// ```
/// use std::sync::Arc;
/// use kv_module::{KvHashesExt, KvStore, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_module::Result<()> {
/// let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new("profiles", "app"));
/// store.hashes().set_json("user:1", "tags", &vec!["admin"]).await?;
/// let tags: Option<Vec<String>> = store.hashes().get_json("user:1", "tags").await?;
/// assert_eq!(tags, Some(vec!["admin".to_string()]));
/// # Ok(())
/// # }
/// ```
pub trait KvHashesExt: KvHashes {
    /// `field` decoded from JSON; `None` when missing.
    fn get_json<T: DeserializeOwned>(
        &self,
        key: &str,
        field: &str,
    ) -> impl Future<Output = Result<Option<T>>> + Send {
        async move {
            match self.get(key, field).await? {
                Some(bytes) => decode(self.store_name(), key, &bytes).map(Some),
                None => Ok(None),
            }
        }
    }

    /// Sets `field` to `value` as JSON; returns whether the field is new.
    fn set_json<T: Serialize + ?Sized + Sync>(
        &self,
        key: &str,
        field: &str,
        value: &T,
    ) -> impl Future<Output = Result<bool>> + Send {
        async move {
            let bytes = encode(self.store_name(), key, value)?;
            self.set(key, field, &bytes).await
        }
    }

    /// Sets every `(field, value)` as JSON in one step (see
    /// [`KvHashes::set_many`] for `ttl`); returns how many fields are new.
    fn set_many_json<T: Serialize + Sync>(
        &self,
        key: &str,
        fields: &[(&str, T)],
        ttl: Option<Ttl>,
    ) -> impl Future<Output = Result<u64>> + Send {
        async move {
            let encoded = fields
                .iter()
                .map(|(field, value)| Ok((*field, encode(self.store_name(), key, value)?)))
                .collect::<Result<Vec<_>>>()?;
            let batch: Vec<(&str, &[u8])> = encoded
                .iter()
                .map(|(field, bytes)| (*field, bytes.as_slice()))
                .collect();
            self.set_many(key, &batch, ttl).await
        }
    }

    /// `fields` decoded from JSON, in order, `None` for missing ones.
    fn get_many_json<T: DeserializeOwned>(
        &self,
        key: &str,
        fields: &[&str],
    ) -> impl Future<Output = Result<Vec<Option<T>>>> + Send {
        async move {
            self.get_many(key, fields)
                .await?
                .into_iter()
                .map(|bytes| match bytes {
                    Some(bytes) => decode(self.store_name(), key, &bytes).map(Some),
                    None => Ok(None),
                })
                .collect()
        }
    }

    /// Every `(field, value)` decoded from JSON, in no set order.
    fn get_all_json<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Vec<(String, T)>>> + Send {
        async move {
            self.get_all(key)
                .await?
                .into_iter()
                .map(|(field, bytes)| Ok((field, decode(self.store_name(), key, &bytes)?)))
                .collect()
        }
    }
}

impl<H: KvHashes + ?Sized> KvHashesExt for H {}
