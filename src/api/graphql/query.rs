use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Enum, Object, ID};
use chrono::{DateTime, Utc};

use crate::api::input::{event_page, ListingFilters};
use crate::api::EventView;
use crate::app::templates::Template;
use crate::app::AppError;
use crate::domain::account::AccessStatus;
use crate::domain::AccountState;

use super::listing::{self, AccountPage};
use super::types::{Account, Organization};
use super::{account_id, admin, app, gql, org_id, viewer};

/// What a listing at a past instant adds to a query's complexity: it replays the log, so at
/// most four of them fit in one query (`MAX_COMPLEXITY`), however small their pages.
const AS_OF_COMPLEXITY: usize = 1000;

/// What viewers may read.
pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// Every API token, revoked and expired ones too; never a secret. Admins only.
    async fn tokens(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<crate::api::TokenView>> {
        admin(ctx)?;
        let tokens = app(ctx)?.tokens().await.map_err(gql)?;
        Ok(tokens.into_iter().map(Into::into).collect())
    }

    /// Every registered organization.
    async fn organizations(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Organization>> {
        viewer(ctx)?;
        let orgs = app(ctx)?.organizations().await.map_err(gql)?;
        Ok(orgs.into_iter().map(Organization::from).collect())
    }

    /// One organization; null when it is not registered.
    async fn organization(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<Organization>> {
        viewer(ctx)?;
        match app(ctx)?.organization(&org_id(id)?).await {
            Ok(org) => Ok(Some(org.into())),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(e) => Err(gql(e)),
        }
    }

    /// One account of the listing; null when it is not listed.
    async fn account(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Account>> {
        viewer(ctx)?;
        match app(ctx)?.account(&account_id(id)?).await {
            Ok(account) => Ok(Some(account.into())),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(e) => Err(gql(e)),
        }
    }

    /// The listing, by account id: filters as in REST (`badges` are `key:value`, all must
    /// match; `ou` a root or OU id the accounts are nested below), paged with `first`/`after`.
    /// With `asOf`, the listing as it was at that instant, rebuilt from the event log (each
    /// such listing counts 1000 towards the complexity limit).
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "first.unwrap_or(50).max(0) as usize * child_complexity \
                      + as_of.map_or(0, |_| AS_OF_COMPLEXITY)")]
    async fn accounts(
        &self,
        ctx: &Context<'_>,
        organization: Option<ID>,
        state: Option<AccountState>,
        access: Option<AccessStatus>,
        ou: Option<String>,
        #[graphql(default)] badges: Vec<String>,
        q: Option<String>,
        first: Option<i32>,
        after: Option<String>,
        as_of: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<AccountPage> {
        let filters = ListingFilters {
            organization: organization.map(|id| id.0),
            state,
            access,
            ou,
            badges,
            q,
        };
        listing::page(ctx, filters, first, after, as_of).await
    }

    /// The change feed: every event after the cursor `after` (a `sequence`; from the start
    /// when left out), in log order, each exactly once (I5); `first` 1 to 1000, 100 when left
    /// out. With nothing new, the page is empty: ask again with the same cursor.
    #[graphql(complexity = "first.unwrap_or(100).max(0) as usize * child_complexity")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, EventView, EmptyFields, EmptyFields>> {
        viewer(ctx)?;
        let (after, limit) = event_page(after.as_deref(), first.map(i64::from)).map_err(gql)?;
        // One more than asked tells whether another page follows.
        let mut events = app(ctx)?
            .events_after(after, limit + 1)
            .await
            .map_err(gql)?;
        let has_next = events.len() as i64 > limit;
        events.truncate(usize::try_from(limit).unwrap_or(0));
        let mut connection = Connection::new(after > 0, has_next);
        connection.edges.extend(
            events
                .into_iter()
                .map(|event| Edge::new(event.seq.to_string(), EventView::from(event))),
        );
        Ok(connection)
    }

    /// The installation's external ID (R1), which every role's trust policy requires.
    /// Admins only.
    async fn external_id(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        admin(ctx)?;
        Ok(app(ctx)?.external_id().expose().clone())
    }

    /// A CloudFormation template (YAML) for one of the two roles, with the external ID and,
    /// when configured, the trusted principal filled in. Admins only.
    async fn role_template(
        &self,
        ctx: &Context<'_>,
        name: TemplateName,
    ) -> async_graphql::Result<String> {
        admin(ctx)?;
        Ok(app(ctx)?.role_template(name.into()))
    }
}

/// Which role template.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "Template")]
pub enum TemplateName {
    /// The role in the management account that reads the organization (`org-role.yaml`).
    OrgRole,
    /// The role in every member account (`member-role.yaml`).
    MemberRole,
}
