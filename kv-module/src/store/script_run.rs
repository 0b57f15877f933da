//! [`ScriptRun`]: what the Rust twin of a [`Script`](super::Script) sees —
//! its `KEYS` and `ARGV` through typed accessors, and the database
//! restricted to those keys.
//!
//! The restriction is the point: on a Redis Cluster a script may touch only
//! the keys it declares (they decide the node it runs on), so a script that
//! builds a key name works on one server and fails on a cluster. The Lua
//! cannot be checked before it runs, but its twin can: every test on the
//! memory backend runs the twin, and a twin that reaches for an undeclared
//! key fails there with an error naming the key. The accessors replace the
//! `key`/`arg` helpers each component used to carry, with one error format
//! that names the script and the index.

use super::ScriptOps;

/// One run of a Rust twin: the script's `KEYS` and `ARGV`, and the
/// database commands of [`ScriptOps`] limited to the declared keys.
///
/// Indexes are 0-based (`key(0)` is Lua's `KEYS[1]`); error messages give
/// the Lua index. Every method that fails returns the message the run
/// should fail with, so twins use `?` throughout.
///
/// ```
/// use kv_module::store::{Script, ScriptOps, ScriptValue};
/// # use std::collections::HashMap;
/// # #[derive(Default)]
/// # struct Db(HashMap<String, Vec<u8>>);
/// # impl ScriptOps for Db {
/// #     fn get(&mut self, key: &str) -> Option<Vec<u8>> { self.0.get(key).cloned() }
/// #     fn set(&mut self, key: &str, value: &[u8], _: Option<u64>) { self.0.insert(key.into(), value.to_vec()); }
/// #     fn set_keep_ttl(&mut self, key: &str, value: &[u8]) { self.set(key, value, None) }
/// #     fn del(&mut self, key: &str) -> bool { self.0.remove(key).is_some() }
/// #     fn pttl(&mut self, key: &str) -> i64 { if self.0.contains_key(key) { -1 } else { -2 } }
/// #     fn pexpire(&mut self, key: &str, _: u64) -> bool { self.0.contains_key(key) }
/// #     fn now_ms(&self) -> u64 { 0 }
/// # }
///
/// /// Copies KEYS[1] to KEYS[2].
/// static COPY: Script = Script::new(
///     "copy",
///     "local v = redis.call('GET', KEYS[1]) if v then redis.call('SET', KEYS[2], v) end return 1",
///     |run| {
///         let (from, to) = (run.key(0)?, run.key(1)?);
///         if let Some(value) = run.get(from)? {
///             run.set(to, &value, None)?;
///         }
///         Ok(ScriptValue::Int(1))
///     },
/// );
///
/// /// Builds a key name instead of taking it from KEYS: refused.
/// static SNEAKY: Script = Script::new("sneaky", "return redis.call('GET', KEYS[1] .. ':x')", |run| {
///     let key = format!("{}:x", run.key(0)?);
///     Ok(run.get(&key)?.map_or(ScriptValue::Nil, ScriptValue::Bytes))
/// });
///
/// let mut db = Db::default();
/// db.set("a", b"1", None);
/// let keys = ["a".to_owned(), "b".to_owned()];
/// assert_eq!(COPY.run_memory(&mut db, &keys, &[]), Ok(ScriptValue::Int(1)));
/// assert_eq!(db.get("b").as_deref(), Some(&b"1"[..]));
/// let err = SNEAKY.run_memory(&mut db, &keys[..1], &[]).unwrap_err();
/// assert!(err.contains("sneaky") && err.contains("a:x"), "{err}");
/// let err = COPY.run_memory(&mut db, &keys[..1], &[]).unwrap_err();
/// assert_eq!(err, "script `copy`: missing KEYS[2]");
/// ```
pub struct ScriptRun<'a> {
    script: &'static str,
    ops: &'a mut dyn ScriptOps,
    keys: &'a [String],
    args: &'a [Vec<u8>],
}

impl<'a> ScriptRun<'a> {
    /// A run of the script `script` over `ops`.
    pub(crate) fn new(
        script: &'static str,
        ops: &'a mut dyn ScriptOps,
        keys: &'a [String],
        args: &'a [Vec<u8>],
    ) -> Self {
        Self {
            script,
            ops,
            keys,
            args,
        }
    }

