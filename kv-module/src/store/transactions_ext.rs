//! [`KvTransactionsExt`]: a typed (serde JSON) compare-and-set over any
//! [`KvTransactions`].

use std::future::Future;
use std::sync::Mutex;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{KvError, Result};
use crate::store::kv_store_ext::{decode, encode};
use crate::store::{KvTransactions, Ttl};

/// [`KvTransactions::update`] on JSON values. Implemented for every
/// [`KvTransactions`].
///
/// ```
/// use std::sync::Arc;
/// use kv_module::{KvStore, KvTransactionsExt, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_module::Result<()> {
/// let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new("carts", "app"));
/// let cart = store
///     .transactions()
///     .update_json("cart:1", None, |items: Option<Vec<String>>| {
///         let mut items = items.unwrap_or_default();
///         items.push("book".into());
///         Some(items)
///     })
///     .await?;
/// assert_eq!(cart, Some(vec!["book".to_string()]));
/// # Ok(())
/// # }
/// ```
pub trait KvTransactionsExt: KvTransactions {
    /// Replaces the JSON value at `key` with `f(current)` (`None` deletes
    /// it), as a compare-and-set retried on conflict; returns what was
    /// written. When the current value does not decode, or the new one
    /// does not encode, the error is returned and the value is left as it
    /// was (written back unchanged: with `ttl` `Some`, its expiry is still
    /// set). `f` may run more than once.
    fn update_json<T, F>(
        &self,
        key: &str,
        ttl: Option<Ttl>,
        f: F,
    ) -> impl Future<Output = Result<Option<T>>> + Send
    where
        T: Serialize + DeserializeOwned + Send,
        F: Fn(Option<T>) -> Option<T> + Send + Sync,
    {
        async move {
            let store = self.store_name().to_owned();
            // The last attempt's error, if any. An attempt that fails
            // leaves the key as it found it (it writes back what it read,
            // which the compare-and-set turns into a no-op write of the
            // same bytes) and the error is returned afterwards.
            let failed: Mutex<Option<KvError>> = Mutex::new(None);
            let written: Mutex<Option<T>> = Mutex::new(None);
            let raw = |current: Option<&[u8]>| -> Option<Vec<u8>> {
                let keep = || current.map(<[u8]>::to_vec);
                let value = match current
                    .map(|bytes| decode::<T>(&store, key, bytes))
                    .transpose()
                {
                    Ok(value) => value,
                    Err(e) => {
                        *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        return keep();
                    }
                };
                let next = f(value);
                let encoded = match next.as_ref().map(|v| encode(&store, key, v)).transpose() {
                    Ok(encoded) => encoded,
                    Err(e) => {
                        *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        return keep();
                    }
                };
                *failed.lock().unwrap_or_else(|p| p.into_inner()) = None;
                *written.lock().unwrap_or_else(|p| p.into_inner()) = next;
                encoded
            };
            self.update(key, ttl, &raw).await?;
            if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
                return Err(e);
            }
            Ok(written.into_inner().unwrap_or_else(|p| p.into_inner()))
        }
    }
}

impl<X: KvTransactions + ?Sized> KvTransactionsExt for X {}
