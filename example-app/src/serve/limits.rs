//! [`ServerLimits`]: the `app.server:` section.

use std::time::Duration;

use kv_module::config::serde_duration;
use serde::Deserialize;

/// How long a client may take and how many may connect at once.
///
/// ```yaml
/// app:
///   server:
///     header_read_timeout: 10s   # HTTP_HEADER_READ_TIMEOUT
///     body_read_timeout: 30s     # HTTP_BODY_READ_TIMEOUT
///     keep_alive_timeout: 60s    # HTTP_KEEP_ALIVE_TIMEOUT
///     max_connections: 1024      # HTTP_MAX_CONNECTIONS
///     shutdown_timeout: 10s      # SHUTDOWN_TIMEOUT
/// ```
///
/// The defaults are what a public service picks: a real client sends its
/// headers in one packet, so 10 s is generous and still frees a slow-loris
/// slot quickly; 30 s covers a 64 KiB body on a poor mobile link; 60 s of
/// keep-alive idles like common proxies (nginx 75 s); 1024 connections
/// need an open-file limit a little above 1024 for the stores' and SQLite's
/// descriptors (containers allow far more; under systemd set
/// `LimitNOFILE`), and when the cap is reached new clients wait in the
/// listen backlog rather than making `accept` fail. The shutdown
/// drain of 10 s fits inside the usual 30 s an orchestrator waits between
/// SIGTERM and SIGKILL.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerLimits {
    /// From a connection's first byte of a request (or its accept) to the
    /// end of that request's headers. Default 10 s.
    #[serde(with = "serde_duration")]
    pub header_read_timeout: Duration,
    /// From the end of the headers to the end of the body. Default 30 s.
    #[serde(with = "serde_duration")]
    pub body_read_timeout: Duration,
    /// How long a keep-alive connection may wait, idle, for its next
    /// request. Default 60 s.
    #[serde(with = "serde_duration")]
    pub keep_alive_timeout: Duration,
    /// Connections served at once; further ones wait in the listen
    /// backlog until one closes. Default 1024.
    pub max_connections: usize,
    /// After the shutdown signal: how long in-flight requests may finish
    /// before every connection is closed. Default 10 s.
    #[serde(with = "serde_duration")]
    pub shutdown_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            keep_alive_timeout: Duration::from_secs(60),
            max_connections: 1024,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl ServerLimits {
    /// Checks that no limit is zero (a zero deadline would refuse every
    /// request); the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("header_read_timeout", self.header_read_timeout),
            ("body_read_timeout", self.body_read_timeout),
            ("keep_alive_timeout", self.keep_alive_timeout),
        ] {
            if value.is_zero() {
                return Err(format!("app.server.{name} must be above zero"));
            }
        }
        if self.max_connections == 0 {
            return Err("app.server.max_connections must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_is_refused() {
        assert!(ServerLimits::default().validate().is_ok());
        let zero = ServerLimits {
            max_connections: 0,
            ..ServerLimits::default()
        };
        assert!(zero.validate().is_err());
        let zero = ServerLimits {
            header_read_timeout: Duration::ZERO,
            ..ServerLimits::default()
        };
        assert!(zero.validate().is_err());
    }
}
