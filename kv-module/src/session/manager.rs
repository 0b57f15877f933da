//! [`SessionManager`]: the [`Sessions`] component over a [`KvStore`].

use std::sync::Arc;

use async_trait::async_trait;
use shaku::Component;

use super::config::{SessionConfig, SessionSettings};
use super::data::{Session, SessionData, UserSession, decode_record, record_tail};
use super::id::{SessionHandle, SessionId, user_key};
use super::scripts;
use super::sessions::Sessions;
use crate::config::ConfigError;
use crate::error::{KvError, Result};
use crate::registry::ServiceRegistry;
use crate::store::{KvStore, Script, ScriptValue};

/// Key base of the session records: `session:{handle}`.
const SESSIONS: &str = "session:";
/// Key base of the per-user indexes: `user_sessions:{user key}`.
const INDEXES: &str = "user_sessions:";
/// Attempts at drawing an unused id before giving up (a collision of
/// 256-bit random ids does not happen; the loop only makes `NX` total).
const CREATE_ATTEMPTS: usize = 3;

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
/// use kv_module::session::{SessionConfig, SessionData, SessionManager, Sessions};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Arc::new(MemoryStore::new("session_cache", "app"));
/// let sessions = SessionManager::new(store, SessionConfig::new(StoreRef::new("session_cache")))?;
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
#[derive(Clone, Component)]
#[shaku(interface = Sessions)]
pub struct SessionManager {
    /// The store the sessions are kept in.
    store: Arc<dyn KvStore>,
    /// The validated settings.
    settings: SessionSettings,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("store", &self.store.name())
            .field("settings", &self.settings)
            .finish()
    }
}

impl SessionManager {
    /// A manager keeping its sessions in `store` (`config.store()` is not
    /// consulted: it is for [`from_registry`](Self::from_registry)).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidSetting`] when `config` breaks a rule of
    /// [`SessionConfig`].
    pub fn new(store: Arc<dyn KvStore>, config: SessionConfig) -> Result<Self, ConfigError> {
        let settings = SessionSettings::new("sessions", config)?;
        Ok(Self { store, settings })
    }

    /// A manager for the component `component` (its configuration section
    /// name), on the store `config.store()` names in `registry`.
    ///
    /// # Errors
    ///
    /// An unknown store or one that is not a key-value store, or an invalid
    /// configuration — each naming `component`.
    pub fn from_registry(
        registry: &ServiceRegistry,
        component: &str,
        config: SessionConfig,
    ) -> Result<Self, ConfigError> {
        let store = registry.store_for(component, config.store())?;
        let settings = SessionSettings::new(component, config)?;
        Ok(Self { store, settings })
    }

    /// The shaku parameters that build this manager inside a module:
    /// `.with_component_parameters::<SessionManager>(manager.into_parameters())`.
    pub fn into_parameters(self) -> SessionManagerParameters {
        SessionManagerParameters {
            store: self.store,
            settings: self.settings,
        }
    }

    /// The store the sessions are kept in.
    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.store
    }

    async fn run(&self, script: &Script, args: &[&[u8]]) -> Result<ScriptValue> {
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
        self.store
            .run_script(script, &[SESSIONS, INDEXES], &args)
            .await
    }

    async fn run_int(&self, script: &Script, args: &[&[u8]]) -> Result<i64> {
        let reply = self.run(script, args).await?;
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

    fn decode(&self, handle: &SessionHandle, bytes: &[u8]) -> Result<Session> {
        decode_record(bytes).map_err(|source| KvError::Decode {
            store: Arc::from(self.store.name()),
            key: format!("{SESSIONS}{handle}"),
            type_name: "Session",
            source,
        })
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
            key: SESSIONS.to_owned(),
            source,
        })
    }

    /// Refreshes the session unless its last refresh is younger than
    /// `min_age_ms` (checked in the script, against the store's clock).
    async fn refresh_older_than(&self, id: &SessionId, min_age_ms: u64) -> Result<bool> {
        let handle = id.handle();
        let idle = self.settings.idle_ms().to_string();
        let min_age = min_age_ms.to_string();
        let args: [&[u8]; 3] = [
            handle.as_str().as_bytes(),
            idle.as_bytes(),
            min_age.as_bytes(),
        ];
        Ok(self.run_int(&scripts::REFRESH, &args).await? == 1)
    }

    fn new_id(&self) -> Result<SessionId> {
        SessionId::generate().map_err(|e| KvError::Backend {
            store: Arc::from(self.store.name()),
            op: "generate session id",
            key: None,
            source: e.to_string().into(),
        })
    }
}

