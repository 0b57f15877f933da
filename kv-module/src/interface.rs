//! [`Interface`]: the bound every component interface ([`Sessions`],
//! [`OneTimeCodes`], [`RateLimiter`]) carries, so that `dyn` of it is what
//! shaku resolves.
//!
//! With the `shaku` feature it *is* `shaku::Interface`; without it, a trait
//! with the same bounds (`Any + Send + Sync`), so the interfaces read the
//! same whichever features are on.
//!
//! [`Sessions`]: crate::session::Sessions
//! [`OneTimeCodes`]: crate::otp::OneTimeCodes
//! [`RateLimiter`]: crate::rate_limit::RateLimiter

#[cfg(feature = "shaku")]
pub use shaku::Interface;

/// Implemented by every sized `Any + Send + Sync` type, as
/// `shaku::Interface` is; a component interface names it as a supertrait
/// so that `dyn` of the interface implements it too.
#[cfg(not(feature = "shaku"))]
pub trait Interface: std::any::Any + Send + Sync {}

#[cfg(not(feature = "shaku"))]
impl<T: std::any::Any + Send + Sync> Interface for T {}
