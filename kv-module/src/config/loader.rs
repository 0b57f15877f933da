//! [`ConfigLoader`]: reads a YAML file, or a directory of them, into a
//! [`LoadedConfig`] of [`ServiceDefinition`]s and application sections.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::de::from_node;
use super::error::{ConfigError, Location};
use super::expand::Expander;
use super::node::{Node, Value};

/// Largest configuration file read (a guard against `/dev/zero` and
/// mistakes, far above any real configuration).
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// Loads service definitions and application sections from YAML.
///
/// The document is a mapping. Its `services:` key (optional) maps each
/// service name to a mapping with a required `type:` and an optional
/// `config:` mapping, which that type deserializes; any other key of the
/// document is an application section, read with [`LoadedConfig::section`].
/// `${VAR}` placeholders in values are expanded after parsing (see
/// [`Expander`]).
///
/// ```
/// use kv_module::config::{ConfigLoader, Expander};
///
/// let yaml = "
/// services:
///   session_cache:
///     type: kvstore_redis
///     config:
///       addr: ${REDIS_ADDR:localhost:6379}
///       db: ${REDIS_DB:1}
/// app:
///   name: demo
/// ";
/// #[derive(serde::Deserialize)]
/// struct Redis { addr: String, db: u8 }
/// #[derive(serde::Deserialize)]
/// struct App { name: String }
///
/// let loader = ConfigLoader::new().with_expander(Expander::new().with_env(|_| None));
/// let config = loader.load_str("inline.yaml", yaml)?;
/// let cache = config.service("session_cache").unwrap();
/// assert_eq!(cache.type_name, "kvstore_redis");
/// let redis: Redis = cache.config()?;
/// assert_eq!((redis.addr.as_str(), redis.db), ("localhost:6379", 1));
/// let app: App = config.required_section("app")?;
/// assert_eq!(app.name, "demo");
/// # Ok::<(), kv_module::config::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ConfigLoader {
    expander: Expander,
}

impl ConfigLoader {
    /// A loader expanding placeholders with [`Expander::new`] (the process
    /// environment and the `file` resolver).
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the expander (default: [`Expander::new`]), to add
    /// resolvers or read variables from elsewhere.
    pub fn with_expander(mut self, expander: Expander) -> Self {
        self.expander = expander;
        self
    }

    /// Loads `path`: one YAML file, or a directory whose `*.yaml` and
    /// `*.yml` files (not subdirectories) are merged in file-name order.
    ///
    /// In a merge a later file's service replaces an earlier one of the
    /// same name (the same name with another `type` is a
    /// [`ConfigError::TypeConflict`]), and a later file's section replaces
    /// an earlier one's wholesale. A missing path, a directory without
    /// YAML files, an unreadable file and a file that is not UTF-8 are
    /// [`ConfigError::Read`].
    pub fn load(&self, path: impl AsRef<Path>) -> Result<LoadedConfig, ConfigError> {
        let path = path.as_ref();
        let read_error = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let metadata = std::fs::metadata(path).map_err(read_error)?;
        let files = if metadata.is_dir() {
            yaml_files(path).map_err(read_error)?
        } else {
            vec![path.to_owned()]
        };
        let mut merged = Merged::default();
        for file in &files {
            let text = read_file(file).map_err(|source| ConfigError::Read {
                path: file.clone(),
                source,
            })?;
            let label: Arc<str> = Arc::from(file.display().to_string());
            merged.add(self.parse(&label, &text)?)?;
        }
        Ok(merged.finish(files))
    }

    /// Loads YAML text; `file_label` stands for the file name in
    /// locations. [`LoadedConfig::files`] is then empty.
    pub fn load_str(&self, file_label: &str, text: &str) -> Result<LoadedConfig, ConfigError> {
        let mut merged = Merged::default();
        merged.add(self.parse(&Arc::from(file_label), text)?)?;
        Ok(merged.finish(Vec::new()))
    }

