//! [`Settings`]: the app's own section of `config/services.yaml`.

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

use kv_module::Secret;
use kv_module::config::serde_duration;
use kv_module::rate_limit::TrustedProxies;

use crate::serve::ServerLimits;

/// Where the configuration comes from: `--config <path>`, else
/// `APP_CONFIG`, else `config/services.yaml`.
pub fn config_path(args: impl IntoIterator<Item = String>) -> PathBuf {
    let mut args = args.into_iter().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--config" {
            if let Some(path) = args.next() {
                return PathBuf::from(path);
            }
        } else if let Some(path) = arg.strip_prefix("--config=") {
            return PathBuf::from(path);
        }
    }
    std::env::var_os("APP_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("config/services.yaml"))
}

/// The `app:` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Listen address (`APP_ADDR`).
    pub addr: String,
    /// SQLite database (`DATABASE_URL`): a path, or `sqlite://path`.
    pub database_url: String,
    /// Whether the OTP issue response carries the code (`OTP_DEV_ECHO`).
    #[serde(default)]
    pub otp_dev_echo: bool,
    /// The SMTP relay one-time codes are mailed through (`SMTP_URL`,
    /// `smtp://host:port`, `smtps://user:password@host`); empty: no mail.
    /// A secret: it may hold the relay's password.
    #[serde(default)]
    pub smtp_url: Secret,
    /// The sender of code mails (`SMTP_FROM`); required with `smtp_url`.
    #[serde(default)]
    pub smtp_from: String,
    /// The bound on one code delivery, connection included
    /// (`SMTP_TIMEOUT`). Default 10 s.
    #[serde(default = "default_smtp_timeout", with = "serde_duration")]
    pub smtp_timeout: Duration,
    /// The reverse proxies whose `X-Forwarded-For` names the client
    /// (`TRUSTED_PROXIES`: comma-separated CIDRs or addresses); empty, the
    /// default, trusts none and every client is its peer address.
    #[serde(default, deserialize_with = "comma_separated_proxies")]
    pub trusted_proxies: TrustedProxies,
    /// Connection deadlines and cap (`app.server:`); defaults when absent.
    #[serde(default)]
    pub server: ServerLimits,
    /// Whether the app records and exports metrics (`APP_METRICS`,
    /// default `true`). `false` installs no `metrics` recorder, so every
    /// figure kv-module and the app record is a no-op, and `/metrics`
    /// answers 404.
    #[serde(default = "default_metrics")]
    pub metrics: bool,
}

fn default_metrics() -> bool {
    true
}

fn default_smtp_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `10.0.0.0/8, 192.0.2.7` (one string, as an environment variable gives
/// it) into [`TrustedProxies`]; empty entries are skipped, a bad one is an
/// error naming it.
fn comma_separated_proxies<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<TrustedProxies, D::Error> {
    let text = String::deserialize(deserializer)?;
    TrustedProxies::parse(text.split(',').map(str::trim).filter(|s| !s.is_empty())).map_err(|e| {
        match e {
            kv_module::config::ConfigError::InvalidSetting { message, .. } => {
                serde::de::Error::custom(message)
            }
            other => serde::de::Error::custom(other),
        }
    })
}

impl Settings {
    /// The SQLite file path of `database_url`.
    pub fn database_path(&self) -> PathBuf {
        let url = self.database_url.as_str();
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        PathBuf::from(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_path_from_flag_env_or_default() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            config_path(args(&["app", "--config", "x.yaml"])),
            PathBuf::from("x.yaml")
        );
        assert_eq!(
            config_path(args(&["app", "--config=dir"])),
            PathBuf::from("dir")
        );
    }
}
