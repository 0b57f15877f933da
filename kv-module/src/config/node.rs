//! [`Node`]: a YAML document as a tree whose every node knows its
//! `file:line:column`, built from granit-parser's events.
//!
//! Decisions, all made so that a configuration file can be trusted not to
//! hang, exhaust memory or panic the loader:
//!
//! * **One document per file.** A second `---` document is an error
//!   (silently ignoring it would hide configuration); split documents into
//!   files of a configuration directory instead. An empty file is an empty
//!   mapping.
//! * **Tags are refused** (`!!str`, `!Custom`): nothing in a configuration
//!   needs them, and honouring some while ignoring others would change
//!   types silently. Quote a value to make it a string.
//! * **Mapping keys are scalars**, unique within their mapping (compared
//!   as written, so `1` and `"1"` collide, as they would as field names).
//! * **Anchors and aliases** are resolved by copying, under a budget of
//!   100,000 nodes and 16 MiB of text copied in total, so an alias bomb
//!   ("billion laughs") is an error in microseconds. An alias to an
//!   anchor still being defined (a cycle) is an error.
//! * **Nesting** is bounded at 128 levels, both in the parser and here,
//!   which also bounds every recursion over the tree.
//! * **Scalars** are typed by the YAML 1.2 core schema when plain (`null`,
//!   `~` and empty; `true`/`false`; decimal, `0o` and `0x` integers;
//!   floats, `.inf`, `.nan`); quoted and block scalars are strings. Merge
//!   keys (`<<`) are YAML 1.1 and have no special meaning.
//! * **Expansion** ([`Expander`]) runs after parsing, on scalar values
//!   only (never keys); a plain scalar that was wholly one placeholder is
//!   then re-typed from its value, one containing a placeholder among
//!   other text becomes a string.

use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use granit_parser::{Event, Marker, Parser, ScalarStyle, Span};

use super::error::{ConfigError, Location};
use super::expand::Expander;

/// Deepest nesting of sequences and mappings accepted.
const MAX_DEPTH: usize = 128;
/// Most nodes that anchors and aliases may copy in one file.
const MAX_ALIAS_NODES: usize = 100_000;
/// Most scalar text (bytes) that anchors and aliases may copy in one file.
const MAX_ALIAS_BYTES: usize = 16 * 1024 * 1024;

/// One node of a parsed configuration file: a scalar, a sequence or a
/// mapping, with the [`Location`] where it starts.
///
/// `Debug` shows the structure but redacts values that came from a
/// placeholder and values under keys containing `password`, `secret` or
/// `token`.
#[derive(Clone, PartialEq)]
pub struct Node {
    location: Location,
    value: Value,
}

/// What a node holds.
#[derive(Clone, PartialEq)]
pub(crate) enum Value {
    Scalar(Scalar),
    Sequence(Vec<Node>),
    /// Entries in document order; keys are scalars and unique.
    Mapping(Vec<(Node, Node)>),
}

/// A scalar: its text, as written (after YAML escapes and expansion), and
/// its type.
#[derive(Clone, PartialEq)]
pub(crate) struct Scalar {
    pub(crate) text: String,
    /// Written plain (not quoted, not a block scalar).
    plain: bool,
    pub(crate) typed: Typed,
    /// Produced by a placeholder: may be a secret, never printed.
    expanded: bool,
}

/// The core-schema type of a scalar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Typed {
    Null,
    Bool(bool),
    Int(i128),
    /// An integer too large for `i128`.
    BigInt,
    Float(f64),
    Str,
}

impl Node {
    /// Where this node starts in its file.
    pub fn location(&self) -> &Location {
        &self.location
    }

    pub(crate) fn value(&self) -> &Value {
        &self.value
    }