    /// Parses, expands and splits one file.
    fn parse(&self, file: &Arc<str>, text: &str) -> Result<File, ConfigError> {
        let mut root = Node::parse(file, text)?;
        root.expand(&self.expander)?;
        File::split(root)
    }
}

/// The `*.yaml` and `*.yml` files of `dir`, sorted by name.
fn yaml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let yaml = path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        // `metadata` follows symbolic links, as in Kubernetes ConfigMap
        // mounts, where every file is one.
        if yaml && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the directory has no *.yaml or *.yml files",
        ));
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

fn read_file(path: &Path) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "larger than 16 MiB",
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file is not valid UTF-8",
        )
    })
}

/// One file's services and sections.
struct File {
    services: Vec<ServiceDefinition>,
    sections: Vec<(String, Node)>,
}

impl File {
    /// Checks the document's shape and takes it apart.
    fn split(root: Node) -> Result<File, ConfigError> {
        let root = if root.is_null() {
            // `---` alone, or only `~`: nothing configured.
            Node::empty_mapping(root.location().clone())
        } else {
            root
        };
        let Value::Mapping(entries) = root.value() else {
            return Err(invalid(
                &root,
                None,
                "(document)",
                "the document must be a mapping (`services:` and application sections)",
            ));
        };
        let mut file = File {
            services: Vec::new(),
            sections: Vec::new(),
        };
        for (key, value) in entries {
            let name = key.text().unwrap_or_default();
            if name == "services" {
                file.services = services(value)?;
            } else {
                file.sections.push((name.to_owned(), value.clone()));
            }
        }
        Ok(file)
    }
}

/// The definitions under `services:`.
fn services(node: &Node) -> Result<Vec<ServiceDefinition>, ConfigError> {
    if node.is_null() {
        return Ok(Vec::new());
    }
    let Value::Mapping(entries) = node.value() else {
        return Err(invalid(
            node,
            None,
            "services",
            "`services` must be a mapping of service names to definitions",
        ));
    };
    entries
        .iter()
        .map(|(key, value)| service(key.text().unwrap_or_default(), value))
        .collect()
}

/// One service definition: `type:` and optional `config:`.
fn service(name: &str, node: &Node) -> Result<ServiceDefinition, ConfigError> {
    let path = format!("services.{name}");
    let Value::Mapping(entries) = node.value() else {
        return Err(invalid(
            node,
            Some(name),
            &path,
            "a service definition must be a mapping with `type:` and optional `config:`",
        ));
    };
    let mut type_node = None;
    let mut config = None;
    for (key, value) in entries {
        match key.text().unwrap_or_default() {
            "type" => type_node = Some(value),
            "config" => config = Some(value),
            other => {
                return Err(invalid(
                    key,
                    Some(name),
                    &format!("{path}.{other}"),
                    format!(
                        "unknown key `{other}` in a service definition, expected `type` or `config`"
                    ),
                ));
            }
        }
    }
    let Some(type_node) = type_node else {
        return Err(invalid(node, Some(name), &path, "missing field `type`"));
    };
    let type_name = match type_node.text() {
        Some(text) if !type_node.is_null() && !text.is_empty() => text.to_owned(),
        _ => {
            return Err(invalid(
                type_node,
                Some(name),
                &format!("{path}.type"),
                "`type` must be the name of a service type",
            ));
        }
    };
    let config = match config {
        // Absent or empty (`config:`): an empty mapping, so that types
        // whose fields all have defaults need no `config:`.
        None => Node::empty_mapping(node.location().clone()),
        Some(config) if config.is_null() => Node::empty_mapping(config.location().clone()),
        Some(config) if matches!(config.value(), Value::Mapping(_)) => config.clone(),
        Some(config) => {
            return Err(invalid(
                config,
                Some(name),
                &format!("{path}.config"),
                "`config` must be a mapping",
            ));
        }
    };
    Ok(ServiceDefinition {
        name: name.to_owned(),
        type_name,
        location: node.location().clone(),
        type_location: type_node.location().clone(),
        config,
    })
}

