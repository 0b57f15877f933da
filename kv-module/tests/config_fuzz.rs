//! No input may panic, hang or exhaust the loader: arbitrary bytes,
//! YAML-ish fragments and generated documents go through loading and
//! typed reading, which must return `Ok` or `Err`, nothing else.
//!
//! Bounded for CI (2,000 cases each, inputs of at most 512 bytes), so the
//! whole file runs in seconds in a debug build.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kv_module::config::{ConfigLoader, Expander, LoadedConfig};
use proptest::prelude::*;
use serde::Deserialize;

// Inside `mod config` so that `cargo test config` selects these tests.
mod config {
    use super::*;

    /// A small service config like the real ones.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // only deserialized
    struct Small {
        addr: String,
        #[serde(default)]
        db: u8,
        #[serde(default)]
        password: Option<String>,
        #[serde(default, with = "kv_module::config::serde_duration_opt")]
        ttl: Option<Duration>,
        #[serde(default)]
        hosts: Vec<String>,
        #[serde(default)]
        mode: Mode,
        #[serde(default)]
        extra: BTreeMap<String, i64>,
    }

    #[derive(Debug, Deserialize, Default)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Mode {
        #[default]
        Standalone,
        Cluster(Vec<String>),
        Sentinel {
            master: String,
        },
    }

    const MAX_LEN: usize = 512;

    fn loader() -> ConfigLoader {
        ConfigLoader::new().with_expander(Expander::new().with_env(|name| match name {
            "A" => Some("1".to_owned()),
            "B" => Some("x\nevil: 1".to_owned()),
            "C" => Some("[1, {a: b}]".to_owned()),
            "D" => Some(String::new()),
            _ => None,
        }))
    }

    /// Everything an application would do with a loaded configuration.
    fn exercise(config: &LoadedConfig) {
        for service in config.services() {
            let _ = format!("{service:?} {}", service.type_location());
            let _ = service.config::<Small>().map_err(|e| e.to_string());
            let _ = service
                .config::<serde_json::Value>()
                .map_err(|e| e.to_string());
            let _ = service.config::<BTreeMap<String, String>>();
            let _ = service.invalid("checked").to_string();
        }
        for key in ["a", "b", "x", "services", ""] {
            let _ = config
                .section::<serde_json::Value>(key)
                .map_err(|e| e.to_string());
            let _ = config.section::<Small>(key).map_err(|e| e.to_string());
        }
    }

    fn load(text: &str) {
        match loader().load_str("fuzz.yaml", text) {
            Ok(config) => exercise(&config),
            Err(error) => {
                let _ = format!("{error} {error:?}");
            }
        }
    }

    /// Pieces of YAML, placeholders and the service schema.
    fn fragment() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            ":",
            ": ",
            "-",
            "- ",
            "[",
            "]",
            "{",
            "}",
            ",",
            "?",
            "? ",
            "&a ",
            "*a",
            "&b ",
            "*b",
            "!!tag ",
            "!x ",
            "!!str ",
            "${",
            "$${",
            "}",
            "${A}",
            "${B}",
            "${C}",
            "${D:x:y}",
            "${@file:/nonexistent}",
            "${@nope:x}",
            "${1}",
            "'",
            "\"",
            "\\",
            "\n",
            "\n  ",
            "\n    ",
            "  ",
            "\t",
            "#",
            "# c\n",
            "|",
            ">",
            "|-\n  ",
            "---\n",
            "...\n",
            "%YAML 1.2\n",
            "~",
            "null",
            "true",
            "1",
            "300",
            "-1",
            "0x1F",
            "1e3",
            ".inf",
            "5m",
            "é",
            "\u{feff}",
            "services",
            "services:\n  s:\n    type: t\n    config:\n      ",
            "type",
            "config",
            "addr",
            "db",
            "password",
            "mode",
            "cluster",
            "sentinel",
            "master",
            "hosts",
            "extra",
            "a",
            "b",
            "x",
        ])
    }

    /// A generated document tree.
    #[derive(Clone, Debug)]
    enum Tree {
        Scalar(String),
        Seq(Vec<Tree>, bool),
        Map(Vec<(String, Tree)>, bool),
    }

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => prop::sample::select(vec![
                "1", "300", "-5", "true", "~", "", "5m", "localhost:6379", "${A}", "${B}",
                "${C}", "${D}", "${UNSET:1}", "\"${A}\"", "'x'", "$${A}", "cluster",
                "sentinel", "standalone", "|\n  text",
            ])
            .prop_map(str::to_owned),
            3 => "[a-z][a-z0-9 ]{0,10}[a-z0-9]",
            1 => prop::sample::select(vec!["${", "&a x", "*a", "!!int 3", "\"open", "- x"])
                .prop_map(str::to_owned),
            1 => "[a-z0-9 :${}\\-\"']{0,12}",
        ]
    }

    /// One field of [`Small`], valid or not.
    fn small_field() -> impl Strategy<Value = (String, String)> {
        let candidates: Vec<(&str, Vec<&str>)> = vec![
            (
                "addr",
                vec![
                    "localhost:6379",
                    "${A}",
                    "${UNSET:redis:6379}",
                    "[x]",
                    "~",
                    "12",
                ],
            ),
            (
                "db",
                vec!["0", "15", "300", "-1", "${A}", "'1'", "x", "1.5", "~"],
            ),
            (
                "password",
                vec!["s3cret", "${B}", "0123", "~", "${UNSET}", "[a]"],
            ),
            (
                "ttl",
                vec![
                    "5m",
                    "1h30m",
                    "5",
                    "${UNSET:30s}",
                    "99999999999999999999d",
                    "~",
                ],
            ),
            (
                "hosts",
                vec![
                    "[a, b]",
                    "[]",
                    "a",
                    "[${A}, 1]",
                    "\n        - a\n        - b",
                ],
            ),
            (
                "mode",
                vec![
                    "standalone",
                    "{cluster: [a, b]}",
                    "{sentinel: {master: m}}",
                    "cluster",
                    "{sentinel: x}",
                    "bogus",
                ],
            ),
            (
                "extra",
                vec![
                    "{a: 1}",
                    "{}",
                    "{a: x}",
                    "{a: 99999999999999999999999}",
                    "[1]",
                ],
            ),
            ("unknown", vec!["1"]),
        ];
        prop::sample::select(candidates).prop_flat_map(|(field, values)| {
            prop::sample::select(values).prop_map(move |value| (field.to_owned(), value.to_owned()))
        })
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "addr", "db", "password", "ttl", "hosts", "mode", "extra", "cluster", "sentinel",
                "master", "services", "type", "config", "a", "b", "x",
            ])
            .prop_map(str::to_owned),
            "[a-z]{1,6}",
        ]
    }

    fn tree() -> impl Strategy<Value = Tree> {
        scalar()
            .prop_map(Tree::Scalar)
            .prop_recursive(4, 32, 6, |inner| {
                prop_oneof![
                    (prop::collection::vec(inner.clone(), 0..6), any::<bool>())
                        .prop_map(|(items, flow)| Tree::Seq(items, flow)),
                    (prop::collection::vec((key(), inner), 0..6), any::<bool>())
                        .prop_map(|(entries, flow)| Tree::Map(entries, flow)),
                ]
            })
    }

    /// Renders `tree` as the value after a `key:`, in block style at
    /// `indent` or, for flow and empty collections, inline.
    fn render(tree: &Tree, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match tree {
            Tree::Seq(items, false) if !items.is_empty() => {
                out.push('\n');
                for item in items {
                    out.push_str(&pad);
                    out.push('-');
                    render(item, indent + 2, out);
                }
            }
            Tree::Map(entries, false) if !entries.is_empty() => {
                out.push('\n');
                for (key, value) in entries {
                    out.push_str(&pad);
                    out.push_str(key);
                    out.push(':');
                    render(value, indent + 2, out);
                }
            }
            _ => {
                out.push(' ');
                render_flow(tree, out);
                out.push('\n');
            }
        }
    }

    fn render_flow(tree: &Tree, out: &mut String) {
        match tree {
            // Quoted, since `{` and `}` would end a plain scalar here.
            Tree::Scalar(text) if text.starts_with("${") => {
                out.push('"');
                out.push_str(text);
                out.push('"');
            }
            Tree::Scalar(text) => out.push_str(text),
            Tree::Seq(items, _) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push_str(", ");
                    }
                    render_flow(item, out);
                }
                out.push(']');
            }
            Tree::Map(entries, _) => {
                out.push('{');
                for (index, (key, value)) in entries.iter().enumerate() {
                    if index > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(key);
                    out.push_str(": ");
                    render_flow(value, out);
                }
                out.push('}');
            }
        }
    }

    /// At most [`MAX_LEN`] bytes, cut on a character boundary.
    fn bounded(mut text: String) -> String {
        if text.len() > MAX_LEN {
            let mut end = MAX_LEN;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        text
    }

    fn settings() -> ProptestConfig {
        ProptestConfig {
            cases: 2000,
            // No regression files written into the source tree.
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(settings())]

        #[test]
        fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..MAX_LEN)) {
            load(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn yaml_fragments(pieces in prop::collection::vec(fragment(), 0..96)) {
            load(&bounded(pieces.concat()));
        }

        #[test]
        fn generated_documents(services in tree(), other in tree()) {
            let mut text = String::from("services:\n  s:\n    type: t\n    config:");
            render(&services, 6, &mut text);
            text.push_str("  t:\n    type: u\n    config:");
            render(&other, 6, &mut text);
            text.push_str("a:");
            render(&other, 2, &mut text);
            load(&bounded(text));
        }
    }

    proptest! {
        #![proptest_config(settings())]

        #[test]
        fn service_configs(fields in prop::collection::vec(small_field(), 0..8)) {
            let mut text = String::from("services:\n  s:\n    type: t\n    config:\n");
            for (field, value) in fields {
                text.push_str(&format!("      {field}: {value}\n"));
            }
            load(&bounded(text));
        }
    }

    #[test]
    fn alias_bomb_fails_fast() {
        // "Billion laughs": 10^9 strings if expanded.
        let mut text = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for level in 1..9 {
            let previous = format!("*l{}", level - 1);
            let items = [previous.as_str(); 10].join(", ");
            text.push_str(&format!("l{level}: &l{level} [{items}]\n"));
        }
        let started = Instant::now();
        let error = loader()
            .load_str("bomb.yaml", &text)
            .unwrap_err()
            .to_string();
        assert!(error.contains("anchors and aliases expand"), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn deep_nesting_is_an_error() {
        for text in [
            "[".repeat(100_000),
            "{a: ".repeat(10_000),
            (0..300)
                .map(|i| format!("{}- \n", " ".repeat(i * 2)))
                .collect(),
            (0..300).map(|i| format!("{}k:\n", " ".repeat(i))).collect(),
        ] {
            assert!(loader().load_str("deep.yaml", &text).is_err());
        }
    }

    #[test]
    fn self_referencing_alias_is_an_error() {
        for text in ["a: &a [*a]\n", "a: &a {b: *a}\n", "&a [*a]"] {
            let error = loader()
                .load_str("cycle.yaml", text)
                .unwrap_err()
                .to_string();
            assert!(error.contains("cycle"), "{error}");
        }
    }
}
