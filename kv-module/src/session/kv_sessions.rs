//! [`KvSessions`]: the [`Sessions`] component over a [`KvStore`].

use std::sync::Arc;

use async_trait::async_trait;
#[cfg(feature = "shaku")]
use shaku::Component;

use super::config::SessionConfig;
use super::data::{Session, SessionData, UserSession, decode_record, record_tail};
use super::id::{SessionHandle, SessionId, user_key, user_tag};
use super::scripts::{self, parse_index};
use super::sessions::Sessions;
use crate::config::{ConfigError, millis};
use crate::error::{KvError, Result};
#[cfg(feature = "yaml")]
use crate::registry::{RegistryError, ServiceRegistry};
use crate::store::{KvStore, Script, ScriptArgs, ScriptValue, SlotTag};

/// Sessions created, through the [`metrics`] facade (label `store`).
pub const CREATED: &str = "kv_sessions_created_total";
/// Sessions deleted by logout, "log out that device" or "log out
/// everywhere" (label `store`); expiry is not counted.
pub const REVOKED: &str = "kv_sessions_revoked_total";

/// Attempts at drawing an unused id before giving up (a collision of
/// 256-bit random ids does not happen; the loop only makes `NX` total).
const CREATE_ATTEMPTS: usize = 3;
/// Rounds of "log out everywhere" before giving up: each round after the
/// first deletes only the sessions created during the one before, so only
/// a user logging in again without pause reaches it.
const DELETE_ALL_ROUNDS: usize = 16;

/// The record of the session `handle` under `tag`:
/// `session:{tag}:<handle>`.
fn record_key(tag: &SlotTag, handle: &str) -> String {
    tag.key("session:", &format!(":{handle}"))
}

/// The record key of `id`: `session:{<tag>}:<handle>`, as
/// [`record_key`] spells it from `id.tag()` and `id.handle()`, in one
/// allocation (every request reads it).
fn id_record_key(id: &SessionId) -> String {
    const BASE: &str = "session:{";
    let tag = id.tag_str();
    // The handle: a SHA-256 in unpadded base64url, 43 characters.
    let mut key = String::with_capacity(BASE.len() + tag.len() + 2 + 43);
    key.push_str(BASE);
    key.push_str(tag);
    key.push_str("}:");
    id.push_handle(&mut key);
    key
}

/// The index of the sessions under `tag`: `user_sessions:{tag}`.
fn index_key(tag: &SlotTag) -> String {
    tag.key("user_sessions:", "")
}

/// This host's clock in Unix milliseconds.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Server-side sessions in a [`KvStore`]: the [`Sessions`] component.
///
/// ```
/// use std::sync::Arc;
/// use kv_module::MemoryStore;
/// use kv_module::registry::StoreRef;
/// use kv_module::session::{SessionConfig, SessionData, KvSessions, Sessions};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Arc::new(MemoryStore::new("session_cache", "app"));
/// let sessions = KvSessions::new(store, SessionConfig::new(StoreRef::new("session_cache")))?;
///
/// let id = sessions.create(SessionData::new("user-1").with_metadata("role", "admin")).await?;
/// let session = sessions.get(&id).await?.expect("just created");
/// assert_eq!(session.data.user_id, "user-1");
///
/// let id = sessions.cycle_id(&id).await?.expect("still there"); // at login
/// assert_eq!(sessions.list_user_sessions("user-1").await?.len(), 1);
/// assert_eq!(sessions.delete_user_sessions("user-1").await?, 1);
/// assert!(sessions.get(&id).await?.is_none());
/// # Ok(())
/// # }
/// ```
///
/// See the [module documentation](super) for the key layout and for wiring
/// it with shaku and axum.
#[derive(Clone)]
#[cfg_attr(feature = "shaku", derive(Component))]
#[cfg_attr(feature = "shaku", shaku(interface = Sessions))]
pub struct KvSessions {
    /// The store the sessions are kept in.
    store: Arc<dyn KvStore>,
    /// The validated configuration.
    config: SessionConfig,
}

impl std::fmt::Debug for KvSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvSessions")
            .field("store", &self.store.name())
            .field("config", &self.config)
            .finish()
    }
}

impl KvSessions {
    /// A manager keeping its sessions in `store` (`config.store` is not
    /// consulted: it is for [`from_registry`](Self::from_registry)).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidSetting`] when `config` breaks a rule of
    /// [`SessionConfig`].
    pub fn new(store: Arc<dyn KvStore>, config: SessionConfig) -> Result<Self, ConfigError> {
        Self::checked(store, "sessions", config)
    }