    /// The text of a scalar node.
    pub(crate) fn text(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(scalar) => Some(&scalar.text),
            _ => None,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s) if s.typed == Typed::Null)
    }

    /// An empty mapping at `location`.
    pub(crate) fn empty_mapping(location: Location) -> Node {
        Node {
            location,
            value: Value::Mapping(Vec::new()),
        }
    }

    /// Parses one YAML document. `file` labels every [`Location`].
    ///
    /// Never panics: the parse runs under `catch_unwind` so that even a
    /// bug in the parser is a [`ConfigError::Syntax`].
    pub(crate) fn parse(file: &Arc<str>, text: &str) -> Result<Node, ConfigError> {
        let run = || Builder::new(file).run(text);
        catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|_| {
            Err(ConfigError::Syntax {
                location: Location {
                    file: file.clone(),
                    line: 1,
                    column: 1,
                },
                message: "internal error in the YAML parser".to_owned(),
            })
        })
    }

    /// Expands the placeholders of every scalar value (not keys). Errors
    /// name the service when the scalar is inside `services.<name>`.
    pub(crate) fn expand(&mut self, expander: &Expander) -> Result<(), ConfigError> {
        let Value::Mapping(entries) = &mut self.value else {
            return self.expand_in(expander, None);
        };
        for (key, value) in entries {
            match (key.text(), &mut value.value) {
                (Some("services"), Value::Mapping(services)) => {
                    for (name, service) in services {
                        service.expand_in(expander, name.text())?;
                    }
                }
                _ => value.expand_in(expander, None)?,
            }
        }
        Ok(())
    }

    fn expand_in(&mut self, expander: &Expander, service: Option<&str>) -> Result<(), ConfigError> {
        match &mut self.value {
            Value::Scalar(scalar) => {
                scalar
                    .expand(expander)
                    .map_err(|reason| ConfigError::Expand {
                        location: self.location.clone(),
                        service: service.map(str::to_owned),
                        reason,
                    })
            }
            Value::Sequence(items) => items
                .iter_mut()
                .try_for_each(|item| item.expand_in(expander, service)),
            Value::Mapping(entries) => entries
                .iter_mut()
                .try_for_each(|(_, value)| value.expand_in(expander, service)),
        }
    }

    /// Size of the subtree: nodes, scalar bytes, collection depth.
    /// Recursion is bounded by [`MAX_DEPTH`], which the builder enforces.
    fn measure(&self) -> (usize, usize, usize) {
        match &self.value {
            Value::Scalar(scalar) => (1, scalar.text.len(), 0),
            Value::Sequence(items) => items.iter().fold((1, 0, 1), |acc, item| {
                let (n, b, d) = item.measure();
                (acc.0 + n, acc.1 + b, acc.2.max(d + 1))
            }),
            Value::Mapping(entries) => entries.iter().fold((1, 0, 1), |acc, (key, value)| {
                let (kn, kb, _) = key.measure();
                let (n, b, d) = value.measure();
                (acc.0 + kn + n, acc.1 + kb + b, acc.2.max(d + 1))
            }),
        }
    }

    /// Whether values under this key are kept out of `Debug` output.
    fn is_secret_key(&self) -> bool {
        self.text().is_some_and(|key| {
            let key = key.to_ascii_lowercase();
            ["password", "secret", "token"]
                .iter()
                .any(|word| key.contains(word))
        })
    }
}

impl Scalar {
    fn new(text: String, style: ScalarStyle) -> Scalar {
        let plain = style == ScalarStyle::Plain;
        let typed = if plain {
            core_schema(&text)
        } else {
            Typed::Str
        };
        Scalar {
            text,
            plain,
            typed,
            expanded: false,
        }
    }

    fn expand(&mut self, expander: &Expander) -> Result<(), String> {
        // Also true for `$${`, which must be unescaped.
        if !self.text.contains("${") {
            return Ok(());
        }
        let expanded = expander.expand(&self.text)?;
        self.text = expanded.value;
        self.expanded = true;
        self.typed = if self.plain && expanded.whole_placeholder {
            core_schema(&self.text)
        } else {
            Typed::Str
        };
        Ok(())
    }
}

