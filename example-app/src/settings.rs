//! [`Settings`]: the app's own section of `config/services.yaml`.

use serde::Deserialize;
use std::path::PathBuf;

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
    /// Connection deadlines and cap (`app.server:`); defaults when absent.
    #[serde(default)]
    pub server: ServerLimits,
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
