//! The [`KvStore`] contract, its typed helpers and its backends; beside
//! strings, one small trait per data type (hashes, lists, sets, sorted
//! sets, transactions), each in its file with its typed helpers in
//! `<type>_ext.rs` and its implementations in `memory/<type>.rs` and
//! `redis/<type>.rs`.

mod hashes;
mod hashes_ext;
mod incr_with_ttl;
mod key_space;
mod kv_store;
pub(crate) mod kv_store_ext;
pub(crate) mod lists;
mod lists_ext;
#[cfg(any(feature = "session", feature = "otp"))]
mod lua_prelude;
pub mod memory;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
mod script;
mod script_args;
mod script_run;
mod sets;
pub(crate) mod sets_ext;
mod slot;
pub(crate) mod sorted_sets;
mod sorted_sets_ext;
pub(crate) mod transaction;
mod transactions_ext;
mod ttl;
mod unsupported;

pub use hashes::KvHashes;
pub use hashes_ext::KvHashesExt;
pub use key_space::{KeySpace, escape_glob};
pub use kv_store::KvStore;
pub use kv_store_ext::KvStoreExt;
pub use lists::{End, KvLists, MAX_BLOCKING_TIMEOUT};
pub use lists_ext::KvListsExt;
#[cfg(any(feature = "session", feature = "otp"))]
pub(crate) use lua_prelude::lua_prelude;
pub use script::{MemoryScript, Script, ScriptOps, ScriptValue};
pub use script_args::ScriptArgs;
pub use script_run::ScriptRun;
pub use sets::{KvSets, ScanCursor, ScanPage};
pub use sets_ext::KvSetsExt;
pub use slot::{DIGEST_TAG_CHARS, SLOTS, SlotTag, key_slot};
pub use sorted_sets::{KvSortedSets, Limit, Order, Scored};
pub use sorted_sets_ext::KvSortedSetsExt;
pub use transaction::{KvTransactions, Transaction, UPDATE_ATTEMPTS, UpdateFn};
pub use transactions_ext::KvTransactionsExt;
pub(crate) use ttl::duration_millis;
pub use ttl::{KeyTtl, MAX_TTL, Ttl};
pub use unsupported::Unsupported;
