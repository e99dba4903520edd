//! The application service: every use case, called alike by REST, GraphQL and the scheduler.
//! It validates nothing about shapes (the edge did that), looks up outside facts (AWS, the
//! read model), then hands commands to the aggregates.

mod accounts;
mod commands;
mod error;
mod organizations;
pub mod templates;
pub mod tokens;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use sqlx::Row;
use tokio::sync::Mutex as AsyncMutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use accounts::{AccountChangeEvent, AccountRole};
pub use commands::CommandBus;
pub use error::AppError;
pub use organizations::{FiltersPatch, OrganizationChange, Registration};
pub use tokens::{Principal, Role};

use crate::aws::{AssumeRole, AwsApi, AwsError, RoleSession};
use crate::config::{HarvestSettings, Settings};
use crate::crypto::{random_token, KeyRing, Sealed, Secret};
use crate::domain::account::Account;
use crate::domain::organization::Organization;
use crate::domain::OrgId;
use crate::domain::{RoleArn, SessionDuration, SessionName};
use crate::harvest::runs::LastStart;
use crate::projections::Projector;
use crate::store::{Store, StoreError};

/// Whether asking for a harvest started one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HarvestStart {
    /// A harvest started now.
    Started,
    /// One was running already; it goes on.
    AlreadyRunning,
}

/// The application service; cheap to clone.
#[derive(Clone)]
pub struct App(Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) keys: KeyRing,
    pub(crate) aws: Arc<dyn AwsApi>,
    pub(crate) external_id: Secret<String>,
    pub(crate) organizations: CommandBus<Organization>,
    pub(crate) accounts: CommandBus<Account>,
    pub(crate) projector: Projector,
    pub(crate) harvest: HarvestSettings,
    trusted_principal: Option<String>,
    harvest_locks: Mutex<HashMap<OrgId, Arc<AsyncMutex<()>>>>,
    // Organizations asked to harvest while one ran: the running one goes again when done, so
    // a filter change made meanwhile is never left to the next interval.
    reruns: Mutex<HashSet<OrgId>>,
    tasks: TaskTracker,
    // Harvests run on the daemon's runtime, not on the HTTP worker that asked for them.
    runtime: tokio::runtime::Handle,
    pub(crate) shutdown: CancellationToken,
    scheduling: std::sync::atomic::AtomicBool,
    // Valid tokens by hash: a token, once made, stays valid (none is ever revoked).
    principals: Mutex<HashMap<String, Principal>>,
}

impl App {
    /// Wires the service over a migrated store and brings the read tables up to date.
    pub async fn new(
        store: Store,
        keys: KeyRing,
        aws: Arc<dyn AwsApi>,
        settings: &Settings,
    ) -> Result<Self, AppError> {
        let external_id = load_or_create_external_id(&store, &keys).await?;
        tokio::spawn({
            let store = store.clone();
            async move { store.follow_changes().await }
        });
        let projector = Projector::new(store.clone());
        projector.catch_up().await?;
        Ok(Self(Arc::new(Inner {
            organizations: CommandBus::new(&store),
            accounts: CommandBus::new(&store),
            projector,
            store,
            keys,
            aws,
            external_id,
            harvest: settings.harvest.clone(),
            trusted_principal: settings.aws_trusted_principal().map(str::to_owned),
            harvest_locks: Mutex::new(HashMap::new()),
            reruns: Mutex::new(HashSet::new()),
            tasks: TaskTracker::new(),
            runtime: tokio::runtime::Handle::current(),
            shutdown: CancellationToken::new(),
            scheduling: std::sync::atomic::AtomicBool::new(false),
            principals: Mutex::default(),
        })))
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.0
    }

    /// The store behind the service.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The installation's external ID (R1), for admins only.
    pub fn external_id(&self) -> &Secret<String> {
        &self.0.external_id
    }

    /// A role template with this installation's external ID and trusted principal.
    pub fn role_template(&self, template: templates::Template) -> String {
        templates::render(
            template,
            self.0.external_id.expose(),
            self.0.trusted_principal.as_deref(),
        )
    }

    /// Assumes a role with the daemon's own credentials and the installation's external ID.
    pub(crate) async fn assume(
        &self,
        role_arn: &RoleArn,
        session_name: &SessionName,
        duration: SessionDuration,
    ) -> Result<RoleSession, AwsError> {
        self.0
            .aws
            .assume_role(AssumeRole {
                role_arn,
                session_name,
                duration,
                external_id: &self.0.external_id,
            })
            .await
    }

    /// Counts the changes to what the API reads; what was read at one count is still true
    /// while it stays (see [`Store::version`]).
    pub fn version(&self) -> u64 {
        self.0.store.version()
    }

