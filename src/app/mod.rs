//! The application service: every use case, called alike by REST, GraphQL and the scheduler.
//! It validates nothing about shapes (the edge did that), looks up outside facts (AWS, the
//! read model), then hands commands to the aggregates.

mod commands;
mod error;
pub mod tokens;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::Row;
use tokio::sync::Mutex as AsyncMutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use commands::CommandBus;
pub use error::AppError;
pub use tokens::{Principal, Role};

use crate::aws::{AssumeRole, AwsApi};
use crate::config::HarvestSettings;
use crate::crypto::{random_token, KeyRing, Sealed, Secret};
use crate::domain::account::Account;
use crate::domain::organization::{
    Credentials, Filters, Organization, OrganizationCommand, RegisterOrganization,
};
use crate::domain::{AccountId, Actor, OrgId};
use crate::projections::accounts::{AccountQuery, AccountView};
use crate::projections::organizations::OrganizationView;
use crate::projections::{self, Projector};
use crate::store::{Store, StoreError, StoredEvent};

/// A registration that passed the edge's format checks (R3, first step).
#[derive(Debug, Clone)]
pub struct Registration {
    /// The name operators know it by.
    pub nickname: String,
    /// Both roles.
    pub credentials: Credentials,
    /// Scope and badge filters.
    pub filters: Filters,
}

/// Whether asking for a harvest started one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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
    harvest_locks: Mutex<HashMap<OrgId, Arc<AsyncMutex<()>>>>,
    tasks: TaskTracker,
    // Harvests run on the daemon's runtime, not on the HTTP worker that asked for them.
    runtime: tokio::runtime::Handle,
    pub(crate) shutdown: CancellationToken,
}

impl App {
    /// Wires the service over a migrated store and brings the read tables up to date.
    pub async fn new(
        store: Store,
        keys: KeyRing,
        aws: Arc<dyn AwsApi>,
        harvest: HarvestSettings,
    ) -> Result<Self, AppError> {
        let external_id = load_or_create_external_id(&store, &keys).await?;
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
            harvest,
            harvest_locks: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
            runtime: tokio::runtime::Handle::current(),
            shutdown: CancellationToken::new(),
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

    /// The holder of `token`, or 401.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AppError> {
        tokens::authenticate(self.0.store.pool(), token)
            .await?
            .ok_or(AppError::Unauthorized)
    }

    /// Registers an organization after checking, in order, that its role can be assumed and
    /// that it reads the organization (R3); stores nothing when a step fails. A harvest
    /// starts at once (R5).
    #[tracing::instrument(skip_all, fields(org_id))]
    pub async fn register_organization(
        &self,
        actor: &Actor,
        registration: Registration,
    ) -> Result<OrganizationView, AppError> {
        let inner = &self.0;
        let org_role = &registration.credentials.org_role;
        let session = inner
            .aws
            .assume_role(AssumeRole {
                role_arn: &org_role.role_arn,
                session_name: &org_role.session_name,
                duration: org_role.duration_seconds,
                external_id: &inner.external_id,
            })
            .await
            .map_err(|e| AppError::Rejected {
                code: "assume_role_failed",
                message: e.to_string(),
            })?;
        let info = inner
            .aws
            .describe_organization(&session)
            .await
            .map_err(|e| AppError::Rejected {
                code: "describe_organization_failed",
                message: e.to_string(),
            })?;
        tracing::Span::current().record("org_id", info.id.as_str());
        if &info.management_account_id != org_role.role_arn.account_id() {
            return Err(AppError::Rejected {
                code: "not_organization_management",
                message: format!(
                    "the org role is in account {}, but organization {} is managed by account {}",
                    org_role.role_arn.account_id(),
                    info.id,
                    info.management_account_id
                ),
            });
        }
        let command = OrganizationCommand::Register(RegisterOrganization {
            org_id: info.id.clone(),
            nickname: registration.nickname,
            management_account_id: info.management_account_id,
            credentials: inner.keys.seal_json(&registration.credentials),
            filters: registration.filters,
        });
        inner
            .organizations
            .execute(info.id.as_str(), &[command], actor)
            .await?;
        inner.projector.catch_up().await?;
        self.start_harvest(&info.id);
        self.organization(&info.id).await
    }

    /// Every registered organization.
    pub async fn organizations(&self) -> Result<Vec<OrganizationView>, AppError> {
        Ok(projections::organizations::list(self.0.store.pool()).await?)
    }

    /// One organization, or 404.
    pub async fn organization(&self, id: &OrgId) -> Result<OrganizationView, AppError> {
        projections::organizations::get(self.0.store.pool(), id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("organization {id}")))
    }

    /// A page of the listing.
    pub async fn accounts(&self, query: &AccountQuery) -> Result<Vec<AccountView>, AppError> {
        Ok(projections::accounts::list(self.0.store.pool(), query).await?)
    }

    /// One account of the listing, or 404.
    pub async fn account(&self, id: &AccountId) -> Result<AccountView, AppError> {
        projections::accounts::get(self.0.store.pool(), id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("account {id}")))
    }

    /// An account's whole history, also after it left the listing; 404 when it has none.
    pub async fn account_history(&self, id: &AccountId) -> Result<Vec<StoredEvent>, AppError> {
        use cqrs_es::Aggregate;
        let events = self.0.store.events_of(Account::TYPE, id.as_str()).await?;
        if events.is_empty() {
            return Err(AppError::NotFound(format!("account {id}")));
        }
        Ok(events)
    }

    /// Starts a harvest of a registered organization unless one is running (R5).
    pub async fn request_harvest(&self, id: &OrgId) -> Result<HarvestStart, AppError> {
        self.organization(id).await?;
        Ok(if self.start_harvest(id) {
            HarvestStart::Started
        } else {
            HarvestStart::AlreadyRunning
        })
    }

    /// Waits for a running harvest, runs one more, and answers the organization after it.
    pub async fn harvest_now(&self, id: &OrgId) -> Result<OrganizationView, AppError> {
        self.organization(id).await?;
        let lock = self.harvest_lock(id);
        let _running = lock.lock().await;
        crate::harvest::run(self, id).await?;
        self.organization(id).await
    }

    /// Starts a harvest in the background unless one of the organization is running; returns
    /// whether it started one.
    pub(crate) fn start_harvest(&self, id: &OrgId) -> bool {
        let Ok(running) = self.harvest_lock(id).try_lock_owned() else {
            return false;
        };
        let app = self.clone();
        let id = id.clone();
        let harvest = async move {
            let _running = running;
            if let Err(e) = crate::harvest::run(&app, &id).await {
                tracing::error!(org_id = %id, error = %e, "harvest could not run");
            }
        };
        self.0.tasks.spawn_on(harvest, &self.0.runtime);
        true
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
