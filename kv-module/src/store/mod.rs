//! The [`KvStore`] contract, its typed helpers and its backends.

mod key_space;
mod kv_store;
mod kv_store_ext;
pub mod memory;
pub mod redis;
mod script;
mod slot;
mod ttl;

pub use key_space::{KeySpace, escape_glob};
pub use kv_store::KvStore;
pub use kv_store_ext::KvStoreExt;
pub use script::{MemoryScript, Script, ScriptOps, ScriptValue};
pub use slot::{SLOTS, SlotTag, key_slot};
pub(crate) use ttl::duration_millis;
pub use ttl::{KeyTtl, MAX_TTL, Ttl};
