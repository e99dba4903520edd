//! One pass over an organization: assume the org role, list the whole tree with tags, then
//! turn what changed into account commands.
//!
//! A listing that fails or stops partway changes no membership (R8): accounts are only marked
//! gone after AWS answered every page. Accounts out of the organization's scope (R6) or
//! suspended with `auto_remove_suspended` (R7) leave the listing; every other account's
//! member role is assumed (R4). Accounts whose facts and access equal the read model get no
//! command at all, so a harvest that saw nothing new appends nothing (I3).

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use chrono::Utc;
use futures::StreamExt;
use sqlx::AnyPool;

use crate::aws::{actions, ListedAccount, Redaction, RoleSession};
use crate::domain::account::{
    Access, AccessStatus, AccountCommand, RecordAccountGone, RecordAccountSeen, RemovalReason,
    RemoveAccount, SuspendAccount, TagChanged, Tags,
};
use crate::domain::organization::{
    Credentials, Filters, HarvestOutcome, OrganizationCommand, RecordHarvest,
};
use crate::domain::{AccountId, AccountState, Actor, OrgId, OrgPath, RoleArn};
use crate::projections::accounts;
use crate::projections::organizations::{self, OrganizationRecord};
use crate::store::harvest_runs;

use super::{HarvestError, Harvester, Inner};

/// How a harvest that ran to its end came out.
pub(super) enum Outcome {
    Completed,
    Failed,
}

/// Runs one pass of `org_id`. The caller makes sure no other pass of it runs. Errors are the
/// store's; a failed listing is recorded as the harvest's outcome, not returned.
pub(super) async fn run(harvester: &Harvester, org_id: &OrgId) -> Result<Outcome, HarvestError> {
    let h = &harvester.0;
    let pool = h.store.pool();
    h.projector.catch_up().await?;
    let org = organizations::record(pool, org_id)
        .await?
        .ok_or_else(|| HarvestError::NotRegistered(org_id.clone()))?;
    let actor = Actor::harvest(org_id);
    harvest_runs::started(pool, org_id, Utc::now()).await?;
    h.progress.started(org_id);

    let credentials = h.keys.open_json::<Credentials>(&org.credentials)?;
    let redaction = redaction(credentials.expose());
    let failed = |error: String| record_failure(h, org_id, &actor, redaction.apply(&error));
    let known = known(pool, org_id).await?;
    // Reading AWS is abandoned at once when the daemon stops or the harvest's deadline
    // passes; applying, once begun, finishes, so neither leaves half a membership change
    // behind.
    let read = async {
        let listing = Listing::new(&org.filters, list(h, credentials.expose()).await?);
        h.progress.listing(org_id, listing.kept.len());
        let access = check_access(h, credentials.expose(), &listing.kept, &known).await;
        Ok::<_, String>((listing, access))
    };
    let (listing, access) = tokio::select! {
        read = read => match read {
            Ok(read) => read,
            Err(error) => return failed(error).await,
        },
        _ = h.shutdown.cancelled() => {
            return failed("abandoned before applying: the daemon is stopping".to_owned()).await;
        }
        _ = tokio::time::sleep(h.settings.deadline) => {
            let error = format!(
                "abandoned before applying: AWS was still being read at the harvest's \
                 deadline of {} s (harvest.deadline)",
                h.settings.deadline.as_secs()
            );
            return failed(error).await;
        }
    };
    let seen = listing.kept.len();
    let changes = match apply(h, &org, listing, &known, access, &actor).await {
        Ok(changes) => changes,
        Err(e) => {
            failed(e.to_string()).await?;
            return Err(e);
        }
    };
    let outcome = HarvestOutcome::Completed {
        accounts_seen: seen,
        changes,
    };
    record(h, org_id, &actor, outcome).await?;
    harvest_runs::completed(&h.store, org_id, Utc::now(), seen).await?;
    h.progress.finished(org_id, seen, None);
    tracing::info!(accounts = seen, changes, "harvest completed");
    Ok(Outcome::Completed)
}