#[async_trait]
impl Sessions for SessionManager {
    fn settings(&self) -> &SessionSettings {
        &self.settings
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name()), err)]
    async fn create(&self, data: SessionData) -> Result<SessionId> {
        let tail = self.tail(&data)?;
        let user = user_key(&data.user_id);
        let idle = self.settings.idle_ms().to_string();
        let absolute = self.settings.absolute_ms().to_string();
        for _ in 0..CREATE_ATTEMPTS {
            let id = self.new_id()?;
            let handle = id.handle();
            let args: [&[u8]; 5] = [
                handle.as_str().as_bytes(),
                user.as_bytes(),
                &tail,
                idle.as_bytes(),
                absolute.as_bytes(),
            ];
            if self.run_int(&scripts::CREATE, &args).await? == 1 {
                tracing::debug!(%handle, "session created");
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

    #[tracing::instrument(skip_all, fields(store = %self.store.name()), err)]
    async fn get(&self, id: &SessionId) -> Result<Option<Session>> {
        let handle = id.handle();
        let Some(bytes) = self.store.get_bytes(&format!("{SESSIONS}{handle}")).await? else {
            return Ok(None);
        };
        let session = self.decode(&handle, &bytes)?;
        // The TTL already enforces both timeouts; this guards the instant
        // between the absolute expiry and the key's removal.
        Ok((session.absolute_expiry > unix_ms()).then_some(session))
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name()), err)]
    async fn refresh(&self, id: &SessionId) -> Result<bool> {
        self.refresh_older_than(id, 0).await
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name()), err)]
    async fn load(&self, id: &SessionId) -> Result<Option<Session>> {
        let Some(mut session) = self.get(id).await? else {
            return Ok(None);
        };
        let interval = self.settings.refresh_ms();
        if unix_ms().saturating_sub(session.last_seen) >= interval {
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
        let handle = id.handle();
        let user = user_key(&data.user_id);
        let args: [&[u8]; 3] = [handle.as_str().as_bytes(), user.as_bytes(), &tail];
        match self.run_int(&scripts::UPDATE, &args).await? {
            1 => Ok(true),
            0 => Ok(false),
            _ => Err(KvError::InvalidArgument {
                store: Arc::from(self.store.name()),
                key: Some(format!("{SESSIONS}{handle}")),
                reason: "an update cannot change the session's user".into(),
            }),
        }
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name()), err)]
    async fn delete(&self, id: &SessionId) -> Result<bool> {
        let handle = id.handle();
        let args: [&[u8]; 2] = [handle.as_str().as_bytes(), b""];
        let deleted = self.run_int(&scripts::DELETE, &args).await? == 1;
        tracing::debug!(%handle, deleted, "session deleted");
        Ok(deleted)
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name()), err)]
    async fn cycle_id(&self, id: &SessionId) -> Result<Option<SessionId>> {
        let old = id.handle();
        for _ in 0..CREATE_ATTEMPTS {
            let new_id = self.new_id()?;
            let new = new_id.handle();
            let args: [&[u8]; 2] = [old.as_str().as_bytes(), new.as_str().as_bytes()];
            match self.run_int(&scripts::CYCLE, &args).await? {
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
        let user = user_key(user_id);
        let reply = self.run(&scripts::LIST, &[user.as_bytes()]).await?;
        let items = reply.as_array().ok_or_else(|| self.bad_reply(&reply))?;
        items
            .chunks(2)
            .map(|pair| {
                let (Some(handle), Some(record)) = (
                    pair.first().and_then(ScriptValue::as_bytes),
                    pair.get(1).and_then(ScriptValue::as_bytes),
                ) else {
                    return Err(self.bad_reply(&reply));
                };
                let handle = std::str::from_utf8(handle)
                    .ok()
                    .and_then(SessionHandle::parse)
                    .ok_or_else(|| self.bad_reply(&reply))?;
                let session = self.decode(&handle, record)?;
                Ok(UserSession { handle, session })
            })
            .collect()
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name(), %handle), err)]
    async fn delete_user_session(&self, user_id: &str, handle: &SessionHandle) -> Result<bool> {
        let user = user_key(user_id);
        let args: [&[u8]; 2] = [handle.as_str().as_bytes(), user.as_bytes()];
        Ok(self.run_int(&scripts::DELETE, &args).await? == 1)
    }

    #[tracing::instrument(skip_all, fields(store = %self.store.name()), err)]
    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64> {
        let user = user_key(user_id);
        let deleted = self
            .run_int(&scripts::DELETE_ALL, &[user.as_bytes()])
            .await?;
        let deleted =
            u64::try_from(deleted).map_err(|_| self.bad_reply(&ScriptValue::Int(deleted)))?;
        tracing::debug!(deleted, "user sessions deleted");
        Ok(deleted)
    }
}
