//! [`KvHashes`] on the memory backend: each call one step under the
//! database lock, as each is one command on Redis.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::time::Instant;

use super::core::Core;
use super::store::{format_integer, parse_integer};
use crate::error::{KvError, Result};
use crate::store::{KvHashes, Ttl};

type Hash = BTreeMap<Vec<u8>, Vec<u8>>;

fn field_name(field: &[u8]) -> String {
    String::from_utf8_lossy(field).into_owned()
}

#[async_trait]
impl KvHashes for Core {
    fn store_name(&self) -> &str {
        &self.name
    }

    async fn set(&self, key: &str, field: &str, value: &[u8]) -> Result<bool> {
        self.update(key, |hash: &mut Hash| {
            Ok(hash
                .insert(field.as_bytes().to_vec(), value.to_vec())
                .is_none())
        })
    }

    async fn set_many(&self, key: &str, fields: &[(&str, &[u8])], ttl: Option<Ttl>) -> Result<u64> {
        if fields.is_empty() {
            return Ok(0);
        }
        let millis = match ttl {
            Some(ttl) => Some(ttl.to_millis(&self.name, key)?),
            None => None,
        };
        self.ensure_open()?;
        let stored = self.space.stored_key(key);
        let mut db = self.lock();
        let now = Instant::now();
        let deadline = match millis {
            Some(millis) => Some(self.deadline(now, millis, key)?),
            None => None,
        };
        let added = self.update_locked(&mut db, key, &stored, now, |hash: &mut Hash| {
            let mut added = 0;
            for (field, value) in fields {
                if hash
                    .insert(field.as_bytes().to_vec(), value.to_vec())
                    .is_none()
                {
                    added += 1;
                }
            }
            Ok(added)
        })?;
        if let Some(deadline) = deadline {
            db.set_expiry(&stored, deadline, now);
        }
        Ok(added)
    }

    async fn get(&self, key: &str, field: &str) -> Result<Option<Vec<u8>>> {
        self.read(key, |hash: Option<&Hash>| {
            hash.and_then(|hash| hash.get(field.as_bytes()).cloned())
        })
    }

    async fn get_many(&self, key: &str, fields: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        self.read(key, |hash: Option<&Hash>| {
            fields
                .iter()
                .map(|field| hash.and_then(|hash| hash.get(field.as_bytes()).cloned()))
                .collect()
        })
    }

    async fn get_all(&self, key: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.read(key, |hash: Option<&Hash>| {
            hash.into_iter()
                .flatten()
                .map(|(field, value)| (field_name(field), value.clone()))
                .collect()
        })
    }

    async fn delete(&self, key: &str, fields: &[&str]) -> Result<u64> {
        if fields.is_empty() {
            return Ok(0);
        }
        self.update(key, |hash: &mut Hash| {
            Ok(fields
                .iter()
                .filter(|field| hash.remove(field.as_bytes()).is_some())
                .count() as u64)
        })
    }

    async fn incr_by(&self, key: &str, field: &str, delta: i64) -> Result<i64> {
        let error = |overflow: bool| {
            let (store, key) = (Arc::clone(&self.name), key.to_owned());
            if overflow {
                KvError::Overflow { store, key }
            } else {
                KvError::NotAnInteger { store, key }
            }
        };
        self.update(key, |hash: &mut Hash| {
            let current = match hash.get(field.as_bytes()) {
                Some(value) => parse_integer(value).ok_or_else(|| error(false))?,
                None => 0,
            };
            let next = current.checked_add(delta).ok_or_else(|| error(true))?;
            hash.insert(
                field.as_bytes().to_vec(),
                format_integer(next).as_bytes().to_vec(),
            );
            Ok(next)
        })
    }

    async fn exists(&self, key: &str, field: &str) -> Result<bool> {
        self.read(key, |hash: Option<&Hash>| {
            hash.is_some_and(|hash| hash.contains_key(field.as_bytes()))
        })
    }

    async fn len(&self, key: &str) -> Result<u64> {
        self.read(key, |hash: Option<&Hash>| {
            hash.map_or(0, |hash| hash.len() as u64)
        })
    }
}
