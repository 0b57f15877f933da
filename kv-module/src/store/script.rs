//! [`Script`]: one atomic server-side step, written twice — in Lua for
//! Redis and in Rust for the memory backend — and run by
//! [`KvStore::run_script`](crate::KvStore::run_script).
//!
//! Components use scripts for everything that must hold under concurrency
//! (single-use codes, rate-limit counts, session creation with its index):
//! Redis runs a script without interleaving other commands, and the memory
//! backend runs the Rust twin under the database lock. Both twins are run
//! by the same tests, on both backends, so they cannot drift apart
//! unnoticed.

use std::sync::OnceLock;

use super::ScriptRun;

/// A value passed back from a script (the Redis reply types a script can
/// return).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptValue {
    /// Lua `false` / `nil`.
    Nil,
    /// An integer.
    Int(i64),
    /// A string (binary safe).
    Bytes(Vec<u8>),
    /// A list.
    Array(Vec<ScriptValue>),
}

impl ScriptValue {
    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The bytes, if this is a string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The items, if this is a list.
    pub fn as_array(&self) -> Option<&[ScriptValue]> {
        match self {
            Self::Array(items) => Some(items),
            _ => None,
        }
    }
}

/// The Redis commands a Rust twin runs on a locked database, as a backend
/// implements them (the memory backend's database, or a test's fake).
/// Keys are stored keys (already prefixed), values are raw bytes; the
/// semantics are those of the Redis command each method is named after.
///
/// Twins do not call this directly: they go through [`ScriptRun`], which
/// refuses keys the script was not given.
pub trait ScriptOps {
    /// `GET`.
    fn get(&mut self, key: &str) -> Option<Vec<u8>>;
    /// `SET key value [PX ms]`: replaces the value and the expiry.
    fn set(&mut self, key: &str, value: &[u8], px: Option<u64>);
    /// `SET key value KEEPTTL`: replaces the value, keeps the expiry.
    fn set_keep_ttl(&mut self, key: &str, value: &[u8]);
    /// `DEL`: whether the key existed.
    fn del(&mut self, key: &str) -> bool;
    /// `PTTL`: -2 for a missing key, -1 for a persistent one, else the
    /// remaining milliseconds.
    fn pttl(&mut self, key: &str) -> i64;
    /// `PEXPIRE`: whether the key exists.
    fn pexpire(&mut self, key: &str, ms: u64) -> bool;
    /// The server clock in Unix milliseconds (`TIME` on Redis).
    fn now_ms(&self) -> u64;
}

/// The Rust twin of a script: it reads its `KEYS` and `ARGV` and reaches
/// the database through a [`ScriptRun`], and returns the reply or an error
/// message (the equivalent of `redis.error_reply`).
pub type MemoryScript = fn(&mut ScriptRun<'_>) -> Result<ScriptValue, String>;

/// An atomic server-side step: Lua for Redis, a Rust function for memory.
///
/// Define scripts as `static`s so the Lua is hashed once: a backend that
/// caches scripts server-side (Redis runs them by `EVALSHA` and loads them
/// on `NOSCRIPT`) names them by [`sha1`](Self::sha1). The contract names
/// no client library; each backend turns a script into its own calls.
///
/// A script touches only the keys it is given in `KEYS`, and never builds
/// a key name: on a Redis Cluster every key of a script must be declared
/// and live in one slot. The Rust twin is held to the first rule — its
/// [`ScriptRun`] refuses any other key — so every test on the memory
/// backend checks it.
///
/// ```
/// use kv_module::store::{Script, ScriptValue};
///
/// /// Sets KEYS[1] to ARGV[1] only if it currently holds ARGV[2].
/// static COMPARE_AND_SET: Script = Script::new(
///     "compare and set",
///     "if redis.call('GET', KEYS[1]) == ARGV[2] then \
///        redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL') return 1 end return 0",
///     |run| {
///         let (key, new, expected) = (run.key(0)?, run.arg_bytes(0)?, run.arg_bytes(1)?);
///         if run.get(key)?.as_deref() == Some(expected) {
///             run.set_keep_ttl(key, new)?;
///             return Ok(ScriptValue::Int(1));
///         }
///         Ok(ScriptValue::Int(0))
///     },
/// );
/// ```
pub struct Script {
    name: &'static str,
    lua: &'static str,
    memory: MemoryScript,
    sha1: OnceLock<String>,
}

impl Script {
    /// A script named `name` (used in error messages), from its Lua source
    /// and its Rust twin.
    pub const fn new(name: &'static str, lua: &'static str, memory: MemoryScript) -> Self {
        Self {
            name,
            lua,
            memory,
            sha1: OnceLock::new(),
        }
    }

    /// The script's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The Lua source.
    pub fn lua(&self) -> &'static str {
        self.lua
    }

    /// Runs the Rust twin over `ops` with `keys` (stored keys) and `args`:
    /// what the memory backend does under its lock. The twin may touch only
    /// `keys`; any other key fails the run with an error naming it.
    ///
    /// # Errors
    ///
    /// The twin's error message, or the refusal of an undeclared key.
    pub fn run_memory(
        &self,
        ops: &mut dyn ScriptOps,
        keys: &[String],
        args: &[Vec<u8>],
    ) -> Result<ScriptValue, String> {
        let mut run = ScriptRun::new(self.name, ops, keys, args);
        (self.memory)(&mut run)
    }

    /// The SHA1 of the Lua source in lowercase hex, as Redis names the
    /// script in `EVALSHA` (computed on first use, then kept).
    pub fn sha1(&self) -> &str {
        self.sha1
            .get_or_init(|| sha1_smol::Sha1::from(self.lua).digest().to_string())
    }
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script")
            .field("name", &self.name)
            .field("sha1", &self.sha1())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::{Script, ScriptValue};

    static RETURN_ONE: Script = Script::new("one", "return 1", |_| Ok(ScriptValue::Int(1)));

    #[test]
    fn sha1_is_the_name_redis_gives_the_lua() {
        // `SCRIPT LOAD "return 1"` answers this hash (Redis' EVALSHA docs).
        assert_eq!(
            RETURN_ONE.sha1(),
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
        assert!(format!("{RETURN_ONE:?}").contains("e0e1f9fabfc9d4800c877a703b823ac0578ff8db"));
    }
}
