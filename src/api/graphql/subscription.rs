use async_graphql::{Context, Enum, SimpleObject, Subscription, ID};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};

use crate::harvest::{Phase, Progress};

use super::{app, gql, org_id, viewer};

/// Something happened to an account of the organization.
#[derive(SimpleObject)]
pub struct AccountChange {
    /// The event's position in the log.
    sequence: i64,
    account_id: ID,
    /// The event's type, e.g. `AccountTagsChanged`.
    #[graphql(name = "type")]
    event_type: String,
    at: DateTime<Utc>,
}

/// Where a harvest is.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "Phase")]
pub enum HarvestPhase {
    /// It holds the organization's lock and has begun.
    Started,
    /// AWS has listed the accounts; their member roles are being checked.
    Listing,
    /// What changed is being turned into events: `accountsApplied` of `accountsListed`.
    Applying,
    /// It ended; `outcome` says how.
    Finished,
}

/// One report of a harvest running in this process.
#[derive(SimpleObject)]
pub struct HarvestProgress {
    organization_id: ID,
    phase: HarvestPhase,
    /// Accounts AWS listed (0 until the listing is complete).
    accounts_listed: i64,
    /// Listed accounts compared with the listing and, where they changed, applied.
    accounts_applied: i64,
    /// `completed` or `failed`, once finished.
    outcome: Option<String>,
    /// Why it failed.
    error: Option<String>,
}

impl From<Progress> for HarvestProgress {
    fn from(progress: Progress) -> Self {
        Self {
            organization_id: ID(progress.organization_id.to_string()),
            phase: progress.phase.into(),
            accounts_listed: i64::try_from(progress.accounts_listed).unwrap_or(i64::MAX),
            accounts_applied: i64::try_from(progress.accounts_applied).unwrap_or(i64::MAX),
            outcome: progress.outcome.map(str::to_owned),
            error: progress.error,
        }
    }
}

/// Live updates.
pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Every account event of one organization from now on, in log order.
    async fn account_changed(
        &self,
        ctx: &Context<'_>,
        organization: ID,
    ) -> async_graphql::Result<impl Stream<Item = AccountChange>> {
        viewer(ctx)?;
        let org = org_id(organization)?;
        let changes = app(ctx)?.account_changes(&org).await.map_err(gql)?;
        Ok(changes.map(|change| AccountChange {
            sequence: change.sequence,
            account_id: ID(change.account_id),
            event_type: change.event_type,
            at: change.at,
        }))
    }

    /// How the harvests of one organization that this instance runs get on, for a progress
    /// bar: the running one's latest report first, if one runs, then each report as it comes
    /// (a hundred or so while applying), until the subscription is stopped.
    async fn harvest_progress(
        &self,
        ctx: &Context<'_>,
        organization: ID,
    ) -> async_graphql::Result<impl Stream<Item = HarvestProgress>> {
        viewer(ctx)?;
        let org = org_id(organization)?;
        let reports = app(ctx)?.harvest_progress(&org).await.map_err(gql)?;
        Ok(reports.map(HarvestProgress::from))
    }
}