/// The YAML 1.2 core schema's type for a plain scalar.
fn core_schema(text: &str) -> Typed {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Typed::Null,
        "true" | "True" | "TRUE" => return Typed::Bool(true),
        "false" | "False" | "FALSE" => return Typed::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Typed::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Typed::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Typed::Float(f64::NAN),
        _ => {}
    }
    let all =
        |digits: &str, radix: u32| !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
    let integer =
        |digits: &str, radix: u32, negative: bool| match i128::from_str_radix(digits, radix) {
            Ok(value) if negative => Typed::Int(-value),
            Ok(value) => Typed::Int(value),
            Err(_) => Typed::BigInt,
        };
    if let Some(digits) = text.strip_prefix("0o").filter(|d| all(d, 8)) {
        return integer(digits, 8, false);
    }
    if let Some(digits) = text.strip_prefix("0x").filter(|d| all(d, 16)) {
        return integer(digits, 16, false);
    }
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if all(unsigned, 10) {
        return integer(unsigned, 10, negative);
    }
    if is_core_float(unsigned)
        && let Ok(value) = text.parse::<f64>()
    {
        return Typed::Float(value);
    }
    Typed::Str
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` (the sign is already
/// removed).
fn is_core_float(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", fraction)) => !fraction.is_empty() && digits(fraction),
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => !mantissa.is_empty() && digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted;
        impl fmt::Debug for Redacted {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }
        match &self.value {
            Value::Scalar(scalar) if scalar.expanded => Redacted.fmt(f),
            Value::Scalar(scalar) => match scalar.typed {
                Typed::Null => f.write_str("null"),
                Typed::Bool(value) => write!(f, "{value}"),
                Typed::Int(value) => write!(f, "{value}"),
                Typed::Float(value) => write!(f, "{value:?}"),
                Typed::BigInt | Typed::Str => write!(f, "{:?}", scalar.text),
            },
            Value::Sequence(items) => f.debug_list().entries(items).finish(),
            Value::Mapping(entries) => {
                let mut map = f.debug_map();
                for (key, value) in entries {
                    if key.is_secret_key() {
                        map.entry(key, &Redacted);
                    } else {
                        map.entry(key, value);
                    }
                }
                map.finish()
            }
        }
    }
}

/// A collection being built.
enum Frame {
    Sequence {
        location: Location,
        anchor: usize,
        items: Vec<Node>,
    },
    Mapping {
        location: Location,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        /// The key read, waiting for its value.
        key: Option<Node>,
        /// Keys so far, for duplicates.
        seen: HashMap<String, Location>,
    },
}

/// An anchored node and its measured size, charged on each alias.
struct Anchored {
    node: Node,
    nodes: usize,
    bytes: usize,
    depth: usize,
}

/// Builds a [`Node`] from parser events with an explicit stack (no
/// recursion) bounded by [`MAX_DEPTH`].
struct Builder<'f> {
    file: &'f Arc<str>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    copied_nodes: usize,
    copied_bytes: usize,
    root: Option<Node>,
    documents: usize,
}

impl<'f> Builder<'f> {
    fn new(file: &'f Arc<str>) -> Self {
        Builder {
            file,
            stack: Vec::new(),
            anchors: HashMap::new(),
            copied_nodes: 0,
            copied_bytes: 0,
            root: None,
            documents: 0,
        }
    }

    fn run(mut self, text: &str) -> Result<Node, ConfigError> {
        let options = granit_parser::options! {
            emit_comments: false,
            flow_nesting_limit: MAX_DEPTH,
            block_nesting_limit: MAX_DEPTH,
        };
        for next in Parser::new_from_str_with_options(text, options) {
            let (event, span) = next.map_err(|error| {
                let mut message = error.info();
                let line = error.marker().line().saturating_sub(1);
                let flow_placeholder =
                    |line: &str| line.contains("${") && line.replace("${", "").contains(['[', '{']);
                if text.lines().nth(line).is_some_and(flow_placeholder) {
                    // `{` and `}` end a plain scalar inside `[...]` and
                    // `{...}`: a likely cause on such a line.
                    message.push_str(" (a `${...}` inside `[...]` or `{...}` must be quoted)");
                }
                self.syntax(self.location(error.marker()), message)
            })?;
            self.event(event, span)?;
        }
        Ok(self.root.unwrap_or_else(|| {
            Node::empty_mapping(Location {
                file: self.file.clone(),
                line: 1,
                column: 1,
            })
        }))
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), ConfigError> {
        let location = self.location(&span.start);
        match event {
            Event::DocumentStart(..) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(self.syntax(
                        location,
                        "a second YAML document (`---`) in one file; \
                         put each in its own file of a configuration directory",
                    ));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.refuse_tag(tag.as_deref(), &span)?;
                let node = Node {
                    location,
                    value: Value::Scalar(Scalar::new(text.into_owned(), style)),
                };
                self.complete(node, anchor)?;
            }
            Event::SequenceStart(_, anchor, tag) => {
                self.refuse_tag(tag.as_deref(), &span)?;
                self.open(Frame::Sequence {
                    location,
                    anchor,
                    items: Vec::new(),
                })?;
            }
            Event::MappingStart(_, anchor, tag) => {
                self.refuse_tag(tag.as_deref(), &span)?;
                self.open(Frame::Mapping {
                    location,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                    seen: HashMap::new(),
                })?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Sequence {
                        location,
                        anchor,
                        items,
                    }) => (
                        Node {
                            location,
                            value: Value::Sequence(items),
                        },
                        anchor,
                    ),
                    Some(Frame::Mapping {
                        location,
                        anchor,
                        entries,
                        ..
                    }) => (
                        Node {
                            location,
                            value: Value::Mapping(entries),
                        },
                        anchor,
                    ),
                    None => return Err(self.syntax(location, "unbalanced collection end")),
                };
                self.complete(node, anchor)?;
            }
            Event::Alias(id) => {
                let node = self.alias(id, location)?;
                self.complete(node, 0)?;
            }
            Event::UnresolvedAlias(name) => {
                return Err(self.syntax(location, format!("unknown anchor `{name}`")));
            }
            // Stream and document boundaries, and presentation metadata
            // (comments and anchor names, which are not requested).
            _ => {}
        }
        Ok(())
    }

    fn location(&self, marker: &Marker) -> Location {
        Location {
            file: self.file.clone(),
            // Files are capped at 16 MiB, so positions fit in a u32.
            line: u32::try_from(marker.line()).unwrap_or(u32::MAX),
            column: u32::try_from(marker.col().saturating_add(1)).unwrap_or(u32::MAX),
        }
    }

    /// A syntax error; inside `services.<name>` the message names the
    /// service, as the `Syntax` variant has no field for it.
    fn syntax(&self, location: Location, message: impl Into<String>) -> ConfigError {
        let mut message = message.into();
        if let Some(service) = self.service() {
            message.push_str(&format!(" (in service `{service}`)"));
        }
        ConfigError::Syntax { location, message }
    }

    fn refuse_tag(&self, tag: Option<&granit_parser::Tag>, span: &Span) -> Result<(), ConfigError> {
        match tag {
            None => Ok(()),
            Some(tag) => {
                let at = span.tag_start.unwrap_or(span.start);
                Err(self.syntax(
                    self.location(&at),
                    format!(
                        "YAML tags are not supported (`{}`); quote the value to make it a string",
                        tag.original()
                    ),
                ))
            }
        }
    }

    fn open(&mut self, frame: Frame) -> Result<(), ConfigError> {
        if self.stack.len() >= MAX_DEPTH {
            let location = match &frame {
                Frame::Sequence { location, .. } | Frame::Mapping { location, .. } => {
                    location.clone()
                }
            };
            return Err(self.syntax(location, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.stack.push(frame);
        Ok(())
    }

    /// A copy of the anchored node, charged to the alias budget.
    fn alias(&mut self, id: usize, location: Location) -> Result<Node, ConfigError> {
        let Some(anchored) = self.anchors.get(&id) else {
            return Err(self.syntax(
                location,
                "alias to an anchor that is still being defined (a cycle)",
            ));
        };
        let (nodes, bytes, depth) = (anchored.nodes, anchored.bytes, anchored.depth);
        if self.stack.len() + depth > MAX_DEPTH {
            return Err(self.syntax(
                location,
                format!("alias nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.charge(nodes, bytes, &location)?;
        let mut node = self
            .anchors
            .get(&id)
            .map(|anchored| anchored.node.clone())
            .ok_or_else(|| self.syntax(location.clone(), "unknown anchor"))?;
        node.location = location;
        Ok(node)
    }

    fn charge(
        &mut self,
        nodes: usize,
        bytes: usize,
        location: &Location,
    ) -> Result<(), ConfigError> {
        self.copied_nodes = self.copied_nodes.saturating_add(nodes);
        self.copied_bytes = self.copied_bytes.saturating_add(bytes);
        if self.copied_nodes > MAX_ALIAS_NODES || self.copied_bytes > MAX_ALIAS_BYTES {
            return Err(self.syntax(
                location.clone(),
                format!(
                    "anchors and aliases expand to more than {MAX_ALIAS_NODES} nodes \
                     or {} MiB of text",
                    MAX_ALIAS_BYTES / (1024 * 1024)
                ),
            ));
        }
        Ok(())
    }

    /// Places a finished node in its parent (or as the document root).
    fn complete(&mut self, node: Node, anchor: usize) -> Result<(), ConfigError> {
        if anchor != 0 {
            let (nodes, bytes, depth) = node.measure();
            // Keeping a copy for later aliases costs as much as one alias.
            self.charge(nodes, bytes, &node.location)?;
            let anchored = Anchored {
                node: node.clone(),
                nodes,
                bytes,
                depth,
            };
            self.anchors.insert(anchor, anchored);
        }
        if matches!(self.stack.last(), Some(Frame::Mapping { key: None, .. })) {
            self.check_key(&node)?;
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Sequence { items, .. }) => items.push(node),
            Some(Frame::Mapping { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(key) => entries.push((key, node)),
            },
        }
        Ok(())
    }

    /// A key must be a scalar not already in its mapping.
    fn check_key(&mut self, key: &Node) -> Result<(), ConfigError> {
        let Some(text) = key.text() else {
            return Err(self.syntax(
                key.location.clone(),
                "a mapping key must be a scalar, not a sequence or mapping",
            ));
        };
        let first = match self.stack.last() {
            Some(Frame::Mapping { seen, .. }) => seen.get(text).cloned(),
            _ => None,
        };
        if let Some(first) = first {
            let mut path = self.path();
            path.push(text.to_owned());
            return Err(ConfigError::Invalid {
                location: key.location.clone(),
                service: self.service(),
                path: path.join("."),
                message: format!(
                    "duplicate key `{text}` (first at line {}, column {})",
                    first.line, first.column
                ),
            });
        }
        if let Some(Frame::Mapping { seen, .. }) = self.stack.last_mut() {
            seen.insert(text.to_owned(), key.location.clone());
        }
        Ok(())
    }

    /// The key path to the node being read (`services.x.config`).
    fn path(&self) -> Vec<String> {
        self.stack
            .iter()
            .filter_map(|frame| match frame {
                Frame::Sequence { items, .. } => Some(items.len().to_string()),
                Frame::Mapping { key, .. } => key.as_ref().and_then(Node::text).map(str::to_owned),
            })
            .collect()
    }

    /// The service being read: the key under a top-level `services:`.
    fn service(&self) -> Option<String> {
        match self.stack.as_slice() {
            [
                Frame::Mapping { key: Some(top), .. },
                Frame::Mapping {
                    key: Some(name), ..
                },
                ..,
            ] if top.text() == Some("services") => name.text().map(str::to_owned),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Node, ConfigError> {
        Node::parse(&Arc::from("test.yaml"), text)
    }

    fn at(node: &Node) -> (u32, u32) {
        (node.location.line, node.location.column)
    }

    fn entries(node: &Node) -> &[(Node, Node)] {
        match &node.value {
            Value::Mapping(entries) => entries,
            _ => panic!("not a mapping: {node:?}"),
        }
    }

    fn typed(node: &Node) -> Typed {
        match &node.value {
            Value::Scalar(scalar) => scalar.typed,
            _ => panic!("not a scalar: {node:?}"),
        }
    }

    #[test]
    fn locations_are_one_based() {
        let root = parse("a: 1\nb:\n  c: \"x\"\n  d: [1, 2]\n").unwrap();
        let top = entries(&root);
        assert_eq!(at(&top[0].0), (1, 1));
        assert_eq!(at(&top[0].1), (1, 4));
        assert_eq!(at(&top[1].1), (3, 3));
        let inner = entries(&top[1].1);
        assert_eq!(at(&inner[0].1), (3, 6));
        assert_eq!(at(&inner[1].1), (4, 6));
    }

    #[test]
    fn core_schema_types() {
        let cases = [
            ("", Typed::Null),
            ("~", Typed::Null),
            ("null", Typed::Null),
            ("true", Typed::Bool(true)),
            ("FALSE", Typed::Bool(false)),
            ("yes", Typed::Str),
            ("0", Typed::Int(0)),
            ("-12", Typed::Int(-12)),
            ("+7", Typed::Int(7)),
            ("0123", Typed::Int(123)),
            ("0o17", Typed::Int(15)),
            ("0x1F", Typed::Int(31)),
            ("-0x1F", Typed::Str),
            ("1.5", Typed::Float(1.5)),
            ("-.5", Typed::Float(-0.5)),
            ("1e3", Typed::Float(1000.0)),
            ("1.", Typed::Float(1.0)),
            (".inf", Typed::Float(f64::INFINITY)),
            ("1_000", Typed::Str),
            ("1e", Typed::Str),
            (".", Typed::Str),
            ("5m", Typed::Str),
            ("99999999999999999999999999999999999999999", Typed::BigInt),
        ];
        for (text, expected) in cases {
            assert_eq!(core_schema(text), expected, "{text:?}");
        }
        assert!(matches!(core_schema(".nan"), Typed::Float(x) if x.is_nan()));
    }

    #[test]
    fn quoted_and_block_scalars_are_strings() {
        let root = parse("a: '1'\nb: \"true\"\nc: |\n  1\nd: 1\n").unwrap();
        let types: Vec<Typed> = entries(&root).iter().map(|(_, v)| typed(v)).collect();
        assert_eq!(types, [Typed::Str, Typed::Str, Typed::Str, Typed::Int(1)]);
    }

    #[test]
    fn empty_and_null_documents() {
        assert!(entries(&parse("").unwrap()).is_empty());
        assert!(entries(&parse("# only a comment\n").unwrap()).is_empty());
        assert!(parse("---\n").unwrap().is_null());
    }

    #[test]
    fn aliases_are_copied() {
        let root = parse("base: &b {x: 1}\ncopy: *b\n").unwrap();
        let top = entries(&root);
        assert_eq!(entries(&top[1].1)[0].0.text(), Some("x"));
        assert_eq!(at(&top[1].1), (2, 7));
    }

    #[test]
    fn refused_inputs() {
        let cases = [
            ("a: 1\n---\nb: 2\n", "second YAML document", (2, 1)),
            ("a: !!str 1\n", "tags are not supported", (1, 4)),
            ("a: &x [*x]\n", "cycle", (1, 8)),
            ("? [a]\n: 1\n", "must be a scalar", (1, 3)),
            ("a: [1\n", "YAML syntax error", (0, 0)),
            ("a: *nope\n", "YAML syntax error", (0, 0)),
            ("a: {b: ${X}}\n", "must be quoted", (0, 0)),
        ];
        for (text, needle, (line, column)) in cases {
            let error = parse(text).unwrap_err();
            let shown = error.to_string();
            assert!(shown.contains(needle), "{text:?}: {shown}");
            if line > 0 {
                assert!(
                    shown.starts_with(&format!("test.yaml:{line}:{column}:")),
                    "{shown}"
                );
            }
        }
    }

    #[test]
    fn duplicate_key_names_path_and_service() {
        let text = "services:\n  s:\n    type: t\n    config:\n      db: 1\n      db: 2\n";
        let error = parse(text).unwrap_err().to_string();
        assert_eq!(
            error,
            "test.yaml:6:7: service `s`: `services.s.config.db`: \
             duplicate key `db` (first at line 5, column 7)"
        );
    }

    #[test]
    fn syntax_error_inside_a_service_names_it() {
        let text = "services:\n  s:\n    config:\n      addr: [1\n";
        let error = parse(text).unwrap_err().to_string();
        assert!(error.contains("(in service `s`)"), "{error}");
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(parse(&deep).is_err());
        let deep_block: String = (0..200).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        assert!(parse(&deep_block).is_err());
        let ok = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn alias_bomb_is_refused_quickly() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..20 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let started = std::time::Instant::now();
        let error = parse(&text).unwrap_err().to_string();
        assert!(error.contains("anchors and aliases expand"), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn debug_redacts_secrets() {
        let mut root = parse("password: hunter2\nuser: ${U}\nname: app\n").unwrap();
        root.expand(&Expander::new().with_env(|_| Some("alice".to_owned())))
            .unwrap();
        let shown = format!("{root:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("alice"),
            "{shown}"
        );
        assert!(shown.contains("app"), "{shown}");
    }
}
