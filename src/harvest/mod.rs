//! Harvests, as a use case of their own: [`Harvester`] runs one pass over an organization at a
//! time (R5), reruns it when asked again meanwhile, and is handed everything it uses when it
//! is made: AWS, the key ring, the command side, the projector and its settings. The
//! [`Scheduler`] starts the passes that are due.
//!
//! A pass (`pass.rs`) assumes the org role, lists the whole tree with tags, then turns what
//! changed into account commands; see there for R4, R6, R7, R8 and I3.

pub mod cloudtrail;
mod pass;
mod poller;
mod progress;
mod refresh;
mod scheduler;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use cqrs_es::AggregateError;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use progress::{Phase, Progress, ProgressBoard};
pub use scheduler::Scheduler;

use crate::aws::Aws;
use crate::commands::Commands;
use crate::config::HarvestSettings;
use crate::crypto::{CryptoError, KeyRing};
use crate::domain::account::AccountError;
use crate::domain::organization::OrganizationError;
use crate::domain::OrgId;
use crate::metrics::METRICS;
use crate::projections::Projector;
use crate::store::harvest_runs::{self, LastStart};
use crate::store::{Store, StoreError};

/// Why a harvest could not run to an outcome. A listing AWS refused is an outcome (the
/// harvest failed, and says so), not one of these.
#[derive(Debug, thiserror::Error)]
pub enum HarvestError {
    /// The organization is not registered.
    #[error("organization {0} is not registered")]
    NotRegistered(OrgId),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The organization's credentials could not be opened.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// An account command failed.
    #[error(transparent)]
    Account(#[from] AggregateError<AccountError>),
    /// The organization's command failed.
    #[error(transparent)]
    Organization(#[from] AggregateError<OrganizationError>),
    /// AWS refused a refresh's call (R16); redacted.
    #[error("{0}")]
    Aws(String),
}

/// Runs harvests; cheap to clone.
#[derive(Clone)]
pub struct Harvester(Arc<Inner>);

struct Inner {
    aws: Aws,
    keys: Arc<KeyRing>,
    store: Store,
    commands: Arc<Commands>,
    projector: Arc<Projector>,
    settings: HarvestSettings,
    // One pass per organization at a time in this process; the store's lock guards across
    // processes.
    locks: Mutex<HashMap<OrgId, Arc<AsyncMutex<()>>>>,
    // Organizations asked to harvest while one ran: the running one goes again when done, so
    // a filter change made meanwhile is never left to the next interval.
    reruns: Mutex<HashSet<OrgId>>,
    // Organizations whose last harvests here could not run to an outcome (the store failed,
    // so not even the failure was recorded): how many in a row, and when the scheduler may
    // try again.
    retries: Mutex<HashMap<OrgId, Retry>>,
    // How the harvests running here are getting on.
    progress: ProgressBoard,
    // The pollers of events queues this instance runs while it schedules.
    pollers: poller::Pollers,
    tasks: TaskTracker,
    // Harvests run on the daemon's runtime, not on the HTTP worker that asked for them.
    runtime: tokio::runtime::Handle,
    shutdown: CancellationToken,
}

/// Harvests of an organization that could not run to an outcome, in a row.
#[derive(Debug, Clone, Copy)]
struct Retry {
    failures: u32,
    not_before: DateTime<Utc>,
}

/// What a [`Harvester`] is made of.
pub struct Parts {
    /// AWS, with the external ID.
    pub aws: Aws,
    /// The key ring that opens the organizations' credentials.
    pub keys: Arc<KeyRing>,
    /// The store.
    pub store: Store,
    /// The command side.
    pub commands: Arc<Commands>,
    /// The projector that keeps the read tables up to date.
    pub projector: Arc<Projector>,
    /// The harvest settings.
    pub settings: HarvestSettings,
    /// Where harvests are spawned, so that stopping waits for them.
    pub tasks: TaskTracker,
    /// Cancelled when the daemon stops: a pass still reading AWS is then abandoned.
    pub shutdown: CancellationToken,
}

impl Harvester {
    /// A harvester of `parts`, spawning its harvests on the current runtime.
    pub fn new(parts: Parts) -> Self {
        Self(Arc::new(Inner {
            aws: parts.aws,
            keys: parts.keys,
            store: parts.store,
            commands: parts.commands,
            projector: parts.projector,
            settings: parts.settings,
            locks: Mutex::default(),
            reruns: Mutex::default(),
            retries: Mutex::default(),
            progress: ProgressBoard::default(),
            pollers: poller::Pollers::default(),
            tasks: parts.tasks,
            runtime: tokio::runtime::Handle::current(),
            shutdown: parts.shutdown,
        }))
    }

    /// How the harvests running in this process are getting on.
    pub fn progress(&self) -> &ProgressBoard {
        &self.0.progress
    }

    /// Starts a harvest in the background unless one of the organization is running, in
    /// which case that one runs once more when it ends; returns whether it started one.
    pub fn start(&self, id: &OrgId) -> bool {
        self.spawn(id, None)
    }

    /// Starts a scheduled harvest: once it holds the organization's lock it runs only if no
    /// harvest started since the scheduler saw `seen`, on this instance or another.
    fn start_scheduled(&self, id: &OrgId, seen: LastStart) -> bool {
        self.spawn(id, Some(seen))
    }

    fn spawn(&self, id: &OrgId, seen: Option<LastStart>) -> bool {
        let mut reruns = self.0.reruns.lock().expect("rerun set poisoned");
        let Ok(running) = self.lock(id).try_lock_owned() else {
            reruns.insert(id.clone());
            return false;
        };
        drop(reruns);
        let harvester = self.clone();
        let id = id.clone();
        let harvest = async move {
            let mut running = running;
            loop {
                if let Err(e) = harvester.run_across_instances(&id, seen).await {
                    tracing::error!(org_id = %id, error = %e, "harvest could not run");
                }
                match harvester.finish(&id, running) {
                    Some(again) => running = again,
                    None => return,
                }
            }
        };
        self.0.tasks.spawn_on(harvest, &self.0.runtime);
        true
    }

    /// Runs a pass unless another instance is harvesting the organization, or, for a
    /// scheduled one, unless its harvest record changed since the scheduler read it as `seen`
    /// (another harvest started or ended meanwhile): the check and the run happen under the
    /// organization's lock, so instances never double up.
    async fn run_across_instances(
        &self,
        id: &OrgId,
        seen: Option<LastStart>,
    ) -> Result<(), HarvestError> {
        let Some(_across_instances) = self.0.store.lock_harvest(id, false).await? else {
            tracing::debug!(org_id = %id, "another instance harvests it");
            return Ok(());
        };
        if let Some(seen) = seen {
            if harvest_runs::last_start(self.0.store.pool(), id).await? != seen {
                tracing::debug!(org_id = %id, "harvested meanwhile");
                return Ok(());
            }
        }
        self.run(id).await
    }

    /// Waits for a running harvest of the organization, runs one more, and returns when it
    /// ended; one asked for meanwhile starts after it. Both run on a task of their own,
    /// tracked as every harvest is: a caller that stops waiting (a client gone, a request cut
    /// short by the server's shutdown) leaves the harvest to finish.
    pub async fn run_now(&self, id: &OrgId) -> Result<(), HarvestError> {
        let (harvester, id) = (self.clone(), id.clone());
        let harvest = async move {
            let running = harvester.lock(&id).lock_owned().await;
            let across_instances = harvester.0.store.lock_harvest(&id, true).await?;
            let outcome = harvester.run(&id).await;
            drop(across_instances);
            if let Some(running) = harvester.finish(&id, running) {
                drop(running);
                harvester.start(&id);
            }
            outcome
        };
        match self.0.tasks.spawn_on(harvest, &self.0.runtime).await {
            Ok(outcome) => outcome,
            // Nothing else ends the task: the runtime outlives every request.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Holds the organization's harvest lock, here and across instances, while `work` runs:
    /// no harvest of it runs meanwhile.
    pub async fn without_harvest<T>(
        &self,
        id: &OrgId,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, HarvestError> {
        let lock = self.lock(id);
        let _no_harvest = lock.lock().await;
        let _nor_elsewhere = self.0.store.lock_harvest(id, true).await?;
        Ok(work.await)
    }

    /// Runs one pass of `org_id`, timed and counted. The caller holds its locks.
    #[tracing::instrument(skip_all, fields(org_id = %org_id))]
    async fn run(&self, org_id: &OrgId) -> Result<(), HarvestError> {
        let timer = METRICS
            .harvest_seconds
            .with_label_values(&[org_id.as_str()])
            .start_timer();
        let result = pass::run(self, org_id).await;
        timer.observe_duration();
        if let Err(e) = &result {
            let error = format!("the harvest could not run to an outcome: {e}");
            self.0.progress.finished(org_id, 0, Some(error));
        }
        self.count_retry(org_id, result.is_err());
        let outcome = match &result {
            Ok(pass::Outcome::Completed) => "completed",
            Ok(pass::Outcome::Failed) => "failed",
            Err(_) => "error",
        };
        METRICS
            .harvests
            .with_label_values(&[org_id.as_str(), outcome])
            .inc();
        result.map(|_| ())
    }

    /// Ends a harvest: hands the lock back when a rerun was asked for meanwhile, else frees
    /// it. Both happen under the rerun set's lock, so no request falls between them.
    fn finish(&self, id: &OrgId, running: OwnedMutexGuard<()>) -> Option<OwnedMutexGuard<()>> {
        let mut reruns = self.0.reruns.lock().expect("rerun set poisoned");
        if reruns.remove(id) && !self.0.shutdown.is_cancelled() {
            return Some(running);
        }
        drop(running);
        None
    }

    /// Counts a harvest that could not run to an outcome, or forgets the count once one did:
    /// the scheduler waits `harvest.tick` times 2, 4, 8… (at most `harvest.interval`) before
    /// trying again.
    fn count_retry(&self, id: &OrgId, failed: bool) {
        let mut retries = self.0.retries.lock().expect("retry map poisoned");
        if !failed {
            retries.remove(id);
            return;
        }
        let failures = retries.get(id).map_or(1, |r| r.failures.saturating_add(1));
        let settings = &self.0.settings;
        let wait = settings
            .tick
            .saturating_mul(2u32.saturating_pow(failures.min(16)))
            .min(settings.interval);
        let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
        retries.insert(
            id.clone(),
            Retry {
                failures,
                not_before: Utc::now() + wait,
            },
        );
    }

    /// Whether the scheduler may try the organization at `now`: not while it backs off after
    /// harvests that could not run to an outcome.
    fn may_retry(&self, id: &OrgId, now: DateTime<Utc>) -> bool {
        let retries = self.0.retries.lock().expect("retry map poisoned");
        retries.get(id).is_none_or(|retry| now >= retry.not_before)
    }

    /// Records as failed every harvest the store marks running that no process runs (the
    /// organization's lock is free): a process stopped, or could not record its end. Answers
    /// how many it closed. Called once at start-up, before any harvest of this process.
    pub async fn close_interrupted(&self) -> Result<usize, HarvestError> {
        let mut closed = 0;
        for (org, _, marked_running) in harvest_runs::last_starts(self.0.store.pool()).await? {
            if !marked_running {
                continue;
            }
            let Some(_free) = self.0.store.lock_harvest(&org, false).await? else {
                continue;
            };
            pass::record_interrupted(self, &org).await?;
            closed += 1;
        }
        Ok(closed)
    }

    /// Whether a harvest of the organization runs in this process now.
    pub fn is_running(&self, id: &OrgId) -> bool {
        self.lock(id).try_lock().is_err()
    }

    fn lock(&self, id: &OrgId) -> Arc<AsyncMutex<()>> {
        let mut locks = self.0.locks.lock().expect("harvest lock map poisoned");
        locks.entry(id.clone()).or_default().clone()
    }
}
