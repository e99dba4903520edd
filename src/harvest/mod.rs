//! Harvests: one pass over an organization (assume the org role, list the whole tree with
//! tags, then turn what changed into account commands), and the scheduler that starts them.
//!
//! A listing that fails or stops partway changes no membership (R8): accounts are only marked
//! gone after AWS answered every page. Accounts whose facts equal the read model get no
//! command at all, so a harvest that saw nothing new appends nothing (I3).

mod runs;
mod scheduler;

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use futures::{StreamExt, TryStreamExt};

pub use scheduler::Scheduler;

use crate::app::{App, AppError};
use crate::aws::{AssumeRole, ListedAccount};
use crate::domain::account::{AccountCommand, RecordAccountGone, RecordAccountSeen, TagChanged};
use crate::domain::organization::{
    Credentials, HarvestOutcome, OrganizationCommand, RecordHarvest,
};
use crate::domain::{AccountId, Actor, OrgId};
use crate::projections::accounts::{self, AccountView};
use crate::projections::organizations::{self, OrganizationRecord};

/// Accounts whose commands run at once; the store, not AWS, is the limit here.
const STORE_CONCURRENCY: usize = 4;

/// Runs one harvest of `org_id`. The caller makes sure no other harvest of it runs. Errors
/// are the store's; a failed listing is recorded as the harvest's outcome, not returned.
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub(crate) async fn run(app: &App, org_id: &OrgId) -> Result<(), AppError> {
    let inner = app.inner();
    let pool = inner.store.pool();
    inner.projector.catch_up().await?;
    let org = organizations::record(pool, org_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("organization {org_id}")))?;
    let actor = Actor::harvest(org_id);
    runs::started(pool, org_id, Utc::now()).await?;

    let listed = match list(app, &org).await {
        Ok(listed) => listed,
        Err(error) => return record_failure(app, org_id, &actor, error).await,
    };
    if inner.shutdown.is_cancelled() {
        let error = "abandoned before applying: the daemon is stopping".to_owned();
        return record_failure(app, org_id, &actor, error).await;
    }
    let changes = match apply(app, org_id, &listed, &actor).await {
        Ok(changes) => changes,
        Err(e) => {
            record_failure(app, org_id, &actor, e.to_string()).await?;
            return Err(e);
        }
    };
    let outcome = HarvestOutcome::Completed {
        accounts_seen: listed.len(),
        changes,
    };
    inner
        .organizations
        .execute(
            org_id.as_str(),
            &[OrganizationCommand::RecordHarvest(RecordHarvest {
                outcome,
            })],
            &actor,
        )
        .await?;
    inner.projector.catch_up().await?;
    runs::completed(pool, org_id, Utc::now(), listed.len()).await?;
    tracing::info!(accounts = listed.len(), changes, "harvest completed");
    Ok(())
}

/// Assumes the org role and lists every account with its tags.
async fn list(app: &App, org: &OrganizationRecord) -> Result<Vec<ListedAccount>, String> {
    let inner = app.inner();
    let credentials = inner
        .keys
        .open_json::<Credentials>(&org.credentials)
        .map_err(|e| format!("credentials cannot be opened: {e}"))?;
    let org_role = &credentials.expose().org_role;
    let session = inner
        .aws
        .assume_role(AssumeRole {
            role_arn: &org_role.role_arn,
            session_name: &org_role.session_name,
            duration: org_role.duration_seconds,
            external_id: &inner.external_id,
        })
        .await
        .map_err(|e| e.to_string())?;
    inner
        .aws
        .list_accounts(&session, inner.harvest.concurrency)
        .await
        .map_err(|e| e.to_string())
}

async fn record_failure(
    app: &App,
    org_id: &OrgId,
    actor: &Actor,
    error: String,
) -> Result<(), AppError> {
    let inner = app.inner();
    tracing::warn!(%error, "harvest failed");
    let outcome = HarvestOutcome::Failed {
        error: error.clone(),
    };
    inner
        .organizations
        .execute(
            org_id.as_str(),
            &[OrganizationCommand::RecordHarvest(RecordHarvest {
                outcome,
            })],
            actor,
        )
        .await?;
    inner.projector.catch_up().await?;
    runs::failed(inner.store.pool(), org_id, Utc::now(), &error).await?;
    Ok(())
}

/// Sends commands for what differs between the complete listing and the read model; returns
/// how many events they appended.
async fn apply(
    app: &App,
    org_id: &OrgId,
    listed: &[ListedAccount],
    actor: &Actor,
) -> Result<usize, AppError> {
    let inner = app.inner();
    let known: HashMap<AccountId, AccountView> =
        accounts::of_organization(inner.store.pool(), org_id)
            .await?
            .into_iter()
            .map(|a| (a.account_id.clone(), a))
            .collect();
    let mut work: Vec<(AccountId, Vec<AccountCommand>)> = listed
        .iter()
        .filter(|a| !known.get(&a.id).is_some_and(|view| unchanged(view, a)))
        .map(|a| {
            let seen = AccountCommand::RecordAccountSeen(RecordAccountSeen {
                organization_id: org_id.clone(),
                name: a.name.clone(),
                email: a.email.clone(),
                state: a.state,
                org_path: a.org_path.clone(),
            });
            let tags = AccountCommand::TagChanged(TagChanged {
                tags: a.tags.clone(),
            });
            (a.id.clone(), vec![seen, tags])
        })
        .collect();
    let listed_ids: HashSet<&AccountId> = listed.iter().map(|a| &a.id).collect();
    work.extend(
        known
            .keys()
            .filter(|id| !listed_ids.contains(id))
            .map(|id| {
                let gone = AccountCommand::RecordAccountGone(RecordAccountGone {
                    organization_id: org_id.clone(),
                });
                (id.clone(), vec![gone])
            }),
    );
    futures::stream::iter(work)
        .map(|(id, commands)| async move {
            inner
                .accounts
                .execute(id.as_str(), &commands, actor)
                .await
                .map_err(AppError::from)
        })
        .buffer_unordered(STORE_CONCURRENCY)
        .try_fold(0, |total, appended| async move { Ok(total + appended) })
        .await
}

fn unchanged(view: &AccountView, listed: &ListedAccount) -> bool {
    view.name == listed.name
        && view.email == listed.email
        && view.state == listed.state
        && view.org_path == listed.org_path
        && view.tags == listed.tags
}
