//! [`chain`]: an error with its sources, for failure messages that say
//! why (a TLS refusal, a timeout) and not only what failed.

use std::error::Error;

/// An error with its sources, `: `-separated.
pub fn chain(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