    /// The holder of `token`, or 401.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AppError> {
        let hash = tokens::hash(token);
        let known = || self.0.principals.lock().expect("token cache poisoned");
        if let Some(principal) = known().get(&hash) {
            return Ok(principal.clone());
        }
        let principal = tokens::authenticate(self.0.store.pool(), &hash)
            .await?
            .ok_or(AppError::Unauthorized)?;
        known().insert(hash, principal.clone());
        Ok(principal)
    }

    /// Starts a harvest in the background unless one of the organization is running, in
    /// which case that one runs once more when it ends; returns whether it started one.
    pub(crate) fn start_harvest(&self, id: &OrgId) -> bool {
        self.spawn_harvest(id, None)
    }

    /// Starts a scheduled harvest: once it holds the organization's lock it runs only if no
    /// harvest started since the scheduler saw `last_start`, on this instance or another.
    pub(crate) fn start_scheduled_harvest(&self, id: &OrgId, seen: LastStart) -> bool {
        self.spawn_harvest(id, Some(seen))
    }

    fn spawn_harvest(&self, id: &OrgId, seen_start: Option<LastStart>) -> bool {
        let mut reruns = self.0.reruns.lock().expect("rerun set poisoned");
        let Ok(running) = self.harvest_lock(id).try_lock_owned() else {
            reruns.insert(id.clone());
            return false;
        };
        drop(reruns);
        let app = self.clone();
        let id = id.clone();
        let harvest = async move {
            let mut running = running;
            loop {
                // Another instance may be harvesting it: then this run is not needed.
                match app.store().lock_harvest(&id, false).await {
                    Ok(Some(_across_instances)) => {
                        let outcome = match seen_start {
                            Some(seen) => {
                                crate::harvest::run_if_not_started_since(&app, &id, seen).await
                            }
                            None => crate::harvest::run(&app, &id).await,
                        };
                        if let Err(e) = outcome {
                            tracing::error!(org_id = %id, error = %e, "harvest could not run");
                        }
                    }
                    Ok(None) => tracing::debug!(org_id = %id, "another instance harvests it"),
                    Err(e) => tracing::error!(org_id = %id, error = %e, "harvest could not run"),
                }
                match app.finish_harvest(&id, running) {
                    Some(again) => running = again,
                    None => return,
                }
            }
        };
        self.0.tasks.spawn_on(harvest, &self.0.runtime);
        true
    }

    /// Ends a harvest: hands the lock back when a rerun was asked for meanwhile, else frees
    /// it. Both happen under the rerun set's lock, so no request falls between them.
    fn finish_harvest(
        &self,
        id: &OrgId,
        running: tokio::sync::OwnedMutexGuard<()>,
    ) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let mut reruns = self.0.reruns.lock().expect("rerun set poisoned");
        if reruns.remove(id) && !self.0.shutdown.is_cancelled() {
            return Some(running);
        }
        drop(running);
        None
    }

    /// Whether a harvest of the organization runs in this process now.
    pub(crate) fn is_harvesting(&self, id: &OrgId) -> bool {
        self.harvest_lock(id).try_lock().is_err()
    }

    fn harvest_lock(&self, id: &OrgId) -> Arc<AsyncMutex<()>> {
        let mut locks = self
            .0
            .harvest_locks
            .lock()
            .expect("harvest lock map poisoned");
        locks.entry(id.clone()).or_default().clone()
    }

    /// Whether this instance schedules harvests now.
    pub fn is_scheduling(&self) -> bool {
        self.0.scheduling.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn set_scheduling(&self, leading: bool) {
        self.0
            .scheduling
            .store(leading, std::sync::atomic::Ordering::SeqCst);
    }

    /// Applies events the read tables miss.
    pub async fn catch_up(&self) -> Result<usize, AppError> {
        Ok(self.0.projector.catch_up().await?)
    }

    /// Asks running harvests to stop at their next safe point and waits for them.
    pub async fn shutdown(&self) {
        self.0.shutdown.cancel();
        self.0.tasks.close();
        self.0.tasks.wait().await;
    }
}

/// The external ID is made once per installation from the OS CSPRNG and kept sealed (R1).
async fn load_or_create_external_id(
    store: &Store,
    keys: &KeyRing,
) -> Result<Secret<String>, AppError> {
    let read = || async {
        let row = sqlx::query("SELECT value FROM settings WHERE key = 'external_id'")
            .fetch_optional(store.pool())
            .await
            .map_err(StoreError::from)?;
        row.map(|r| r.try_get::<String, _>("value").map(Sealed::from_stored))
            .transpose()
            .map_err(StoreError::from)
    };
    if read().await?.is_none() {
        let sealed = keys.seal(random_token(48).as_bytes());
        // Instances sharing a store race here; the first insert wins and all read it back.
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('external_id', $1) ON CONFLICT (key) DO NOTHING",
        )
        .bind(sealed.as_str())
        .execute(store.pool())
        .await
        .map_err(StoreError::from)?;
    }
    let sealed = read()
        .await?
        .ok_or_else(|| AppError::Unexpected("external ID missing after insert".into()))?;
    let bytes = keys.open(&sealed)?;
    let text = String::from_utf8(bytes.expose().clone())
        .map_err(|_| AppError::Unexpected("external ID is not UTF-8".into()))?;
    Ok(Secret::new(text))
}