/// Records the pass's outcome in the organization's history and applies it.
async fn record(
    h: &Inner,
    org_id: &OrgId,
    actor: &Actor,
    outcome: HarvestOutcome,
) -> Result<(), HarvestError> {
    let record = OrganizationCommand::RecordHarvest(RecordHarvest { outcome });
    h.commands
        .organizations()
        .execute(org_id.as_str(), &[record], actor)
        .await?;
    h.projector.catch_up().await?;
    Ok(())
}

/// A complete listing split by the organization's filters.
pub(super) struct Listing {
    /// In scope and not removed for their state: these are listed.
    pub(super) kept: Vec<ListedAccount>,
    /// Listed by AWS but leaving orgsync's listing, and why.
    pub(super) dropped: HashMap<AccountId, RemovalReason>,
}

impl Listing {
    pub(super) fn new(filters: &Filters, listed: Vec<ListedAccount>) -> Self {
        let mut kept = Vec::new();
        let mut dropped = HashMap::new();
        for account in listed {
            if !filters.in_scope(&account.name, &account.org_path) {
                dropped.insert(account.id, RemovalReason::Excluded);
            } else if filters.removes(account.state) {
                dropped.insert(account.id, RemovalReason::Suspended);
            } else {
                kept.push(account);
            }
        }
        Self { kept, dropped }
    }
}

/// What no text a harvest stores or shows may hold of the organization's roles.
pub(super) fn redaction(credentials: &Credentials) -> Redaction {
    let org_role = &credentials.org_role;
    let member = &credentials.member_role;
    let arn = &org_role.role_arn;
    let member_arn = RoleArn::new(arn.partition(), arn.account_id(), &member.role_name);
    Redaction::of(arn, &org_role.session_name, "the org role").and(
        &member_arn,
        &member.session_name,
        "the member role",
    )
}

/// Assumes the org role and lists every account with its tags. Errors are AWS's words, for
/// the caller to redact.
async fn list(h: &Inner, credentials: &Credentials) -> Result<Vec<ListedAccount>, String> {
    let session = h
        .aws
        .assume_org_role(&credentials.org_role)
        .await
        .map_err(|e| e.to_string())?;
    h.aws
        .api()
        .list_accounts(&session, h.settings.concurrency)
        .await
        .map_err(|e| e.to_string())
}

/// Assumes the member role in every listed account that can be reached (R4), at most
/// `harvest.concurrency` at a time.
async fn check_access(
    h: &Inner,
    credentials: &Credentials,
    accounts: &[ListedAccount],
    known: &HashMap<AccountId, Known>,
) -> HashMap<AccountId, Access> {
    let simulator = Simulator::default();
    let mut access = HashMap::with_capacity(accounts.len());
    // A thousand checks at a time: a pending check weighs a kilobyte or two, too much to
    // hold for every account of the largest organizations at once. They are collected
    // first because a stream mapping borrowed accounts is not `Send` enough for the
    // spawned harvest.
    for chunk in accounts.chunks(1000) {
        let checks: Vec<_> = chunk
            .iter()
            .map(|account| {
                let previous = known.get(&account.id).map(|known| &known.access);
                check_member(h, credentials, account, previous, &simulator)
            })
            .collect();
        let checked: Vec<_> = futures::stream::iter(checks)
            .buffer_unordered(h.settings.concurrency)
            .collect()
            .await;
        access.extend(checked);
    }
    access
}

/// Suspended and closed accounts would fail by design and are not tried. The member role's
/// policies are simulated (R15) when the role is first reached, after any access change, and
/// until a simulation succeeds: IAM's simulator is slow and rate-limited, and policies
/// seldom change without access changing too.
pub(super) async fn check_member(
    h: &Inner,
    credentials: &Credentials,
    account: &ListedAccount,
    previous: Option<&Access>,
    simulator: &Simulator,
) -> (AccountId, Access) {
    if !matches!(
        account.state,
        AccountState::Active | AccountState::PendingActivation
    ) {
        return (account.id.clone(), Access::not_checked());
    }
    let member = &credentials.member_role;
    let role_arn = RoleArn::new(
        credentials.org_role.role_arn.partition(),
        &account.id,
        &member.role_name,
    );
    let outcome = h
        .aws
        .assume(&role_arn, &member.session_name, member.duration_seconds)
        .await;
    let session = match outcome {
        Ok(session) => session,
        Err(e) => {
            let access = Access {
                status: AccessStatus::AssumeRoleFailed,
                message: Some(e.redacted(&Redaction::of(
                    &role_arn,
                    &member.session_name,
                    "the member role",
                ))),
                warnings: Vec::new(),
                permissions_checked: false,
            };
            return (account.id.clone(), access);
        }
    };
    if let Some(known) = previous.filter(|p| p.status == AccessStatus::Ok && p.permissions_checked)
    {
        return (account.id.clone(), known.clone());
    }
    let (warnings, permissions_checked) = match simulator.simulate(h, &session, &role_arn).await {
        Ok(denied) => (
            denied.iter().map(|action| denied_warning(action)).collect(),
            true,
        ),
        Err(failure) => (vec![failure], false),
    };
    let access = Access {
        status: AccessStatus::Ok,
        message: None,
        warnings,
        permissions_checked,
    };
    (account.id.clone(), access)
}

