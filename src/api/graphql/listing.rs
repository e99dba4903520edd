//! The listing as GraphQL pages it: the root `accounts` and an organization's `accounts`,
//! one connection with the same filters and checks, and the organization's OU tree.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{ComplexObject, Context};
use chrono::{DateTime, Utc};

use crate::api::input::{cursor, cursor_after, invalid_query, ListingFilters};
use crate::domain::account::AccessStatus;
use crate::domain::AccountState;

use super::types::{Account, Organization, OrganizationalUnit};
use super::{app, gql, org_id, viewer};

/// The largest page of the listing.
const MAX_PAGE: i32 = 1000;
/// A page's size when `first` is left out.
const DEFAULT_PAGE: i32 = 50;

/// A page of accounts.
pub type AccountPage = Connection<String, Account, EmptyFields, EmptyFields>;

/// A page of `first` accounts (1 to 1000, 50 when left out) after the cursor `after`
/// selected by `filters`; at the instant `as_of`, rebuilt from the log, when given.
pub(super) async fn page(
    ctx: &Context<'_>,
    filters: ListingFilters,
    first: Option<i32>,
    after: Option<String>,
    as_of: Option<DateTime<Utc>>,
) -> async_graphql::Result<AccountPage> {
    viewer(ctx)?;
    let first = first.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&first) {
        let message = format!("expected 1 to {MAX_PAGE}, got {first}");
        return Err(gql(invalid_query("first", message)));
    }
    let after = after
        .map(|c| cursor("after", &c))
        .transpose()
        .map_err(gql)?;
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

#[ComplexObject]
impl Organization {
    /// Its accounts of the listing, filtered and paged as the root `accounts` are.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "first.unwrap_or(DEFAULT_PAGE).max(0) as usize * child_complexity")]
    async fn accounts(
        &self,
        ctx: &Context<'_>,
        state: Option<AccountState>,
        access: Option<AccessStatus>,
        ou: Option<String>,
        #[graphql(default)] badges: Vec<String>,
        q: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<AccountPage> {
        let filters = ListingFilters {
            organization: Some(self.id.0.clone()),
            state,
            access,
            ou,
            badges,
            q,
        };
        page(ctx, filters, first, after, None).await
    }

    /// The roots and OUs that hold its listed accounts, each parent before its children,
    /// with how many accounts are nested below each, by state.
    async fn units(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<OrganizationalUnit>> {
        viewer(ctx)?;
        let units = app(ctx)?
            .organization_units(&org_id(self.id.clone())?)
            .await
            .map_err(gql)?;
        Ok(units.into_iter().map(OrganizationalUnit::from).collect())
    }
}
