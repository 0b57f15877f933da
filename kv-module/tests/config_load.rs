//! Loading that succeeds: the reference's three stores, directories merged
//! in name order, and application sections.

use std::path::Path;

use kv_module::config::{ConfigLoader, Expander};
use serde::Deserialize;

// Inside `mod config` so that `cargo test config` selects these tests.
mod config {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Redis {
        addr: String,
        db: u8,
        prefix: String,
    }

    fn loader() -> ConfigLoader {
        ConfigLoader::new().with_expander(Expander::new().with_env(|_| None))
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    /// The reference's "Multiple KvStore Instances", as written.
    const THREE_STORES: &str = "\
services:
  # User cache
  user_cache:
    type: kvstore_redis
    config:
      addr: localhost:6379
      db: 0
      prefix: users

  # Session cache
  session_cache:
    type: kvstore_redis
    config:
      addr: localhost:6379
      db: 1
      prefix: sessions

  # Rate limit cache
  ratelimit_cache:
    type: kvstore_redis
    config:
      addr: localhost:6379
      db: 2
      prefix: ratelimit
";

    #[test]
    fn reference_three_stores() {
        let config = loader().load_str("services.yaml", THREE_STORES).unwrap();
        let names: Vec<&str> = config.services().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ratelimit_cache", "session_cache", "user_cache"]);
        for (name, db, prefix) in [
            ("user_cache", 0, "users"),
            ("session_cache", 1, "sessions"),
            ("ratelimit_cache", 2, "ratelimit"),
        ] {
            let service = config.service(name).unwrap();
            assert_eq!(service.type_name, "kvstore_redis");
            let redis: Redis = service.config().unwrap();
            assert_eq!(
                redis,
                Redis {
                    addr: "localhost:6379".to_owned(),
                    db,
                    prefix: prefix.to_owned()
                }
            );
        }
        let session = config.service("session_cache").unwrap();
        assert_eq!(session.location.to_string(), "services.yaml:12:5");
        assert_eq!(session.type_location().to_string(), "services.yaml:12:11");
        assert!(config.service("nope").is_none());
        assert!(config.files().is_empty());
    }

    #[test]
    fn directory_merges_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "20-override.yml",
            "\
services:
  cache:
    type: kvstore_redis
    config: {addr: 'override:6379', db: 2, prefix: b}
app:
  name: second
",
        );
        write(
            dir.path(),
            "10-base.yaml",
            "\
services:
  cache:
    type: kvstore_redis
    config: {addr: 'base:6379', db: 1, prefix: a}
  memory:
    type: kvstore_memory
app:
  name: first
  port: 8080
other:
  kept: true
",
        );
        write(dir.path(), "README.md", "not: [yaml");
        std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();

        let config = loader().load(dir.path()).unwrap();
        let files: Vec<_> = config
            .files()
            .iter()
            .map(|f| f.file_name().unwrap())
            .collect();
        assert_eq!(files, ["10-base.yaml", "20-override.yml"]);

        let names: Vec<&str> = config.services().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["cache", "memory"]);
        let cache: Redis = config.service("cache").unwrap().config().unwrap();
        assert_eq!(cache.addr, "override:6379");
        let location = config.service("cache").unwrap().location.to_string();
        assert!(location.contains("20-override.yml:3:5"), "{location}");

        // A later section replaces an earlier one wholesale.
        #[derive(Deserialize, Debug, PartialEq)]
        struct App {
            name: String,
            #[serde(default)]
            port: Option<u16>,
        }
        let app: App = config.section("app").unwrap().unwrap();
        assert_eq!(
            app,
            App {
                name: "second".to_owned(),
                port: None
            }
        );
        let other: serde_json::Value = config.section("other").unwrap().unwrap();
        assert_eq!(other, serde_json::json!({"kept": true}));
        assert_eq!(config.section::<App>("absent").unwrap(), None);
        assert_eq!(
            config.section::<serde_json::Value>("services").unwrap(),
            None
        );
    }

    #[test]
    fn single_file_and_empty_documents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.yaml");
        write(dir.path(), "app.yaml", THREE_STORES);
        let config = loader().load(&path).unwrap();
        assert_eq!(config.files(), [path]);
        assert_eq!(config.services().len(), 3);

        for empty in [
            "",
            "# nothing\n",
            "---\n",
            "~\n",
            "services:\n",
            "services: {}\n",
        ] {
            let config = loader().load_str("empty.yaml", empty).unwrap();
            assert!(config.services().is_empty(), "{empty:?}");
        }
    }

    #[test]
    fn anchors_share_settings() {
        let yaml = "\
defaults: &redis
  addr: localhost:6379
  prefix: shared
services:
  a:
    type: kvstore_redis
    config:
      <<: *redis
      db: 1
  b:
    type: kvstore_redis
    config: *redis
";
        let config = loader().load_str("anchors.yaml", yaml).unwrap();
        // `<<` is YAML 1.1 only: here it is an unknown field.
        let error = config.service("a").unwrap().config::<Redis>().unwrap_err();
        assert!(error.to_string().contains("unknown field `<<`"), "{error}");
        let error = config.service("b").unwrap().config::<Redis>().unwrap_err();
        assert!(error.to_string().contains("anchors.yaml:12:13:"), "{error}");
        assert!(error.to_string().contains("missing field `db`"), "{error}");
    }
}
