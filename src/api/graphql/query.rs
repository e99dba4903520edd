use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Object, ID};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as CURSOR;
use base64::Engine;
use chrono::{DateTime, Utc};

use crate::app::AppError;
use crate::domain::{AccountId, AccountState, OrgId};
use crate::projections::accounts::AccountQuery;

use super::types::{Account, AccountState as StateFilter, Organization};
use super::{app, gql, viewer};

const MAX_PAGE: i32 = 1000;

/// What viewers may read.
pub struct QueryRoot;

fn org_id(id: ID) -> async_graphql::Result<OrgId> {
    OrgId::try_from(id.0).map_err(|e| gql(AppError::from(e)))
}

fn account_id(id: ID) -> async_graphql::Result<AccountId> {
    AccountId::try_from(id.0).map_err(|e| gql(AppError::from(e)))
}

fn invalid(message: String) -> async_graphql::Error {
    gql(AppError::Invalid {
        code: "invalid_query",
        message,
    })
}

#[Object]
impl QueryRoot {
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
    /// rebuilt from the event log.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "first.unwrap_or(50).max(0) as usize * child_complexity")]
    async fn accounts(
        &self,
        ctx: &Context<'_>,
        organization: Option<ID>,
        state: Option<StateFilter>,
        #[graphql(default)] badges: Vec<String>,
        q: Option<String>,
        first: Option<i32>,
        after: Option<String>,
        as_of: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Connection<String, Account, EmptyFields, EmptyFields>> {
        viewer(ctx)?;
        let first = first.unwrap_or(50);
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(invalid(format!(
                "first: expected 1 to {MAX_PAGE}, got {first}"
            )));
        }
        let badges = badges
            .into_iter()
            .map(|b| {
                b.split_once(':')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .ok_or_else(|| invalid(format!("badges: expected key:value, got {b:?}")))
            })
            .collect::<Result<_, _>>()?;
        let after = after
            .map(|c| {
                CURSOR
                    .decode(&c)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .and_then(|id| AccountId::try_from(id).ok())
                    .ok_or_else(|| invalid("after: not a cursor this API gave out".into()))
            })
            .transpose()?;
        // One more than asked tells whether another page follows.
        let query = AccountQuery {
            organization: organization.map(org_id).transpose()?,
            state: state.map(AccountState::from),
            badges,
            text: q.filter(|q| !q.is_empty()),
            after,
            limit: i64::from(first) + 1,
        };
        let app = app(ctx)?;
        let mut accounts = match as_of {
            Some(at) => app.accounts_as_of(&query, at).await,
            None => app.accounts(&query).await,
        }
        .map_err(gql)?;
        let has_next = accounts.len() > first as usize;
        accounts.truncate(first as usize);
        let mut connection = Connection::new(query.after.is_some(), has_next);
        connection.edges.extend(accounts.into_iter().map(|a| {
            let cursor = CURSOR.encode(a.account_id.as_str());
            Edge::new(cursor, Account::from(a))
        }));
        Ok(connection)
    }
}
