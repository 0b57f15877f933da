//! A serde `Deserializer` over a [`Node`], whose errors become
//! [`ConfigError::Invalid`] located at the innermost node concerned (the
//! key of an unknown field, the mapping missing a field, the value of the
//! wrong type) with its dotted path (`services.cache.config.db`).
//!
//! Reading rules, chosen for configuration rather than data exchange:
//!
//! * any scalar reads as a string, as written (`prefix: 123`,
//!   `password: 0123`); a null reads as the empty string, so an unset
//!   `${VAR}` gives `""` where a string is wanted and `None` where an
//!   `Option` is;
//! * integers are range-checked for the target type, with a message that
//!   names the range;
//! * a null reads as an empty mapping where a struct or map is wanted
//!   (`config:` with nothing under it);
//! * a struct must be a mapping (serde would also take a sequence of the
//!   fields in order);
//! * an enum is a string (unit variant) or a mapping with one key.
//!
//! Error messages never contain scalar values, only their types
//! (`invalid type: string, expected u8`), so a secret cannot leak through
//! a start-up error.

use std::fmt::{self, Display};

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};

use super::error::{ConfigError, Location};
use super::node::{Node, Scalar, Typed, Value};

/// Deserializes `node` into `T`. `path` names the node in messages
/// (`services.cache.config`); `service` is the service it belongs to.
pub(crate) fn from_node<T: DeserializeOwned>(
    node: &Node,
    path: &str,
    service: Option<&str>,
) -> Result<T, ConfigError> {
    let root = Path::Root(path);
    T::deserialize(NodeDeserializer { node, path: &root }).map_err(|error| ConfigError::Invalid {
        location: error.location.unwrap_or_else(|| node.location().clone()),
        service: service.map(str::to_owned),
        path: error.path.unwrap_or_else(|| path.to_owned()),
        message: error.message,
    })
}

/// Where a node sits, as a borrowed list built while descending, rendered
/// only when an error needs it.
#[derive(Clone, Copy)]
enum Path<'p> {
    Root(&'p str),
    Key(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root(root) => f.write_str(root),
            Path::Key(Path::Root(""), key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// A deserialization error, located as it passes back up through the
/// innermost node's deserializer.
#[derive(Debug)]
pub(crate) struct Error {
    message: String,
    location: Option<Location>,
    path: Option<String>,
}

impl Error {
    fn new(message: String) -> Self {
        Error {
            message,
            location: None,
            path: None,
        }
    }

    /// Locates the error at `node` unless an inner node already did.
    fn at(mut self, node: &Node, path: &Path<'_>) -> Self {
        if self.location.is_none() {
            self.location = Some(node.location().clone());
            self.path = Some(path.to_string());
        }
        self
    }
}

impl Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// What a value was, without the value.
fn kind(unexpected: &Unexpected<'_>) -> String {
    match unexpected {
        Unexpected::Bool(_) => "boolean".to_owned(),
        Unexpected::Unsigned(_) | Unexpected::Signed(_) => "integer".to_owned(),
        Unexpected::Float(_) => "floating point number".to_owned(),
        Unexpected::Char(_) => "character".to_owned(),
        Unexpected::Str(_) => "string".to_owned(),
        Unexpected::Bytes(_) => "bytes".to_owned(),
        Unexpected::Unit => "null".to_owned(),
        Unexpected::Option => "optional value".to_owned(),
        Unexpected::NewtypeStruct => "newtype struct".to_owned(),
        Unexpected::Seq => "sequence".to_owned(),
        Unexpected::Map => "mapping".to_owned(),
        Unexpected::Enum => "enum".to_owned(),
        Unexpected::UnitVariant => "unit variant".to_owned(),
        Unexpected::NewtypeVariant => "newtype variant".to_owned(),
        Unexpected::TupleVariant => "tuple variant".to_owned(),
        Unexpected::StructVariant => "struct variant".to_owned(),
        Unexpected::Other(other) => (*other).to_owned(),
    }
}

// serde's defaults print the offending value (`invalid type: string
// "hunter2"`); these print only its kind.
impl de::Error for Error {
    fn custom<T: Display>(message: T) -> Self {
        Error::new(message.to_string())
    }

    fn invalid_type(unexpected: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Error::new(format!(
            "invalid type: {}, expected {expected}",
            kind(&unexpected)
        ))
    }

    fn invalid_value(unexpected: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Error::new(format!(
            "invalid value: {}, expected {expected}",
            kind(&unexpected)
        ))
    }

    fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Self {
        Error::new(format!("unknown variant, expected {}", one_of(expected)))
    }
}

fn one_of(names: &[&str]) -> String {
    match names {
        [] => "nothing".to_owned(),
        [one] => format!("`{one}`"),
        _ => {
            let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("one of {}", quoted.join(", "))
        }
    }
}

/// Deserializes one node.
#[derive(Clone, Copy)]
struct NodeDeserializer<'de, 'p> {
    node: &'de Node,
    path: &'p Path<'p>,
}

impl<'de> NodeDeserializer<'de, '_> {
    fn scalar(&self) -> Option<&'de Scalar> {
        match self.node.value() {
            Value::Scalar(scalar) => Some(scalar),
            _ => None,
        }
    }

    /// The node as an integer: `Some(Ok)` for one that fits `i128`,
    /// `Some(Err)` for one that does not, `None` for other nodes.
    fn integer(&self) -> Option<Result<i128, ()>> {
        match self.scalar()?.typed {
            Typed::Int(value) => Some(Ok(value)),
            Typed::BigInt => Some(Err(())),
            _ => None,
        }
    }

    fn any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node.value() {
            Value::Scalar(scalar) => match scalar.typed {
                Typed::Null => visitor.visit_unit(),
                Typed::Bool(value) => visitor.visit_bool(value),
                Typed::Int(value) => {
                    if let Ok(value) = i64::try_from(value) {
                        visitor.visit_i64(value)
                    } else if let Ok(value) = u64::try_from(value) {
                        visitor.visit_u64(value)
                    } else {
                        visitor.visit_i128(value)
                    }
                }
                Typed::BigInt => Err(Error::new(
                    "integer too large (more than 128 bits)".to_owned(),
                )),
                Typed::Float(value) => visitor.visit_f64(value),
                Typed::Str => visitor.visit_borrowed_str(&scalar.text),
            },
            Value::Sequence(items) => visitor.visit_seq(Seq {
                items: items.iter(),
                index: 0,
                path: self.path,
            }),
            Value::Mapping(entries) => visitor.visit_map(Map {
                entries: entries.iter(),
                value: None,
                path: self.path,
            }),
        }
    }

    /// A scalar as its text; a null as `""`.
    fn text<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.scalar() {
            Some(scalar) if scalar.typed == Typed::Null => visitor.visit_borrowed_str(""),
            Some(scalar) => visitor.visit_borrowed_str(&scalar.text),
            None => self.any(visitor),
        }
    }

    fn mapping<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.node.is_null() {
            return visitor.visit_map(Map {
                entries: [].iter(),
                value: None,
                path: self.path,
            });
        }
        self.any(visitor)
    }

    fn float<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.integer() {
            // Precision loss above 2^53 is what any YAML reader does.
            #[allow(clippy::cast_precision_loss)]
            Some(Ok(value)) => visitor.visit_f64(value as f64),
            _ => self.any(visitor),
        }
    }
}