    /// The script's name.
    pub fn script(&self) -> &'static str {
        self.script
    }

    /// An error message naming the script: `script `name`: message`.
    pub fn error(&self, message: impl std::fmt::Display) -> String {
        format!("script `{}`: {message}", self.script)
    }

    // ---- KEYS and ARGV

    /// `KEYS[i + 1]`: a stored key (prefix included).
    ///
    /// # Errors
    ///
    /// When the script was given fewer keys.
    pub fn key(&self, i: usize) -> Result<&'a str, String> {
        self.keys
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| self.error(format_args!("missing KEYS[{}]", i + 1)))
    }

    /// Every key the script was given, in order.
    pub fn keys(&self) -> &'a [String] {
        self.keys
    }

    /// The number of arguments (`#ARGV`).
    pub fn arg_count(&self) -> usize {
        self.args.len()
    }

    /// `ARGV[i + 1]` as bytes.
    ///
    /// # Errors
    ///
    /// When the script was given fewer arguments.
    pub fn arg_bytes(&self, i: usize) -> Result<&'a [u8], String> {
        self.args
            .get(i)
            .map(Vec::as_slice)
            .ok_or_else(|| self.error(format_args!("missing ARGV[{}]", i + 1)))
    }

    /// `ARGV[i + 1]` as UTF-8 text.
    ///
    /// # Errors
    ///
    /// When it is missing or not UTF-8.
    pub fn arg_str(&self, i: usize) -> Result<&'a str, String> {
        std::str::from_utf8(self.arg_bytes(i)?)
            .map_err(|_| self.error(format_args!("ARGV[{}] is not UTF-8", i + 1)))
    }

    /// `ARGV[i + 1]` as a non-negative decimal integer.
    ///
    /// # Errors
    ///
    /// When it is missing or not such an integer.
    pub fn arg_u64(&self, i: usize) -> Result<u64, String> {
        self.arg_str(i)?.parse().map_err(|_| {
            self.error(format_args!(
                "ARGV[{}] is not a non-negative integer",
                i + 1
            ))
        })
    }

    /// `ARGV[i + 1]` as a decimal `i64`.
    ///
    /// # Errors
    ///
    /// When it is missing or not such an integer.
    pub fn arg_int(&self, i: usize) -> Result<i64, String> {
        self.arg_str(i)?
            .parse()
            .map_err(|_| self.error(format_args!("ARGV[{}] is not an integer", i + 1)))
    }

    // ---- the database, declared keys only

    /// Refuses a key that is not among `KEYS`, as a Redis Cluster refuses a
    /// key the script did not declare.
    fn declared(&self, key: &str) -> Result<(), String> {
        if self.keys.iter().any(|k| k == key) {
            return Ok(());
        }
        Err(self.error(format_args!(
            "key `{key}` is not in KEYS; a script may touch only the keys it is given \
             (Redis Cluster refuses any other)"
        )))
    }

    /// `GET`.
    ///
    /// # Errors
    ///
    /// When `key` is not among `KEYS`.
    pub fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.declared(key)?;
        Ok(self.ops.get(key))
    }

    /// `SET key value [PX ms]`: replaces the value and the expiry.
    ///
    /// # Errors
    ///
    /// When `key` is not among `KEYS`, or for `PX 0` (Redis refuses it:
    /// `invalid expire time`).
    pub fn set(&mut self, key: &str, value: &[u8], px: Option<u64>) -> Result<(), String> {
        self.declared(key)?;
        if px == Some(0) {
            return Err("ERR invalid expire time in 'set' command".to_owned());
        }
        self.ops.set(key, value, px);
        Ok(())
    }

    /// `SET key value KEEPTTL`: replaces the value, keeps the expiry.
    ///
    /// # Errors
    ///
    /// When `key` is not among `KEYS`.
    pub fn set_keep_ttl(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        self.declared(key)?;
        self.ops.set_keep_ttl(key, value);
        Ok(())
    }

    /// `DEL`: whether the key existed.
    ///
    /// # Errors
    ///
    /// When `key` is not among `KEYS`.
    pub fn del(&mut self, key: &str) -> Result<bool, String> {
        self.declared(key)?;
        Ok(self.ops.del(key))
    }

    /// `PTTL`: -2 for a missing key, -1 for a persistent one, else the
    /// remaining milliseconds.
    ///
    /// # Errors
    ///
    /// When `key` is not among `KEYS`.
    pub fn pttl(&mut self, key: &str) -> Result<i64, String> {
        self.declared(key)?;
        Ok(self.ops.pttl(key))
    }

    /// `PEXPIRE`: whether the key exists.
    ///
    /// # Errors
    ///
    /// When `key` is not among `KEYS`.
    pub fn pexpire(&mut self, key: &str, ms: u64) -> Result<bool, String> {
        self.declared(key)?;
        Ok(self.ops.pexpire(key, ms))
    }

    /// The server clock in Unix milliseconds (`TIME` on Redis; `now_ms()`
    /// in the Lua prelude).
    pub fn now_ms(&self) -> u64 {
        self.ops.now_ms()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::store::{Script, ScriptValue};

    /// A database of persistent keys, enough to watch what a twin touches.
    #[derive(Default)]
    struct Db(HashMap<String, Vec<u8>>);

    impl ScriptOps for Db {
        fn get(&mut self, key: &str) -> Option<Vec<u8>> {
            self.0.get(key).cloned()
        }
        fn set(&mut self, key: &str, value: &[u8], _: Option<u64>) {
            self.0.insert(key.to_owned(), value.to_vec());
        }
        fn set_keep_ttl(&mut self, key: &str, value: &[u8]) {
            self.set(key, value, None);
        }
        fn del(&mut self, key: &str) -> bool {
            self.0.remove(key).is_some()
        }
        fn pttl(&mut self, key: &str) -> i64 {
            if self.0.contains_key(key) { -1 } else { -2 }
        }
        fn pexpire(&mut self, key: &str, _: u64) -> bool {
            self.0.contains_key(key)
        }
        fn now_ms(&self) -> u64 {
            42
        }
    }

    /// Every command of `ScriptRun` on the key named by `ARGV[1]`, which
    /// the test declares or not.
    static TOUCH: Script = Script::new("touch", "", |run| {
        let key = run.arg_str(0)?;
        let command = run.arg_str(1)?;
        match command {
            "get" => run.get(key).map(|_| ()),
            "set" => run.set(key, b"v", None),
            "set_keep_ttl" => run.set_keep_ttl(key, b"v"),
            "del" => run.del(key).map(|_| ()),
            "pttl" => run.pttl(key).map(|_| ()),
            "pexpire" => run.pexpire(key, 10).map(|_| ()),
            other => return Err(run.error(format_args!("unknown command {other}"))),
        }?;
        Ok(ScriptValue::Int(1))
    });

    fn args(parts: &[&str]) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.as_bytes().to_vec()).collect()
    }

    /// Every database command refuses a key outside `KEYS`, and changes
    /// nothing; the same command on a declared key runs.
    #[test]
    fn undeclared_keys_are_refused_by_every_command() {
        let declared = ["app:{t}:a".to_owned(), "app:{t}:b".to_owned()];
        for command in ["get", "set", "set_keep_ttl", "del", "pttl", "pexpire"] {
            let mut db = Db::default();
            db.set("app:{t}:c", b"old", None);
            let err = TOUCH
                .run_memory(&mut db, &declared, &args(&["app:{t}:c", command]))
                .unwrap_err();
            assert_eq!(
                err,
                "script `touch`: key `app:{t}:c` is not in KEYS; a script may touch only \
                 the keys it is given (Redis Cluster refuses any other)",
                "{command}"
            );
            assert_eq!(db.0.get("app:{t}:c").map(Vec::as_slice), Some(&b"old"[..]));
            assert_eq!(db.0.len(), 1, "{command} wrote nothing");
            let ok = TOUCH.run_memory(&mut db, &declared, &args(&["app:{t}:b", command]));
            assert_eq!(ok, Ok(ScriptValue::Int(1)), "{command}");
        }
    }

    static ACCESSORS: Script = Script::new("accessors", "", |run| {
        assert_eq!(run.script(), "accessors");
        assert_eq!(run.keys().len(), 1);
        assert_eq!(run.arg_count(), 4);
        assert_eq!(run.key(0)?, "k");
        assert_eq!(run.arg_bytes(0)?, b"\xff\x00");
        assert_eq!(run.arg_str(1)?, "text");
        assert_eq!(run.arg_u64(2)?, 18_446_744_073_709_551_615);
        assert_eq!(run.arg_int(3)?, -7);
        assert_eq!(run.now_ms(), 42);
        let errors = [
            run.key(1).map(|_| ()),
            run.arg_bytes(4).map(|_| ()),
            run.arg_str(0).map(|_| ()),
            run.arg_u64(3).map(|_| ()),
            run.arg_int(1).map(|_| ()),
            run.set("k", b"v", Some(0)),
        ];
        let errors: Vec<Vec<u8>> = errors
            .into_iter()
            .map(|e| e.expect_err("an error").into_bytes())
            .collect();
        Ok(ScriptValue::Array(
            errors.into_iter().map(ScriptValue::Bytes).collect(),
        ))
    });

    #[test]
    fn accessors_are_typed_and_errors_name_the_script_and_index() {
        let mut db = Db::default();
        let args = vec![
            b"\xff\x00".to_vec(),
            b"text".to_vec(),
            b"18446744073709551615".to_vec(),
            b"-7".to_vec(),
        ];
        let reply = ACCESSORS
            .run_memory(&mut db, &["k".to_owned()], &args)
            .unwrap();
        let messages: Vec<String> = reply
            .as_array()
            .unwrap()
            .iter()
            .map(|v| String::from_utf8(v.as_bytes().unwrap().to_vec()).unwrap())
            .collect();
        assert_eq!(
            messages,
            [
                "script `accessors`: missing KEYS[2]",
                "script `accessors`: missing ARGV[5]",
                "script `accessors`: ARGV[1] is not UTF-8",
                "script `accessors`: ARGV[4] is not a non-negative integer",
                "script `accessors`: ARGV[2] is not an integer",
                "ERR invalid expire time in 'set' command",
            ]
        );
        assert!(db.0.is_empty());
    }
}
