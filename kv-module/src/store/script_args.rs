//! [`ScriptArgs`]: the `ARGV` of a [`Script`](super::Script) call, built
//! from integers, text and bytes in one consuming chain.
//!
//! Every component passes numbers to its scripts as decimal text (what
//! Lua's `tonumber` and the twins' [`ScriptRun`](super::ScriptRun)
//! accessors read); building them here keeps that encoding in one place.

use std::fmt;
use std::ops::Deref;

/// The arguments of one script call, in `ARGV` order.
///
/// `Debug` shows only how many there are: arguments may carry user data.
///
/// ```
/// use kv_module::store::ScriptArgs;
///
/// let args = ScriptArgs::new().str("h1").uint(60_000).int(-1).bytes(b"\x00raw".to_vec());
/// assert_eq!(args.len(), 4);
/// assert_eq!(args[1], b"60000");
/// assert_eq!(args[2], b"-1");
/// assert_eq!(format!("{args:?}"), "ScriptArgs(4 arguments)");
/// // `&args` is the `&[Vec<u8>]` that `KvStore::run_script` takes.
/// let slice: &[Vec<u8>] = &args;
/// assert_eq!(slice.len(), 4);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ScriptArgs(Vec<Vec<u8>>);

impl ScriptArgs {
    /// No arguments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a signed integer, as decimal text.
    pub fn int(mut self, n: i64) -> Self {
        self.0.push(n.to_string().into_bytes());
        self
    }

    /// Appends an unsigned integer, as decimal text.
    pub fn uint(mut self, n: u64) -> Self {
        self.0.push(n.to_string().into_bytes());
        self
    }

    /// Appends text.
    pub fn str(mut self, text: &str) -> Self {
        self.0.push(text.as_bytes().to_vec());
        self
    }

    /// Appends each text of `texts`, in order.
    pub fn strs<'s>(mut self, texts: impl IntoIterator<Item = &'s str>) -> Self {
        self.0
            .extend(texts.into_iter().map(|text| text.as_bytes().to_vec()));
        self
    }

    /// Appends raw bytes.
    pub fn bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.0.push(bytes.into());
        self
    }

    /// The arguments, to pass to
    /// [`KvStore::run_script`](crate::KvStore::run_script).
    pub fn as_slice(&self) -> &[Vec<u8>] {
        &self.0
    }

    /// The arguments, owned.
    pub fn into_vec(self) -> Vec<Vec<u8>> {
        self.0
    }
}

impl Deref for ScriptArgs {
    type Target = [Vec<u8>];

    fn deref(&self) -> &[Vec<u8>] {
        &self.0
    }
}

impl fmt::Debug for ScriptArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScriptArgs({} arguments)", self.0.len())
    }
}
