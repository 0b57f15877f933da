//! [`observe`]: the look at a record's keys before a load, which also
//! takes the load's ticket.

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::entry::{Lookup, load_ticket, lookup};
use super::keys::RecordKeys;
use super::random;
use super::scripts::OBSERVE;
use crate::config::millis;
use crate::error::KvError;
use crate::store::{KvStore, ScriptArgs, ScriptValue};

/// Reads the entry, the negative key and the mark of a record in one
/// atomic step, recording a load ticket (for `tombstone_ttl`) when there
/// is neither a cached "not found" nor a mark. A miss carries the ticket
/// the load must still find at write-back. An entry that does not decode
/// is a miss (reported by the read that missed before).
///
/// # Errors
///
/// The store's, and a reply of another shape than the script's.
pub(crate) async fn observe<V: DeserializeOwned>(
    store: &dyn KvStore,
    tombstone_ttl: Duration,
    keys: &RecordKeys,
) -> Result<Lookup<V>, KvError> {
    let args = ScriptArgs::new()
        .bytes(load_ticket(&random::token()))
        .uint(millis(tombstone_ttl));
    let reply = store.run_script(&OBSERVE, &keys.record(), &args).await?;
    let malformed = || KvError::Backend {
        store: store.name().into(),
        op: "cache observe",
        key: Some(keys.entry.clone()),
        source: format!("unexpected reply {reply:?}").into(),
    };
    let ScriptValue::Array(items) = &reply else {
        return Err(malformed());
    };
    let bytes = |item: &ScriptValue| match item {
        ScriptValue::Bytes(b) => Some(b.clone()),
        _ => None,
    };
    let [entry, negative, mark] = items.as_slice() else {
        return Err(malformed());
    };
    let negative = negative.as_int().ok_or_else(malformed)? != 0;
    Ok(lookup(bytes(entry), negative, bytes(mark)).0)
}
