use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Object, ID};
use chrono::{DateTime, Utc};

use crate::api::input::{cursor, cursor_after, invalid_query, ListingFilters};
use crate::app::AppError;
use crate::domain::{AccountId, AccountState, OrgId};

use super::types::{Account, Organization};
use super::{admin, app, gql, viewer};

const MAX_PAGE: i32 = 1000;
/// What a listing at a past instant adds to a query's complexity: it replays the log, so at
/// most four of them fit in one query (`MAX_COMPLEXITY`), however small their pages.
const AS_OF_COMPLEXITY: usize = 1000;

/// What viewers may read.
pub struct QueryRoot;

fn org_id(id: ID) -> async_graphql::Result<OrgId> {
    OrgId::try_from(id.0).map_err(|e| gql(AppError::from(e)))
}

fn account_id(id: ID) -> async_graphql::Result<AccountId> {
    AccountId::try_from(id.0).map_err(|e| gql(AppError::from(e)))
}

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
    /// match), paged with `first`/`after`. With `asOf`, the listing as it was at that instant,
    /// rebuilt from the event log (each such listing counts 1000 towards the complexity limit).
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "first.unwrap_or(50).max(0) as usize * child_complexity \
                      + as_of.map_or(0, |_| AS_OF_COMPLEXITY)")]
    async fn accounts(
        &self,
        ctx: &Context<'_>,
        organization: Option<ID>,
        state: Option<AccountState>,
        #[graphql(default)] badges: Vec<String>,
        q: Option<String>,
        first: Option<i32>,
        after: Option<String>,
        as_of: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Connection<String, Account, EmptyFields, EmptyFields>> {
        viewer(ctx)?;
        let first = first.unwrap_or(50);
        if !(1..=MAX_PAGE).contains(&first) {
            let message = format!("expected 1 to {MAX_PAGE}, got {first}");
            return Err(gql(invalid_query("first", message)));
        }
        let after = after
            .map(|c| cursor("after", &c))
            .transpose()
            .map_err(gql)?;
        let filters = ListingFilters {
            organization: organization.map(|id| id.0),
            state,
            badges,
            q,
        };
        // One more than asked tells whether another page follows.
        let query = filters.query(after, i64::from(first) + 1).map_err(gql)?;
        let app = app(ctx)?;
        let mut accounts = match as_of {
            Some(at) => app.accounts_as_of(&query, at).await,
            None => app.accounts(&query).await,
        }
        .map_err(gql)?;
        let has_next = accounts.len() > first as usize;
        accounts.truncate(first as usize);
        let mut connection = Connection::new(query.after.is_some(), has_next);
        connection.edges.extend(
            accounts
                .into_iter()
                .map(|a| Edge::new(cursor_after(&a.account_id), Account::from(a))),
        );
        Ok(connection)
    }
}
