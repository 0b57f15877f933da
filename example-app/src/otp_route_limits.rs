//! [`OtpRouteLimits`]: the per-client-IP limits of the two OTP routes, and
//! [`OtpRouteLimiters`], its component.

use std::sync::Arc;

use kv_module::rate_limit::{KvRateLimiter, NamedPolicy, RateLimitPolicy, RateLimiter};
use kv_module::registry::{RegistryError, ServiceRegistry, StoreRef};
use serde::Deserialize;
use shaku::{Component, Interface};

/// The `otp_rate_limit:` section: per-client-IP policies of the two OTP
/// routes, across users, on top of the API-wide limit.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtpRateLimitSection {
    /// The rate-limit store.
    pub store: StoreRef,
    /// `POST /api/auth/otp`.
    pub issue: RateLimitPolicy,
    /// `POST /api/auth/otp/verify`.
    pub verify: RateLimitPolicy,
}

/// The limiters of `POST /api/auth/otp` and `/api/auth/otp/verify`, per
/// client IP across users: the shaku interface the OTP handlers inject
/// (`dyn OtpRouteLimits`).
///
/// An interface of its own because shaku binds one component per
/// interface and the module's `dyn RateLimiter` is already the API-wide
/// limiter: these are two more [`KvRateLimiter`]s, reached through one
/// component, [`OtpRouteLimiters`].
pub trait OtpRouteLimits: Interface {
    /// The limiter of `POST /api/auth/otp`.
    fn issue(&self) -> &dyn RateLimiter;

    /// The limiter of `POST /api/auth/otp/verify`.
    fn verify(&self) -> &dyn RateLimiter;
}

/// The component of [`OtpRouteLimits`]: two [`KvRateLimiter`]s on the
/// `otp_rate_limit:` section's store.
#[derive(Clone, Component)]
#[shaku(interface = OtpRouteLimits)]
pub struct OtpRouteLimiters {
    /// `POST /api/auth/otp`'s limiter.
    issue: Arc<dyn RateLimiter>,
    /// `POST /api/auth/otp/verify`'s limiter.
    verify: Arc<dyn RateLimiter>,
}

impl OtpRouteLimiters {
    /// The limiters of `section`, on the store it names in `registry`;
    /// `component` names the section in errors.
    ///
    /// # Errors
    ///
    /// An unknown store, or a policy that does not validate.
    pub fn from_registry(
        registry: &ServiceRegistry,
        component: &str,
        section: OtpRateLimitSection,
    ) -> Result<Self, RegistryError> {
        let store = registry.store_for(component, &section.store)?;
        Ok(Self {
            issue: Arc::new(KvRateLimiter::from_named(
                store.clone(),
                NamedPolicy::new("otp-issue", section.issue)?,
            )),
            verify: Arc::new(KvRateLimiter::from_named(
                store,
                NamedPolicy::new("otp-verify", section.verify)?,
            )),
        })
    }

    /// The shaku parameters that build these limiters inside a module.
    pub fn into_parameters(self) -> OtpRouteLimitersParameters {
        OtpRouteLimitersParameters {
            issue: self.issue,
            verify: self.verify,
        }
    }
}

impl OtpRouteLimits for OtpRouteLimiters {
    fn issue(&self) -> &dyn RateLimiter {
        self.issue.as_ref()
    }

    fn verify(&self) -> &dyn RateLimiter {
        self.verify.as_ref()
    }
}
