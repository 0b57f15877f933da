//! The in-memory backend (`kvstore_memory`): an in-process server with
//! Redis semantics, for development and single-process applications.

mod config;
mod core;
mod glob;
mod hashes;
mod lists;
mod script_ops;
mod server;
mod sets;
mod sorted_sets;
mod store;
mod transactions;
mod value;

pub use config::MemoryConfig;
pub use glob::glob_match;
pub use server::MemoryServer;
pub use store::MemoryStore;