    /// A manager for the component `component` (its configuration section
    /// name), on the store `config.store` names in `registry`.
    ///
    /// # Errors
    ///
    /// An unknown store or one that is not a key-value store, or an invalid
    /// configuration — each naming `component`.
    #[cfg(feature = "yaml")]
    #[cfg_attr(docsrs, doc(cfg(feature = "yaml")))]
    pub fn from_registry(
        registry: &ServiceRegistry,
        component: &str,
        config: SessionConfig,
    ) -> Result<Self, RegistryError> {
        let store = registry.store_for(component, &config.store)?;
        Ok(Self::checked(store, component, config)?)
    }

    /// The shaku parameters that build this manager inside a module:
    /// `.with_component_parameters::<KvSessions>(manager.into_parameters())`.
    #[cfg(feature = "shaku")]
    #[cfg_attr(docsrs, doc(cfg(feature = "shaku")))]
    pub fn into_parameters(self) -> KvSessionsParameters {
        KvSessionsParameters {
            store: self.store,
            config: self.config,
        }
    }

    fn checked(
        store: Arc<dyn KvStore>,
        component: &str,
        config: SessionConfig,
    ) -> Result<Self, ConfigError> {
        config
            .validate()
            .map_err(|message| ConfigError::invalid_setting(component, message))?;
        Ok(Self { store, config })
    }

    /// Counts `n` sessions deleted (logout, a device, everywhere).
    fn revoked(&self, n: u64) {
        if n > 0 {
            metrics::counter!(REVOKED, "store" => self.store.name().to_owned()).increment(n);
        }
    }

    /// The store the sessions are kept in.
    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.store
    }

    async fn run_int(&self, script: &Script, keys: &[&str], args: &ScriptArgs) -> Result<i64> {
        let reply = self.store.run_script(script, keys, args).await?;
        reply.as_int().ok_or_else(|| self.bad_reply(&reply))
    }

    fn bad_reply(&self, reply: &ScriptValue) -> KvError {
        KvError::Backend {
            store: Arc::from(self.store.name()),
            op: "session script",
            key: None,
            source: format!("unexpected script reply {reply:?}").into(),
        }
    }

    fn decode(&self, key: &str, bytes: &mut [u8]) -> Result<Session> {
        decode_record(bytes).map_err(|source| KvError::Decode {
            store: Arc::from(self.store.name()),
            key: key.to_owned(),
            type_name: "Session",
            source,
        })
    }

    /// The index under `tag`, `None` when there is none.
    async fn read_index(&self, index_key: &str) -> Result<Option<Vec<String>>> {
        let Some(raw) = self.store.get_bytes(index_key).await? else {
            return Ok(None);
        };
        let index = parse_index(&raw).ok_or_else(|| KvError::Backend {
            store: Arc::from(self.store.name()),
            op: "read session index",
            key: Some(index_key.to_owned()),
            source: "malformed session index".into(),
        })?;
        Ok(Some(index.into_keys().collect()))
    }

    fn tail(&self, data: &SessionData) -> Result<Vec<u8>> {
        if data.user_id.is_empty() {
            return Err(KvError::InvalidArgument {
                store: Arc::from(self.store.name()),
                key: None,
                reason: "a session needs a non-empty user id".into(),
            });
        }
        record_tail(data).map_err(|source| KvError::Encode {
            store: Arc::from(self.store.name()),
            key: "session".to_owned(),
            source,
        })
    }

    /// Refreshes the session unless its last refresh is younger than
    /// `min_age_ms` (checked in the script, against the store's clock).
    async fn refresh_older_than(&self, id: &SessionId, min_age_ms: u64) -> Result<bool> {
        let (tag, handle) = (id.tag(), id.handle());
        let keys = [record_key(&tag, handle.as_str()), index_key(&tag)];
        let args = ScriptArgs::new()
            .str(handle.as_str())
            .uint(millis(self.config.idle_timeout))
            .uint(min_age_ms);
        Ok(self
            .run_int(&scripts::REFRESH, &[&keys[0], &keys[1]], &args)
            .await?
            == 1)
    }

    /// Decodes `{deleted, {pending handles...}}`.
    fn delete_all_reply(&self, reply: &ScriptValue) -> Result<(u64, Vec<String>)> {
        let parsed = match reply.as_array() {
            Some([ScriptValue::Int(deleted), ScriptValue::Array(pending)]) => {
                let pending: Option<Vec<String>> = pending
                    .iter()
                    .map(|h| String::from_utf8(h.as_bytes()?.to_vec()).ok())
                    .collect();
                u64::try_from(*deleted).ok().zip(pending)
            }
            _ => None,
        };
        parsed.ok_or_else(|| self.bad_reply(reply))
    }

    /// [`Sessions::get`] at `now` (Unix ms), without a span of its own:
    /// one `GET`, then the record decoded.
    async fn read(&self, id: &SessionId, now: u64) -> Result<Option<Session>> {
        let key = id_record_key(id);
        let Some(mut bytes) = self.store.get_bytes(&key).await? else {
            return Ok(None);
        };
        let session = self.decode(&key, &mut bytes)?;
        // The TTL already enforces both timeouts; this guards the instant
        // between the absolute expiry and the key's removal.
        Ok((session.absolute_expiry > now).then_some(session))
    }

    fn new_id(&self, tag: &SlotTag) -> Result<SessionId> {
        SessionId::generate_in(tag).map_err(|e| KvError::Backend {
            store: Arc::from(self.store.name()),
            op: "generate session id",
            key: None,
            source: e.to_string().into(),
        })
    }
}

