//! Every bad configuration is a start-up error whose message names the
//! file, the `line:column` where there is one, and the service.

use std::path::Path;
use std::time::Duration;

use kv_module::config::{ConfigError, ConfigLoader, Expander, LoadedConfig};
use serde::Deserialize;

// Inside `mod config` so that `cargo test config` selects these tests.
mod config {
    use super::*;

    /// A small service config, strict like the real ones.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // read only through `Debug` and serde
    struct CacheAsideConfig {
        addr: String,
        #[serde(default)]
        db: u8,
        #[serde(default = "default_ttl", with = "kv_module::config::serde_duration")]
        ttl: Duration,
        #[serde(default)]
        password: Option<String>,
    }

    fn default_ttl() -> Duration {
        Duration::from_secs(60)
    }

    fn loader() -> ConfigLoader {
        ConfigLoader::new().with_expander(Expander::new().with_env(|name| match name {
            "REDIS_ADDR" => Some("redis:6379".to_owned()),
            _ => None,
        }))
    }

    fn load(text: &str) -> Result<LoadedConfig, ConfigError> {
        loader().load_str("app.yaml", text)
    }

    /// The message of loading `text` and reading service `cache`'s config.
    fn cache_error(text: &str) -> String {
        let result = load(text).and_then(|config| {
            config
                .service("cache")
                .expect("service `cache`")
                .config::<CacheAsideConfig>()
        });
        match result {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(error) => error.to_string(),
        }
    }

    fn cache(config: &str) -> String {
        format!("services:\n  cache:\n    type: kvstore_redis\n    config:\n{config}")
    }

    #[track_caller]
    fn assert_names(message: &str, parts: &[&str]) {
        for part in parts {
            assert!(message.contains(part), "`{part}` missing from: {message}");
        }
    }

    #[test]
    fn yaml_syntax_error() {
        let message = cache_error(&cache("      addr: [localhost\n      db: 1\n"));
        assert_names(
            &message,
            &["app.yaml:", "YAML syntax error", "(in service `cache`)"],
        );
        assert!(message.starts_with("app.yaml:"), "{message}");
        // `line:column` right after the file name.
        let position: Vec<&str> = message.splitn(4, ':').collect();
        assert!(position[1].parse::<usize>().is_ok(), "{message}");
        assert!(position[2].parse::<usize>().is_ok(), "{message}");
    }

    #[test]
    fn unknown_field_in_config() {
        let message = cache_error(&cache("      addr: localhost:6379\n      poolsize: 20\n"));
        assert_names(
            &message,
            &[
                "app.yaml:6:7:",
                "service `cache`",
                "`services.cache.config.poolsize`",
                "unknown field `poolsize`, expected one of `addr`, `db`, `ttl`, `password`",
            ],
        );
    }

    #[test]
    fn missing_required_field() {
        let message = cache_error(&cache("      db: 1\n"));
        assert_names(
            &message,
            &[
                "app.yaml:5:7:",
                "service `cache`",
                "`services.cache.config`",
                "missing field `addr`",
            ],
        );
    }

    #[test]
    fn missing_config_is_an_empty_mapping() {
        let text = "services:\n  cache:\n    type: kvstore_redis\n";
        let message = cache_error(text);
        assert_names(
            &message,
            &["app.yaml:3:5:", "service `cache`", "missing field `addr`"],
        );
    }

    #[test]
    fn value_out_of_range() {
        let message = cache_error(&cache("      addr: a\n      db: 300\n"));
        assert_names(
            &message,
            &[
                "app.yaml:6:11:",
                "service `cache`",
                "`services.cache.config.db`",
                "integer out of range for u8 (0 to 255)",
            ],
        );
    }

    #[test]
    fn bad_duration() {
        let message = cache_error(&cache("      addr: a\n      ttl: 5 minutes\n"));
        assert_names(
            &message,
            &[
                "app.yaml:6:12:",
                "service `cache`",
                "`services.cache.config.ttl`",
                "invalid duration",
            ],
        );
    }

