//! The application service: every use case, called alike by REST, GraphQL and the scheduler.
//! It validates nothing about shapes (the edge did that), looks up outside facts (AWS, the
//! read model), then hands commands to the aggregates. Harvests are a use case of their own,
//! [`Harvester`], which the service starts and waits for.

mod accounts;
mod changes;
mod error;
mod organizations;
pub mod templates;
pub mod tokens;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use accounts::AccountRole;
pub use changes::AccountChangeEvent;
pub use error::AppError;
pub use organizations::{FiltersPatch, OrganizationChange, Registration};
pub use tokens::{Principal, Role, TokenInfo};

use crate::aws::{Aws, AwsApi};
use crate::commands::Commands;
use crate::config::Settings;
use crate::crypto::{random_token, KeyRing, Secret};
use crate::harvest::{self, Harvester, Scheduler};
use crate::projections::Projector;
use crate::store::Store;
use changes::ChangeFeed;

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

struct Inner {
    store: Store,
    keys: Arc<KeyRing>,
    aws: Aws,
    commands: Arc<Commands>,
    projector: Arc<Projector>,
    harvester: Harvester,
    trusted_principal: Option<String>,
    // Whether this instance schedules harvests now; the scheduler says.
    scheduling: Arc<AtomicBool>,
    // Tokens found valid, by hash, each trusted for `TOKEN_RECHECK` after it was read.
    principals: Mutex<HashMap<String, Known>>,
    // Where the first admin token was written, removed once another admin token exists.
    initial_admin_file: PathBuf,
    // Empty read tables in memory, for the listing at a past instant.
    scratch: Store,
    // The one reader of the log for every subscription of account changes.
    changes: Arc<ChangeFeed>,
}

/// How long a token read from the store is trusted without reading it again: the longest a
/// token revoked elsewhere (another instance, `orgsync token revoke`) is still accepted here.
const TOKEN_RECHECK: Duration = Duration::from_secs(1);

/// How often a token's last use is written, at most.
const TOKEN_USE_RECORDED: Duration = Duration::from_secs(60);

/// A token found valid.
struct Known {
    principal: Principal,
    expires_at: Option<chrono::DateTime<Utc>>,
    read: Instant,
    use_recorded: Instant,
}

impl App {
    /// Wires the service over a migrated store and brings the read tables up to date. Its
    /// background work (change announcements, harvests) is spawned on `tasks` and stops when
    /// `shutdown` is cancelled.
    pub async fn new(
        store: Store,
        keys: KeyRing,
        aws: Arc<dyn AwsApi>,
        settings: &Settings,
        shutdown: CancellationToken,
        tasks: TaskTracker,
    ) -> Result<Self, AppError> {
        let external_id = load_or_create_external_id(&store, &keys).await?;
        let keys = Arc::new(keys);
        tasks.spawn({
            let store = store.clone();
            let shutdown = shutdown.clone();
            async move {
                tokio::select! {
                    () = store.follow_changes() => {}
                    () = shutdown.cancelled() => {}
                }
            }
        });
        let projector = Arc::new(Projector::new(store.clone()));
        projector.catch_up().await?;
        let changes = Arc::new(ChangeFeed::default());
        tasks.spawn(
            changes
                .clone()
                .run(store.clone(), projector.positions(), shutdown.clone()),
        );
        let aws = Aws::new(aws, external_id);
        let commands = Arc::new(Commands::new(&store));
        let harvester = Harvester::new(harvest::Parts {
            aws: aws.clone(),
            keys: keys.clone(),
            store: store.clone(),
            commands: commands.clone(),
            projector: projector.clone(),
            settings: settings.harvest.clone(),
            tasks,
            shutdown,
        });
        let closed = harvester.close_interrupted().await?;
        if closed > 0 {
            tracing::warn!(
                harvests = closed,
                "recorded as failed the harvests left running"
            );
        }
        Ok(Self(Arc::new(Inner {
            store,
            keys,
            aws,
            commands,
            projector,
            harvester,
            trusted_principal: settings.aws_trusted_principal().map(str::to_owned),
            scheduling: Arc::default(),
            principals: Mutex::default(),
            initial_admin_file: settings.admin_token_file(),
            scratch: Store::scratch().await?,
            changes,
        })))
    }

    /// The store behind the service.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The installation's external ID (R1), for admins only.
    pub fn external_id(&self) -> &Secret<String> {
        self.0.aws.external_id()
    }

