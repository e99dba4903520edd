use std::time::Duration;

use async_graphql::{Context, SimpleObject, Subscription, ID};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};

use crate::app::{AccountChangeEvent, AppError};
use crate::domain::OrgId;

use super::{app, gql, viewer};

/// How long a subscription waits for this process's projector before looking at the log
/// anyway, for events other instances appended.
const POLL: Duration = Duration::from_secs(1);

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
        let org = OrgId::try_from(organization.0).map_err(|e| gql(AppError::from(e)))?;
        let app = app(ctx)?.clone();
        let start = app.last_event().await.map_err(gql)?;
        let pending: Vec<AccountChangeEvent> = Vec::new();
        let projected = app.projected_positions();
        Ok(futures::stream::unfold(
            (app, org, start, projected, pending),
            |(app, org, mut cursor, mut projected, mut pending)| async move {
                loop {
                    if let Some(change) = pending.pop() {
                        return Some((change, (app, org, cursor, projected, pending)));
                    }
                    match app.account_changes(&org, cursor).await {
                        Ok((changes, next)) => {
                            cursor = next;
                            pending = changes.into_iter().rev().collect();
                            if !pending.is_empty() {
                                continue;
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "subscription cannot read the log"),
                    }
                    let _ = tokio::time::timeout(POLL, projected.changed()).await;
                }
            },
        )
        .map(|change| AccountChange {
            sequence: change.sequence,
            account_id: ID(change.account_id),
            event_type: change.event_type,
            at: change.at,
        }))
    }
}
