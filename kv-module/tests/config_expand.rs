//! `${...}` expansion through the loader: every form, re-typing of plain
//! placeholders, and no way for a value to change the document's shape.

use std::collections::BTreeMap;

use kv_module::config::{ConfigLoader, Expander, Resolver};
use serde_json::{Value, json};

// Inside `mod config` so that `cargo test config` selects these tests.
mod config {
    use super::*;

    /// An application's own resolver (`${@vault:path}`).
    struct Vault;

    impl Resolver for Vault {
        fn resolve(&self, argument: &str) -> Result<String, String> {
            match argument {
                "secret/redis" => Ok("from-vault".to_owned()),
                other => Err(format!("no secret at `{other}`")),
            }
        }
    }

    fn env(name: &str) -> Option<String> {
        let value = match name {
            "REDIS_HOST" => "redis.internal",
            "REDIS_DB" => "3",
            "EMPTY" => "",
            "FLAG" => "false",
            "RATIO" => "0.25",
            "NEGATIVE" => "-7",
            "NULLISH" => "~",
            "INJECTION" => "x\nevil: 1",
            "FLOW_INJECTION" => "a, evil: 1}",
            "LOOKS_LIKE_PLACEHOLDER" => "${REDIS_HOST}",
            _ => return None,
        };
        Some(value.to_owned())
    }

    fn loader() -> ConfigLoader {
        ConfigLoader::new()
            .with_expander(Expander::new().with_env(env).with_resolver("vault", Vault))
    }

    #[test]
    fn every_form() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("redis_password");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let crlf = dir.path().join("crlf");
        std::fs::write(&crlf, "s3cret\r\n").unwrap();

