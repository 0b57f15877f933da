//! The [`KvStore`] contract, its typed helpers and its backends.

mod hashes;
mod key_space;
mod kv_store;
mod kv_store_ext;
pub(crate) mod lists;
#[cfg(any(feature = "session", feature = "otp", feature = "rate-limit"))]
mod lua_prelude;
pub mod memory;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
mod script;
mod script_args;
mod script_run;
mod sets;
mod slot;
pub(crate) mod sorted_sets;
pub(crate) mod transaction;
mod ttl;
mod unsupported;

pub use hashes::KvHashes;
pub use key_space::{KeySpace, escape_glob};
pub use kv_store::KvStore;
pub use kv_store_ext::KvStoreExt;
pub use lists::{End, KvLists, MAX_BLOCKING_TIMEOUT};
#[cfg(any(feature = "session", feature = "otp", feature = "rate-limit"))]
pub(crate) use lua_prelude::lua_prelude;
pub use script::{MemoryScript, Script, ScriptOps, ScriptValue};
pub use script_args::ScriptArgs;
pub use script_run::ScriptRun;
pub use sets::{KvSets, ScanCursor, ScanPage};
pub use slot::{DIGEST_TAG_CHARS, SLOTS, SlotTag, key_slot};
pub use sorted_sets::{KvSortedSets, Limit, Order, Scored};
pub use transaction::{KvTransactions, Transaction, UPDATE_ATTEMPTS, UpdateFn};
pub(crate) use ttl::duration_millis;
pub use ttl::{KeyTtl, MAX_TTL, Ttl};
pub use unsupported::Unsupported;