    #[test]
    fn wrong_type_never_shows_the_value() {
        let message = cache_error(&cache("      addr: a\n      password: [hunter2]\n"));
        assert_names(
            &message,
            &[
                "app.yaml:6:17:",
                "service `cache`",
                "invalid type: sequence",
            ],
        );
        assert!(!message.contains("hunter2"), "{message}");
        let message = cache_error(&cache("      addr: a\n      db: hunter2\n"));
        assert_names(&message, &["invalid type: string, expected u8"]);
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn validation_after_deserialization() {
        let config = load(&cache("      addr: a\n      db: 16\n")).unwrap();
        let cache = config.service("cache").unwrap();
        let parsed: CacheAsideConfig = cache.config().unwrap();
        let message = cache
            .invalid(format!("`db` must be 0 to 15, not {}", parsed.db))
            .to_string();
        assert_eq!(
            message,
            "app.yaml:5:7: service `cache`: `services.cache.config`: `db` must be 0 to 15, not 16"
        );
    }

    #[test]
    fn unterminated_placeholder() {
        let message = cache_error(&cache("      addr: ${REDIS_ADDR\n"));
        assert_names(
            &message,
            &["app.yaml:5:13:", "service `cache`", "unterminated `${`"],
        );
    }

    #[test]
    fn unknown_resolver() {
        let message = cache_error(&cache("      addr: a\n      password: ${@vault:redis}\n"));
        assert_names(
            &message,
            &[
                "app.yaml:6:17:",
                "service `cache`",
                "unknown resolver `@vault` (known resolvers: @file)",
            ],
        );
    }

    #[test]
    fn unreadable_secret_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("redis_password");
        let message = cache_error(&cache(&format!(
            "      addr: a\n      password: ${{@file:{}}}\n",
            missing.display()
        )));
        assert_names(
            &message,
            &[
                "app.yaml:6:17:",
                "service `cache`",
                "cannot read secret file",
                &missing.display().to_string(),
            ],
        );
    }

    #[test]
    fn duplicate_key() {
        let message = cache_error(&cache("      addr: a\n      db: 1\n      db: 2\n"));
        assert_names(
            &message,
            &[
                "app.yaml:7:7:",
                "service `cache`",
                "`services.cache.config.db`",
                "duplicate key `db` (first at line 6, column 7)",
            ],
        );
    }

    #[test]
    fn missing_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.yaml");
        let error = loader().load(&path).unwrap_err();
        assert!(matches!(error, ConfigError::Read { .. }), "{error:?}");
        assert_names(&error.to_string(), &[&path.display().to_string()]);
    }

    #[test]
    fn missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conf.d");
        let error = loader().load(&path).unwrap_err();
        assert!(matches!(error, ConfigError::Read { .. }), "{error:?}");
        assert_names(&error.to_string(), &[&path.display().to_string()]);
    }

    #[test]
    fn directory_without_yaml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "services: {}\n").unwrap();
        let error = loader().load(dir.path()).unwrap_err();
        let ConfigError::Read { path, source } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(path, dir.path());
        assert!(source.to_string().contains("no *.yaml"), "{source}");
    }

    #[test]
    fn non_utf8_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, b"services:\n  x: \xff\xfe\n").unwrap();
        let error = loader().load(&path).unwrap_err();
        let ConfigError::Read { source, .. } = &error else {
            panic!("{error:?}");
        };
        assert!(source.to_string().contains("UTF-8"), "{source}");
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn type_conflict_across_files() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "10-base.yaml",
            "services:\n  cache:\n    type: kvstore_redis\n",
        );
        write(
            dir.path(),
            "20-local.yml",
            "services:\n\n  cache:\n    type:   kvstore_memory\n",
        );
        let error = loader().load(dir.path()).unwrap_err();
        let base = dir.path().join("10-base.yaml").display().to_string();
        let local = dir.path().join("20-local.yml").display().to_string();
        assert_eq!(
            error.to_string(),
            format!(
                "{local}:4:13: service `cache` has type `kvstore_memory` here \
                 but `kvstore_redis` at {base}:3:11"
            )
        );
    }

    #[test]
    fn shape_errors() {
        let cases = [
            ("- a\n- b\n", &["app.yaml:1:1:", "must be a mapping"][..]),
            (
                "services: [a]\n",
                &["app.yaml:1:11:", "`services` must be a mapping"],
            ),
            (
                "services:\n  cache: x\n",
                &["app.yaml:2:10:", "service `cache`", "must be a mapping"],
            ),
            (
                "services:\n  cache:\n    config: {}\n",
                &["app.yaml:3:5:", "service `cache`", "missing field `type`"],
            ),
            (
                "services:\n  cache:\n    type: t\n    confg: {}\n",
                &[
                    "app.yaml:4:5:",
                    "service `cache`",
                    "`services.cache.confg`",
                    "unknown key `confg`",
                ],
            ),
            (
                "services:\n  cache:\n    type: [t]\n",
                &["app.yaml:3:11:", "service `cache`", "`type` must be"],
            ),
            (
                "services:\n  cache:\n    type: t\n    config: [1]\n",
                &[
                    "app.yaml:4:13:",
                    "service `cache`",
                    "`config` must be a mapping",
                ],
            ),
            (
                "a: 1\n---\nb: 2\n",
                &["app.yaml:2:1:", "second YAML document"],
            ),
            ("a: !!str 1\n", &["app.yaml:1:4:", "tags are not supported"]),
        ];
        for (text, parts) in cases {
            let error = load(text).unwrap_err().to_string();
            assert_names(&error, parts);
        }
    }

    #[test]
    fn section_errors_name_the_path() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct App {
            port: u16,
        }
        let config = load("app:\n  port: 70000\n").unwrap();
        let error = config.section::<App>("app").unwrap_err().to_string();
        assert_eq!(
            error,
            "app.yaml:2:9: `app.port`: integer out of range for u16 (0 to 65535)"
        );
    }
}