        // (YAML value as written, expected value as JSON)
        let cases: Vec<(String, Value)> = vec![
            // ${VAR}: set, unset.
            ("${REDIS_HOST}".into(), json!("redis.internal")),
            ("\"${UNSET}\"".into(), json!("")),
            // ${VAR:default}: the first `:` splits.
            (
                "${REDIS_ADDR:localhost:6379}".into(),
                json!("localhost:6379"),
            ),
            (
                "${REDIS_HOST:localhost:6379}".into(),
                json!("redis.internal"),
            ),
            ("${EMPTY:fallback}".into(), json!("fallback")),
            ("'${UNSET:}'".into(), json!("")),
            // Within other text.
            (
                "redis://${REDIS_HOST}:6379/${REDIS_DB}".into(),
                json!("redis://redis.internal:6379/3"),
            ),
            (
                "\"${REDIS_HOST}:${PORT:6379}\"".into(),
                json!("redis.internal:6379"),
            ),
            // $${ is a literal ${, and what follows is not expanded.
            ("$${REDIS_HOST}".into(), json!("${REDIS_HOST}")),
            (
                "'cost: $${UNTERMINATED'".into(),
                json!("cost: ${UNTERMINATED"),
            ),
            ("price $5".into(), json!("price $5")),
            // Single pass.
            ("${LOOKS_LIKE_PLACEHOLDER}".into(), json!("${REDIS_HOST}")),
            // Resolvers: the built-in file (one newline trimmed), the
            // application's own.
            (format!("${{@file:{}}}", secret.display()), json!("s3cret")),
            (format!("${{@file:{}}}", crlf.display()), json!("s3cret")),
            ("${@vault:secret/redis}".into(), json!("from-vault")),
            // A plain scalar that is wholly a placeholder is re-typed.
            ("${REDIS_DB:0}".into(), json!(3)),
            ("${UNSET_DB:0}".into(), json!(0)),
            ("${FLAG:true}".into(), json!(false)),
            ("${UNSET_FLAG:true}".into(), json!(true)),
            ("${RATIO}".into(), json!(0.25)),
            ("${NEGATIVE}".into(), json!(-7)),
            ("${NULLISH}".into(), json!(null)),
            ("${UNSET}".into(), json!(null)),
            // ... but not a quoted or block one, nor a partial one.
            ("\"${FLAG:true}\"".into(), json!("false")),
            ("\"${UNSET_FLAG:true}\"".into(), json!("true")),
            ("'${REDIS_DB:0}'".into(), json!("3")),
            ("|-\n    ${REDIS_DB}".into(), json!("3")),
            ("1${REDIS_DB}".into(), json!("13")),
            // Plain scalars without placeholders are typed as YAML does.
            ("42".into(), json!(42)),
            ("true".into(), json!(true)),
            ("'42'".into(), json!("42")),
        ];
        let mut yaml = String::from("values:\n");
        for (index, (written, _)) in cases.iter().enumerate() {
            yaml.push_str(&format!("  v{index}: {written}\n"));
        }
        let config = loader().load_str("expand.yaml", &yaml).unwrap();
        let values: BTreeMap<String, Value> = config.section("values").unwrap().unwrap();
        for (index, (written, expected)) in cases.iter().enumerate() {
            assert_eq!(&values[&format!("v{index}")], expected, "{written}");
        }
    }

    #[test]
    fn a_value_cannot_change_the_structure() {
        let yaml = "\
services:
  cache:
    type: kvstore_redis
    config:
      password: ${INJECTION}
      flow: {a: \"${FLOW_INJECTION}\"}
      quoted: \"${INJECTION}\"
";
        let config = loader().load_str("inject.yaml", yaml).unwrap();
        let cache = config.service("cache").unwrap();
        let fields: BTreeMap<String, Value> = cache.config().unwrap();
        assert_eq!(
            fields,
            BTreeMap::from([
                ("password".to_owned(), json!("x\nevil: 1")),
                ("flow".to_owned(), json!({"a": "a, evil: 1}"})),
                ("quoted".to_owned(), json!("x\nevil: 1")),
            ])
        );
        assert_eq!(config.services().len(), 1);
    }

    #[test]
    fn unquoted_placeholder_in_flow_collection_gets_a_hint() {
        let error = loader()
            .load_str("flow.yaml", "values: {a: ${REDIS_HOST}}\n")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("flow.yaml:1:"), "{error}");
        assert!(error.contains("must be quoted"), "{error}");
    }

    #[test]
    fn keys_are_not_expanded() {
        let config = loader()
            .load_str("keys.yaml", "values:\n  ${REDIS_HOST}: 1\n")
            .unwrap();
        let values: BTreeMap<String, u8> = config.section("values").unwrap().unwrap();
        assert_eq!(values.keys().collect::<Vec<_>>(), ["${REDIS_HOST}"]);
    }

    #[test]
    fn typed_fields_after_expansion() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Redis {
            addr: String,
            db: u8,
            password: Option<String>,
            prefix: String,
        }
        let yaml = "\
services:
  session_cache:
    type: kvstore_redis
    config:
      addr: ${REDIS_ADDR:localhost:6379}
      password: ${REDIS_PASSWORD}
      db: ${REDIS_DB:1}
      prefix: ${PREFIX}
";
        let config = loader().load_str("typed.yaml", yaml).unwrap();
        let redis: Redis = config.service("session_cache").unwrap().config().unwrap();
        assert_eq!(
            redis,
            Redis {
                addr: "localhost:6379".to_owned(),
                db: 3,
                // Unset: `None` for an `Option`, `""` for a `String`.
                password: None,
                prefix: String::new(),
            }
        );
    }

    #[test]
    fn expanded_values_are_not_in_debug_output() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s");
        std::fs::write(&secret, "hunter2\n").unwrap();
        let yaml = format!(
            "services:\n  c:\n    type: t\n    config:\n      a: ${{@file:{}}}\n      password: plain-secret\n",
            secret.display()
        );
        let config = loader().load_str("debug.yaml", &yaml).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("plain-secret"), "{shown}");
    }
}
