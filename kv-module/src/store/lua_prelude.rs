//! [`lua_prelude!`]: the Lua helpers every component's scripts share,
//! expanding to a string literal so a script is
//! `concat!(lua_prelude!(), "...its own Lua...")`.
//!
//! Only what is really common lives here: the server clock and integer
//! formatting. Their Rust counterparts are
//! [`ScriptRun::now_ms`](super::ScriptRun::now_ms) and `to_string`.
//!
//! * `now_ms()`: the server's clock (`TIME`) in Unix milliseconds, so that
//!   application instances whose clocks differ agree.
//! * `int(n)`: an integral Lua number as decimal text. Lua's default
//!   number format switches to exponent notation above 10^14, which
//!   neither `PX` nor a stored counter accepts.

/// The shared Lua prelude, as a string literal (see the
/// [module documentation](self)).
macro_rules! lua_prelude {
    () => {
        r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function int(n)
  return string.format('%d', n)
end
"#
    };
}

pub(crate) use lua_prelude;