#[async_trait]
impl Sessions for KvSessions {
    fn config(&self) -> &SessionConfig {
        &self.config
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name()), err)]
    async fn create(&self, data: SessionData) -> Result<SessionId> {
        let tail = self.tail(&data)?;
        let user = user_key(&data.user_id);
        let tag = user_tag(&user);
        let index = index_key(&tag);
        for _ in 0..CREATE_ATTEMPTS {
            let id = self.new_id(&tag)?;
            let handle = id.handle();
            let record = record_key(&tag, handle.as_str());
            let args = ScriptArgs::new()
                .str(handle.as_str())
                .str(&user)
                .bytes(tail.as_slice())
                .uint(millis(self.config.idle_timeout))
                .uint(millis(self.config.absolute_timeout));
            if self
                .run_int(&scripts::CREATE, &[&record, &index], &args)
                .await?
                == 1
            {
                tracing::debug!(%handle, "session created");
                metrics::counter!(CREATED, "store" => self.store.name().to_owned()).increment(1);
                return Ok(id);
            }
        }
        Err(KvError::Backend {
            store: Arc::from(self.store.name()),
            op: "create session",
            key: None,
            source: "no unused session id after several draws".into(),
        })
    }

    // Reads are on every request's path: their spans are at `debug`, so an
    // application logging at `info` builds none (errors are still logged).
    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.store.name()), err)]
    async fn get(&self, id: &SessionId) -> Result<Option<Session>> {
        self.read(id, unix_ms()).await
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name()), err)]
    async fn refresh(&self, id: &SessionId) -> Result<bool> {
        self.refresh_older_than(id, 0).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.store.name()), err)]
    async fn load(&self, id: &SessionId) -> Result<Option<Session>> {
        let now = unix_ms();
        let Some(mut session) = self.read(id, now).await? else {
            return Ok(None);
        };
        let interval = millis(self.config.refresh_interval);
        if now.saturating_sub(session.last_seen) >= interval {
            if !self.refresh_older_than(id, interval).await? {
                return Ok(None);
            }
            session.last_seen = unix_ms();
        }
        Ok(Some(session))
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name()), err)]
    async fn update(&self, id: &SessionId, data: SessionData) -> Result<bool> {
        let tail = self.tail(&data)?;
        let record = id_record_key(id);
        let args = ScriptArgs::new().str(&user_key(&data.user_id)).bytes(tail);
        match self.run_int(&scripts::UPDATE, &[&record], &args).await? {
            1 => Ok(true),
            0 => Ok(false),
            _ => Err(KvError::InvalidArgument {
                store: Arc::from(self.store.name()),
                key: Some(record),
                reason: "an update cannot change the session's user".into(),
            }),
        }
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name()), err)]
    async fn delete(&self, id: &SessionId) -> Result<bool> {
        let (tag, handle) = (id.tag(), id.handle());
        let keys = [record_key(&tag, handle.as_str()), index_key(&tag)];
        let args = ScriptArgs::new().str(handle.as_str()).str("");
        let deleted = self
            .run_int(&scripts::DELETE, &[&keys[0], &keys[1]], &args)
            .await?
            == 1;
        tracing::debug!(%handle, deleted, "session deleted");
        self.revoked(u64::from(deleted));
        Ok(deleted)
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name()), err)]
    async fn cycle_id(&self, id: &SessionId) -> Result<Option<SessionId>> {
        let (tag, old) = (id.tag(), id.handle());
        let (old_key, index) = (record_key(&tag, old.as_str()), index_key(&tag));
        for _ in 0..CREATE_ATTEMPTS {
            let new_id = self.new_id(&tag)?;
            let new = new_id.handle();
            let new_key = record_key(&tag, new.as_str());
            let args = ScriptArgs::new().str(old.as_str()).str(new.as_str());
            match self
                .run_int(&scripts::CYCLE, &[&old_key, &new_key, &index], &args)
                .await?
            {
                1 => {
                    tracing::debug!(%old, %new, "session id cycled");
                    return Ok(Some(new_id));
                }
                0 => return Ok(None),
                _ => continue,
            }
        }
        Err(KvError::Backend {
            store: Arc::from(self.store.name()),
            op: "cycle session id",
            key: None,
            source: "no unused session id after several draws".into(),
        })
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name()), err)]
    async fn list_user_sessions(&self, user_id: &str) -> Result<Vec<UserSession>> {
        let tag = user_tag(&user_key(user_id));
        let Some(handles) = self.read_index(&index_key(&tag)).await? else {
            return Ok(Vec::new());
        };
        let keys: Vec<String> = handles.iter().map(|h| record_key(&tag, h)).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let records = self.store.get_many_bytes(&keys).await?;
        let now = unix_ms();
        let mut sessions = Vec::new();
        for ((handle, key), record) in handles.iter().zip(&keys).zip(records) {
            // Gone since the index was read (idled out, deleted).
            let Some(mut record) = record else { continue };
            let session = self.decode(key, &mut record)?;
            let handle = SessionHandle::parse(handle).ok_or_else(|| KvError::Backend {
                store: Arc::from(self.store.name()),
                op: "read session index",
                key: Some(index_key(&tag)),
                source: "malformed handle in the session index".into(),
            })?;
            // Another user sharing the tag (it does not happen at 96 bits;
            // the check is cheap), or past the absolute expiry.
            if session.data.user_id == user_id && session.absolute_expiry > now {
                sessions.push(UserSession { handle, session });
            }
        }
        Ok(sessions)
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name(), %handle), err)]
    async fn delete_user_session(&self, user_id: &str, handle: &SessionHandle) -> Result<bool> {
        let user = user_key(user_id);
        let tag = user_tag(&user);
        let keys = [record_key(&tag, handle.as_str()), index_key(&tag)];
        let args = ScriptArgs::new().str(handle.as_str()).str(&user);
        let deleted = self
            .run_int(&scripts::DELETE, &[&keys[0], &keys[1]], &args)
            .await?
            == 1;
        self.revoked(u64::from(deleted));
        Ok(deleted)
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name()), err)]
    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64> {
        let user = user_key(user_id);
        let tag = user_tag(&user);
        let index = index_key(&tag);
        let Some(mut handles) = self.read_index(&index).await? else {
            return Ok(0);
        };
        let mut deleted: u64 = 0;
        for _ in 0..DELETE_ALL_ROUNDS {
            let records: Vec<String> = handles.iter().map(|h| record_key(&tag, h)).collect();
            let keys: Vec<&str> = std::iter::once(index.as_str())
                .chain(records.iter().map(String::as_str))
                .collect();
            let args = ScriptArgs::new()
                .str(&user)
                .strs(handles.iter().map(String::as_str));
            let reply = self
                .store
                .run_script(&scripts::DELETE_ALL, &keys, &args)
                .await?;
            let (round, pending) = self.delete_all_reply(&reply)?;
            deleted += round;
            self.revoked(round);
            if pending.is_empty() {
                tracing::debug!(deleted, "user sessions deleted");
                return Ok(deleted);
            }
            // Sessions created since the index was read: another round.
            handles = pending;
        }
        Err(KvError::Backend {
            store: Arc::from(self.store.name()),
            op: "delete user sessions",
            key: Some(index),
            source: format!(
                "sessions kept being created during {DELETE_ALL_ROUNDS} rounds; \
                 {deleted} deleted, try again"
            )
            .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-allocation record key is the key every other step names the
    /// record by.
    #[test]
    fn id_record_keys_match_record_keys() {
        let generated = SessionId::generate("alice").unwrap();
        let secret = &generated.expose()[17..];
        let foreign = SessionId::parse(&format!("-_09azAZ-_09azAZ.{secret}")).unwrap();
        for id in [generated, foreign] {
            assert_eq!(
                id_record_key(&id),
                record_key(&id.tag(), id.handle().as_str())
            );
        }
    }
}