/// IAM's policy simulator for one harvest: after its first failure (throttled, down, or not
/// implemented, as in emulators) it is left alone for the rest of the harvest, and every
/// account gets the same warning, so the next harvest, which tries again, sees no change.
#[derive(Default)]
pub(super) struct Simulator {
    failure: std::sync::Mutex<Option<String>>,
}

impl Simulator {
    async fn simulate(
        &self,
        h: &Inner,
        session: &RoleSession,
        role_arn: &RoleArn,
    ) -> Result<Vec<String>, String> {
        if let Some(failure) = self.failure.lock().expect("simulator poisoned").clone() {
            return Err(failure);
        }
        let simulated = h
            .aws
            .api()
            .denied_actions(session, role_arn, actions::MEMBER_HARVEST)
            .await;
        simulated.map_err(|e| {
            // Only the operation and AWS's code: messages vary between attempts.
            let failure = format!(
                "the member role's permissions could not be checked: {} failed ({})",
                e.operation,
                e.code.as_deref().unwrap_or("no error code")
            );
            self.failure
                .lock()
                .expect("simulator poisoned")
                .get_or_insert(failure)
                .clone()
        })
    }
}

/// A denied action, with the caveat operators need (R15).
fn denied_warning(action: &str) -> String {
    format!(
        "{action} is denied by the member role's policies. An SCP with conditions on global \
         keys (such as aws:PrincipalArn) can make this warning false: IAM's policy simulator \
         does not see those keys"
    )
}

/// Records as failed a harvest left marked running by a process that stopped or could not
/// record its end; the caller holds the organization's locks.
pub(super) async fn record_interrupted(
    harvester: &Harvester,
    org_id: &OrgId,
) -> Result<Outcome, HarvestError> {
    let error = "interrupted: the process running it stopped, or could not record its end, \
                 before it ended"
        .to_owned();
    record_failure(&harvester.0, org_id, &Actor::harvest(org_id), error).await
}

/// Records a failed harvest; `error` is redacted already.
async fn record_failure(
    h: &Inner,
    org_id: &OrgId,
    actor: &Actor,
    error: String,
) -> Result<Outcome, HarvestError> {
    fail::fail_point!("harvest-record-failure", |_| Err(HarvestError::Store(
        crate::store::StoreError::Malformed("fail point harvest-record-failure".into())
    )));
    tracing::warn!(%error, "harvest failed");
    h.progress.finished(org_id, 0, Some(error.clone()));
    let outcome = HarvestOutcome::Failed {
        error: error.clone(),
    };
    record(h, org_id, actor, outcome).await?;
    harvest_runs::failed(h.store.pool(), org_id, Utc::now(), &error).await?;
    Ok(Outcome::Failed)
}

/// What a harvest compares of an account the read model lists: a digest of its facts and
/// its access, small enough to hold for every account of the largest organization.
pub(super) struct Known {
    facts: u64,
    access: Access,
    suspended: bool,
}

impl Known {
    /// The account's access as the read model holds it.
    pub(super) fn access(&self) -> &Access {
        &self.access
    }
}

impl From<accounts::Compared> for Known {
    fn from(row: accounts::Compared) -> Self {
        Self {
            facts: facts(
                &row.name,
                row.email.as_deref(),
                row.state,
                &row.org_path,
                &row.tags,
            ),
            suspended: row.state == Some(AccountState::Suspended),
            access: row.access,
        }
    }
}