/// Range-checked integers: `deserialize_u8` given 300 says
/// "integer out of range for u8 (0 to 255)".
macro_rules! integer {
    ($($method:ident $visit:ident $type:ty;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let result = match self.integer() {
                Some(integer) => match integer.and_then(|v| <$type>::try_from(v).map_err(|_| ())) {
                    Ok(value) => visitor.$visit(value),
                    Err(()) => Err(Error::new(format!(
                        "integer out of range for {} ({} to {})",
                        stringify!($type),
                        <$type>::MIN,
                        <$type>::MAX
                    ))),
                },
                None => self.any(visitor),
            };
            result.map_err(|e| e.at(self.node, self.path))
        }
    )*};
}

/// Methods that only locate the error of another.
macro_rules! located {
    ($($method:ident => $how:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.$how(visitor).map_err(|e| e.at(self.node, self.path))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDeserializer<'de, '_> {
    type Error = Error;

    integer! {
        deserialize_i8 visit_i8 i8;
        deserialize_i16 visit_i16 i16;
        deserialize_i32 visit_i32 i32;
        deserialize_i64 visit_i64 i64;
        deserialize_i128 visit_i128 i128;
        deserialize_u8 visit_u8 u8;
        deserialize_u16 visit_u16 u16;
        deserialize_u32 visit_u32 u32;
        deserialize_u64 visit_u64 u64;
        deserialize_u128 visit_u128 u128;
    }

    located! {
        deserialize_any => any;
        deserialize_bool => any;
        deserialize_f32 => float;
        deserialize_f64 => float;
        deserialize_char => text;
        deserialize_str => text;
        deserialize_string => text;
        deserialize_bytes => text;
        deserialize_byte_buf => text;
        deserialize_identifier => text;
        deserialize_seq => any;
        deserialize_map => mapping;
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.node.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
        .map_err(|e| e.at(self.node, self.path))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.any(visitor).map_err(|e| e.at(self.node, self.path))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor
            .visit_newtype_struct(self)
            .map_err(|e| e.at(self.node, self.path))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // serde would accept a sequence as the fields in order; in a
        // configuration that is a mistake, not a shorthand.
        if let Value::Sequence(_) = self.node.value() {
            let error: Error = de::Error::invalid_type(Unexpected::Seq, &visitor);
            return Err(error.at(self.node, self.path));
        }
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let result = match self.node.value() {
            Value::Scalar(_) => visitor.visit_enum(Enum {
                variant: self,
                content: None,
            }),
            Value::Mapping(entries) if entries.len() == 1 => {
                let (key, value) = &entries[0];
                let key_path = Path::Key(self.path, key.text().unwrap_or_default());
                visitor.visit_enum(Enum {
                    variant: NodeDeserializer {
                        node: key,
                        path: &key_path,
                    },
                    content: Some(NodeDeserializer {
                        node: value,
                        path: &key_path,
                    }),
                })
            }
            _ => Err(Error::new(format!(
                "expected {} (a string, or a mapping with one key)",
                one_of(variants)
            ))),
        };
        result.map_err(|e| e.at(self.node, self.path))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

/// The items of a sequence.
struct Seq<'de, 'p> {
    items: std::slice::Iter<'de, Node>,
    index: usize,
    path: &'p Path<'p>,
}

impl<'de> SeqAccess<'de> for Seq<'de, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(node) = self.items.next() else {
            return Ok(None);
        };
        let path = Path::Index(self.path, self.index);
        self.index += 1;
        // Located here too: a `deserialize_with` function fails after
        // the node's own deserializer has returned.
        seed.deserialize(NodeDeserializer { node, path: &path })
            .map(Some)
            .map_err(|e| e.at(node, &path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The entries of a mapping.
struct Map<'de, 'p> {
    entries: std::slice::Iter<'de, (Node, Node)>,
    /// The value of the key just read, with that key's text.
    value: Option<(&'de Node, &'de str)>,
    path: &'p Path<'p>,
}

impl<'de> MapAccess<'de> for Map<'de, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        // Keys are scalars (the parser refuses others).
        let text = key.text().unwrap_or_default();
        self.value = Some((value, text));
        let path = Path::Key(self.path, text);
        seed.deserialize(NodeDeserializer {
            node: key,
            path: &path,
        })
        .map(Some)
        .map_err(|e| e.at(key, &path))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (node, text) = self
            .value
            .take()
            .ok_or_else(|| Error::new("a mapping value was read before its key".to_owned()))?;
        let path = Path::Key(self.path, text);
        // Located here too: a `deserialize_with` function fails after
        // the node's own deserializer has returned.
        seed.deserialize(NodeDeserializer { node, path: &path })
            .map_err(|e| e.at(node, &path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An enum: the variant's name node and, for a mapping, its content.
struct Enum<'de, 'p> {
    variant: NodeDeserializer<'de, 'p>,
    content: Option<NodeDeserializer<'de, 'p>>,
}

impl<'de, 'p> EnumAccess<'de> for Enum<'de, 'p> {
    type Error = Error;
    type Variant = Variant<'de, 'p>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), Error> {
        let name = seed.deserialize(self.variant)?;
        Ok((
            name,
            Variant {
                content: self.content,
            },
        ))
    }
}

/// The content of an enum variant.
struct Variant<'de, 'p> {
    content: Option<NodeDeserializer<'de, 'p>>,
}

impl<'de> VariantAccess<'de> for Variant<'de, '_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.content {
            None => Ok(()),
            Some(content) => de::Deserialize::deserialize(content),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.content {
            Some(content) => seed.deserialize(content),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.content {
            Some(content) => de::Deserializer::deserialize_seq(content, visitor),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.content {
            Some(content) => de::Deserializer::deserialize_map(content, visitor),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"struct variant",
            )),
        }
    }
}

impl<'de, 'p> IntoDeserializer<'de, Error> for NodeDeserializer<'de, 'p> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use serde::Deserialize;

    use super::*;

    fn node(text: &str) -> Node {
        Node::parse(&Arc::from("t.yaml"), text).unwrap()
    }

    fn read<T: DeserializeOwned>(text: &str) -> Result<T, String> {
        from_node(&node(text), "root", Some("svc")).map_err(|e| e.to_string())
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Config {
        addr: String,
        #[serde(default)]
        password: Option<String>,
        #[serde(default)]
        db: u8,
        #[serde(default)]
        prefix: String,
        #[serde(default, with = "crate::config::serde_duration_opt")]
        ttl: Option<Duration>,
        #[serde(default)]
        mode: Mode,
        #[serde(default)]
        hosts: Vec<String>,
        #[serde(default)]
        ratio: f64,
        #[serde(default)]
        extra: BTreeMap<String, i32>,
    }

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        #[default]
        Standalone,
        Cluster {
            nodes: u8,
        },
    }

    #[test]
    fn reads_a_struct() {
        let config: Config = read(
            "addr: localhost:6379\npassword: 0123\ndb: 3\nprefix: 123\nttl: 5m\n\
             mode: {cluster: {nodes: 3}}\nhosts: [a, 1, true]\nratio: 2\nextra: {x: -1}\n",
        )
        .unwrap();
        assert_eq!(
            config,
            Config {
                addr: "localhost:6379".to_owned(),
                password: Some("0123".to_owned()),
                db: 3,
                prefix: "123".to_owned(),
                ttl: Some(Duration::from_secs(300)),
                mode: Mode::Cluster { nodes: 3 },
                hosts: vec!["a".to_owned(), "1".to_owned(), "true".to_owned()],
                ratio: 2.0,
                extra: BTreeMap::from([("x".to_owned(), -1)]),
            }
        );
        let config: Config = read("addr: a\npassword:\nmode: standalone\n").unwrap();
        assert_eq!(config.password, None);
        assert_eq!(config.mode, Mode::Standalone);
    }

    #[test]
    fn errors_are_located_and_never_show_values() {
        let cases = [
            (
                "addr: a\npoolsize: 3\n",
                "t.yaml:2:1: service `svc`: `root.poolsize`: unknown field `poolsize`, expected one of",
            ),
            (
                "db: 1\n",
                "t.yaml:1:1: service `svc`: `root`: missing field `addr`",
            ),
            (
                "addr: a\ndb: 300\n",
                "t.yaml:2:5: service `svc`: `root.db`: integer out of range for u8 (0 to 255)",
            ),
            (
                "addr: a\ndb: -1\n",
                "`root.db`: integer out of range for u8",
            ),
            (
                "addr: a\ndb: hunter2\n",
                "t.yaml:2:5: service `svc`: `root.db`: invalid type: string, expected u8",
            ),
            (
                "addr: [x]\n",
                "t.yaml:1:7: service `svc`: `root.addr`: invalid type: sequence, expected a string",
            ),
            (
                "addr: a\nttl: 5\n",
                "t.yaml:2:6: service `svc`: `root.ttl`: invalid duration",
            ),
            (
                "addr: a\nhosts: [a, [b]]\n",
                "t.yaml:2:12: service `svc`: `root.hosts[1]`",
            ),
            (
                "addr: a\nmode: hunter2\n",
                "`root.mode`: unknown variant, expected one of `standalone`, `cluster`",
            ),
            (
                "addr: a\nmode: {cluster: {nodes: 999}}\n",
                "t.yaml:2:25: service `svc`: `root.mode.cluster.nodes`: integer out of range",
            ),
            ("addr: a\nratio: x\n", "invalid type: string, expected f64"),
            (
                "addr: a\nextra: {x: 99999999999999999999999999999999999999999999}\n",
                "`root.extra.x`: integer out of range for i32",
            ),
            (
                "[1]",
                "t.yaml:1:1: service `svc`: `root`: invalid type: sequence, expected struct Config",
            ),
        ];
        for (text, expected) in cases {
            let error = read::<Config>(text).unwrap_err();
            assert!(
                error.contains(expected),
                "{text:?}\n got: {error}\nwant: {expected}"
            );
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn null_is_an_empty_mapping_or_string() {
        #[derive(Deserialize, Debug, Default, PartialEq)]
        struct Empty {
            #[serde(default)]
            a: u8,
        }
        assert_eq!(read::<Empty>("").unwrap(), Empty::default());
        assert_eq!(read::<Empty>("~").unwrap(), Empty::default());
        assert_eq!(read::<String>("~").unwrap(), "");
        assert_eq!(read::<Option<String>>("~").unwrap(), None);
        assert_eq!(read::<BTreeMap<String, u8>>("").unwrap(), BTreeMap::new());
    }

    #[test]
    fn numbers_and_any() {
        assert_eq!(read::<i64>("-5").unwrap(), -5);
        assert_eq!(read::<u64>("0xff").unwrap(), 255);
        // Integers are held as `i128`; larger ones are out of range.
        assert!(
            read::<u128>("340282366920938463463374607431768211455")
                .unwrap_err()
                .contains("out of range")
        );
        assert_eq!(read::<f32>("1.5").unwrap(), 1.5);
        assert!(read::<bool>("true").unwrap());
        assert!(read::<bool>("'true'").is_err());
        assert_eq!(read::<char>("x").unwrap(), 'x');
        assert_eq!(read::<(u8, String)>("[1, b]").unwrap(), (1, "b".to_owned()));
        let json: serde_json::Value = read("a: [1, -2, 1.5, null, true, x]\n").unwrap();
        assert_eq!(
            json,
            serde_json::json!({"a": [1, -2, 1.5, null, true, "x"]})
        );
        assert_eq!(read::<()>("~").unwrap(), ());
    }
}