fn invalid(
    node: &Node,
    service: Option<&str>,
    path: &str,
    message: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        location: node.location().clone(),
        service: service.map(str::to_owned),
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Files merged so far.
#[derive(Default)]
struct Merged {
    services: BTreeMap<String, ServiceDefinition>,
    sections: BTreeMap<String, Node>,
}

impl Merged {
    fn add(&mut self, file: File) -> Result<(), ConfigError> {
        for service in file.services {
            if let Some(first) = self.services.get(&service.name)
                && first.type_name != service.type_name
            {
                return Err(ConfigError::TypeConflict {
                    service: service.name,
                    first: first.type_location.clone(),
                    first_type: first.type_name.clone(),
                    second: service.type_location,
                    second_type: service.type_name,
                });
            }
            self.services.insert(service.name.clone(), service);
        }
        self.sections.extend(file.sections);
        Ok(())
    }

    fn finish(self, files: Vec<PathBuf>) -> LoadedConfig {
        LoadedConfig {
            services: self.services.into_values().collect(),
            sections: self.sections,
            files,
        }
    }
}

/// A loaded configuration: the service definitions and the application's
/// own sections, with the files they came from.
#[derive(Clone, Debug)]
pub struct LoadedConfig {
    services: Vec<ServiceDefinition>,
    sections: BTreeMap<String, Node>,
    files: Vec<PathBuf>,
}

impl LoadedConfig {
    /// Every service definition, sorted by name.
    pub fn services(&self) -> &[ServiceDefinition] {
        &self.services
    }

    /// The service named `name`, if defined.
    pub fn service(&self, name: &str) -> Option<&ServiceDefinition> {
        self.services
            .binary_search_by(|service| service.name.as_str().cmp(name))
            .ok()
            .map(|index| &self.services[index])
    }

    /// The application section `key` (a top-level key beside
    /// `services:`), deserialized as `T`; `Ok(None)` when absent, and
    /// always for `services` itself (read with [`Self::services`]). An
    /// empty section (`key:` alone) reads as an empty mapping where a
    /// struct is wanted. Errors carry the path `key.field`.
    pub fn section<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        self.sections
            .get(key)
            .map(|node| from_node(node, key, None))
            .transpose()
    }

    /// Like [`section`](Self::section), for a section the application
    /// cannot start without: its absence is [`ConfigError::MissingSection`].
    pub fn required_section<T: DeserializeOwned>(&self, key: &str) -> Result<T, ConfigError> {
        self.section(key)?
            .ok_or_else(|| ConfigError::MissingSection {
                section: key.to_owned(),
                files: if self.files.is_empty() {
                    "<inline>".to_owned()
                } else {
                    self.files
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })
    }

    /// The files loaded, in merge order (empty for
    /// [`ConfigLoader::load_str`]).
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

/// One entry of `services:`: its name, `type` and `config`.
#[derive(Clone, Debug)]
pub struct ServiceDefinition {
    /// The service's name (its key under `services:`).
    pub name: String,
    /// Its `type:`, naming a registered service type.
    pub type_name: String,
    /// Where the definition starts.
    pub location: Location,
    type_location: Location,
    /// `config:`, an empty mapping when absent.
    config: Node,
}

impl ServiceDefinition {
    /// Where its `type:` value is (for an unknown-type error).
    pub fn type_location(&self) -> &Location {
        &self.type_location
    }

    /// Deserializes `config:` as the type's configuration struct. Errors
    /// name the service and the path `services.<name>.config.<field>`.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        from_node(
            &self.config,
            &format!("services.{}.config", self.name),
            Some(&self.name),
        )
    }

    /// An [`ConfigError::Invalid`] located at `config:`, for checks after
    /// deserialization (`db` must be 0 to 15).
    pub fn invalid(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            location: self.config.location().clone(),
            service: Some(self.name.clone()),
            path: format!("services.{}.config", self.name),
            message: message.into(),
        }
    }
}
