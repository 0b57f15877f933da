//! [`KvStoreExt`]: typed (serde JSON) helpers over any [`KvStore`].

use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{KvError, Result};
use crate::store::{KvStore, Ttl};

/// Typed helpers that store values as JSON. Implemented for every
/// [`KvStore`], including `dyn KvStore` and `Arc<dyn KvStore>`.
///
/// ```
/// use kv_module::{KvStoreExt, MemoryStore, Ttl};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, PartialEq, Debug)]
/// struct User { id: u64, name: String }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_module::Result<()> {
/// let store = MemoryStore::new("users", "users");
/// let ada = User { id: 1, name: "Ada".into() };
/// store.set("user:1", &ada, Ttl::secs(3600)).await?;
/// assert_eq!(store.get::<User>("user:1").await?, Some(ada));
/// assert_eq!(store.get::<User>("user:2").await?, None);
/// # Ok(())
/// # }
/// ```
pub trait KvStoreExt: KvStore {
    /// The value at `key` decoded from JSON; `Ok(None)` when missing or
    /// expired; [`KvError::Decode`] naming the key when it does not decode.
    fn get<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<T>>> + Send {
        async move {
            match self.get_bytes(key).await? {
                Some(bytes) => decode(self.name(), key, &bytes).map(Some),
                None => Ok(None),
            }
        }
    }

    /// Stores `value` as JSON at `key` with the given expiry.
    fn set<T: Serialize + ?Sized + Sync>(
        &self,
        key: &str,
        value: &T,
        ttl: Ttl,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            let bytes = encode(self.name(), key, value)?;
            self.set_bytes(key, &bytes, ttl).await
        }
    }

    /// Stores `value` as JSON only if `key` is absent (`SET NX`); returns
    /// whether it was set.
    fn set_if_absent<T: Serialize + ?Sized + Sync>(
        &self,
        key: &str,
        value: &T,
        ttl: Ttl,
    ) -> impl Future<Output = Result<bool>> + Send {
        async move {
            let bytes = encode(self.name(), key, value)?;
            self.set_bytes_if_absent(key, &bytes, ttl).await
        }
    }

    /// The values of `keys` decoded from JSON, in order, `None` for missing
    /// ones; one round trip.
    fn get_many<T: DeserializeOwned>(
        &self,
        keys: &[&str],
    ) -> impl Future<Output = Result<Vec<Option<T>>>> + Send {
        async move {
            let raw = self.get_many_bytes(keys).await?;
            keys.iter()
                .zip(raw)
                .map(|(key, bytes)| match bytes {
                    Some(bytes) => decode(self.name(), key, &bytes).map(Some),
                    None => Ok(None),
                })
                .collect()
        }
    }

    /// Stores every `(key, value)` as JSON with one expiry, in one atomic
    /// round trip. Nothing is written if any value fails to encode.
    fn set_many<T: Serialize + Sync>(
        &self,
        entries: &[(&str, T)],
        ttl: Ttl,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            let encoded = entries
                .iter()
                .map(|(key, value)| Ok((*key, encode(self.name(), key, value)?)))
                .collect::<Result<Vec<_>>>()?;
            let batch: Vec<(&str, &[u8], Ttl)> = encoded
                .iter()
                .map(|(key, bytes)| (*key, bytes.as_slice(), ttl))
                .collect();
            self.set_many_bytes(&batch).await
        }
    }
}

impl<S: KvStore + ?Sized> KvStoreExt for S {}

pub(crate) fn encode<T: Serialize + ?Sized>(store: &str, key: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| KvError::Encode {
        store: Arc::from(store),
        key: key.to_owned(),
        source,
    })
}

pub(crate) fn decode<T: DeserializeOwned>(store: &str, key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| KvError::Decode {
        store: Arc::from(store),
        key: key.to_owned(),
        type_name: std::any::type_name::<T>(),
        source,
    })
}