    /// A role template with this installation's external ID and trusted principal.
    pub fn role_template(&self, template: templates::Template) -> String {
        templates::render(
            template,
            self.external_id().expose(),
            self.0.trusted_principal.as_deref(),
        )
    }

    /// Counts the changes to what the API reads; what was read at one count is still true
    /// while it stays (see [`Store::version`]).
    pub fn version(&self) -> u64 {
        self.0.store.version()
    }

    /// Whether the store answers.
    pub async fn ready(&self) -> Result<(), AppError> {
        Ok(self.0.store.ping().await?)
    }

    /// The holder of `token`, or 401 when it is unknown, revoked or expired.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AppError> {
        let hash = tokens::hash(token);
        let known = || self.0.principals.lock().expect("token cache poisoned");
        let now = Instant::now();
        let mut use_recorded = None;
        if let Some(k) = known().get(&hash) {
            if k.expires_at.is_some_and(|at| at <= Utc::now()) {
                return Err(AppError::Unauthorized);
            }
            if now.duration_since(k.read) < TOKEN_RECHECK {
                return Ok(k.principal.clone());
            }
            use_recorded = Some(k.use_recorded);
        }
        let pool = self.0.store.pool();
        let Some(info) = tokens::find(pool, &hash)
            .await?
            .filter(|info| info.is_valid_at(Utc::now()))
        else {
            known().remove(&hash);
            return Err(AppError::Unauthorized);
        };
        let use_recorded = match use_recorded {
            Some(at) if now.duration_since(at) < TOKEN_USE_RECORDED => at,
            _ => {
                tokens::used(pool, &hash).await?;
                now
            }
        };
        let principal = Principal {
            name: info.name,
            role: info.role,
        };
        known().insert(
            hash,
            Known {
                principal: principal.clone(),
                expires_at: info.expires_at,
                read: now,
                use_recorded,
            },
        );
        Ok(principal)
    }

    /// Every token, revoked and expired ones too, without their secrets.
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>, AppError> {
        tokens::list(self.0.store.pool()).await
    }

    /// Makes a token of `role` named `name`, expiring after `lifetime` (never when `None`),
    /// and returns it with its secret, shown this once. A new admin token retires the first
    /// admin token's file.
    pub async fn create_token(
        &self,
        role: Role,
        name: &str,
        lifetime: Option<Duration>,
    ) -> Result<(TokenInfo, Secret<String>), AppError> {
        let pool = self.0.store.pool();
        let created = tokens::create(pool, role, name, lifetime).await?;
        if role == Role::Admin
            && tokens::retire_initial_admin_file(pool, &self.0.initial_admin_file).await?
        {
            tracing::info!(path = %self.0.initial_admin_file.display(), "removed the first admin token's file");
        }
        Ok(created)
    }

    /// Revokes the token `name`: refused here at once, and by the other instances sharing
    /// the store within [`TOKEN_RECHECK`].
    pub async fn revoke_token(&self, name: &str) -> Result<(), AppError> {
        tokens::revoke(self.0.store.pool(), name).await?;
        self.0
            .principals
            .lock()
            .expect("token cache poisoned")
            .retain(|_, known| known.principal.name != name);
        Ok(())
    }

    /// The scheduler of this instance's harvests.
    pub fn scheduler(&self) -> Scheduler {
        Scheduler::new(self.0.harvester.clone(), self.0.scheduling.clone())
    }

    /// Whether this instance schedules harvests now.
    pub fn is_scheduling(&self) -> bool {
        self.0.scheduling.load(Ordering::SeqCst)
    }

    /// Applies events the read tables miss.
    pub async fn catch_up(&self) -> Result<usize, AppError> {
        Ok(self.0.projector.catch_up().await?)
    }
}

/// The external ID is made once per installation from the OS CSPRNG and kept sealed (R1).
async fn load_or_create_external_id(
    store: &Store,
    keys: &KeyRing,
) -> Result<Secret<String>, AppError> {
    if store.external_id().await?.is_none() {
        store
            .keep_external_id(&keys.seal(random_token(48).as_bytes()))
            .await?;
    }
    let sealed = store
        .external_id()
        .await?
        .ok_or_else(|| AppError::Unexpected("external ID missing after insert".into()))?;
    let bytes = keys.open(&sealed)?;
    let text = String::from_utf8(bytes.expose().clone())
        .map_err(|_| AppError::Unexpected("external ID is not UTF-8".into()))?;
    Ok(Secret::new(text))
}