/// A digest of what a listing says of an account; equal facts give equal digests.
fn facts(
    name: &str,
    email: Option<&str>,
    state: Option<AccountState>,
    org_path: &OrgPath,
    tags: &Tags,
) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    (name, email, state, org_path, tags).hash(&mut hasher);
    hasher.finish()
}

/// The accounts the read model lists for `org_id`, read a page at a time.
async fn known(pool: &AnyPool, org_id: &OrgId) -> Result<HashMap<AccountId, Known>, HarvestError> {
    const PAGE: i64 = 1000;
    let mut known = HashMap::new();
    let mut after = None;
    loop {
        let page = accounts::compared(pool, org_id, after.as_ref(), PAGE).await?;
        let last_page = (page.len() as i64) < PAGE;
        after = page.last().map(|row| row.account_id.clone());
        for row in page {
            let id = row.account_id.clone();
            known.insert(id, Known::from(row));
        }
        if last_page {
            return Ok(known);
        }
    }
}

/// The commands that bring what the read model knows of a listed account, `before`, to what
/// AWS lists and `access`; none when nothing differs.
pub(super) fn listed_commands(
    org: &OrganizationRecord,
    account: ListedAccount,
    before: Option<&Known>,
    access: Access,
) -> Option<Vec<AccountCommand>> {
    let facts = facts(
        &account.name,
        Some(&account.email),
        Some(account.state),
        &account.org_path,
        &account.tags,
    );
    if before.is_some_and(|known| known.facts == facts && known.access == access) {
        return None;
    }
    // A listed account turning SUSPENDED is suspended first, by the command that says so.
    let suspend = (account.state == AccountState::Suspended
        && before.is_some_and(|known| !known.suspended))
    .then(|| {
        AccountCommand::SuspendAccount(SuspendAccount {
            organization_id: org.id.clone(),
        })
    });
    let seen = AccountCommand::RecordAccountSeen(RecordAccountSeen {
        organization_id: org.id.clone(),
        name: account.name,
        email: account.email,
        state: account.state,
        org_path: account.org_path,
    });
    let tags = AccountCommand::TagChanged(TagChanged {
        tags: account.tags,
        auto_badge: org.filters.auto_badge,
    });
    let checked = AccountCommand::RecordAccessCheck(access);
    Some(suspend.into_iter().chain([seen, tags, checked]).collect())
}

/// Sends commands for what differs between the complete listing and the read model; returns
/// how many events they appended.
async fn apply(
    h: &Inner,
    org: &OrganizationRecord,
    listing: Listing,
    known: &HashMap<AccountId, Known>,
    mut access: HashMap<AccountId, Access>,
    actor: &Actor,
) -> Result<usize, HarvestError> {
    let org_id = &org.id;
    let accounts = h.commands.accounts();
    let projector = h.projector.as_ref();
    let mut gone: HashSet<&AccountId> = known.keys().collect();
    let listed_count = listing.kept.len();
    let mut applied = 0;
    // Commands are made as they are sent, so that each account's facts are held once, in
    // the listing or in its commands, never in both.
    let listed = listing.kept.into_iter().filter_map(|account| {
        gone.remove(&account.id);
        applied += 1;
        h.progress.applying(org_id, listed_count, applied);
        let access = access
            .remove(&account.id)
            .unwrap_or_else(Access::not_checked);
        let id = account.id.to_string();
        let before = known.get(&account.id);
        listed_commands(org, account, before, access).map(|commands| (id, commands))
    });
    let appended = accounts.execute_each(listed, actor, projector).await?;
    let work = gone.into_iter().map(|id| {
        let command = match listing.dropped.get(id) {
            Some(reason) => AccountCommand::RemoveAccount(RemoveAccount {
                organization_id: org_id.clone(),
                reason: *reason,
            }),
            None => AccountCommand::RecordAccountGone(RecordAccountGone {
                organization_id: org_id.clone(),
            }),
        };
        (id.to_string(), vec![command])
    });
    Ok(appended + accounts.execute_each(work, actor, projector).await?)
}
