//! The OpenAPI 3.1 document of the REST API, generated from the handlers and types above and
//! checked in as `schema/openapi.json` (a test fails when they drift apart).

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use super::views::{AccountView, BadgeView, OrganizationView};
use super::{accounts, events, health, organizations, tokens};
use crate::app::HarvestStart;
use crate::domain::account::{Access, AccessStatus};
use crate::domain::organization::Filters;
use crate::domain::{AccountState, OrgUnit};
use crate::store::harvest_runs::LastHarvest;

/// The error envelope every 4xx and 5xx answer carries.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable machine-readable code, e.g. `invalid_field` or `assume_role_failed`.
    code: String,
    /// What went wrong, for people.
    message: String,
    /// AWS's error code, when AWS refused a step of checking a role.
    aws_error_code: Option<String>,
    /// The actions a policy simulation found denied.
    denied_actions: Option<Vec<String>>,
}

/// The installation's external ID.
#[derive(Serialize, ToSchema)]
pub struct ExternalIdBody {
    external_id: String,
}

/// Whether a harvest started.
#[derive(Serialize, ToSchema)]
pub struct HarvestStarted {
    status: HarvestStart,
}

/// Every organization.
#[derive(Serialize, ToSchema)]
pub struct OrganizationList {
    organizations: Vec<OrganizationView>,
}

/// A page of accounts.
#[derive(Serialize, ToSchema)]
pub struct AccountPage {
    pub(super) accounts: Vec<AccountView>,
    /// The cursor of the next page; null on the last one.
    pub(super) next_cursor: Option<String>,
}

/// A page of events.
#[derive(Serialize, ToSchema)]
pub struct EventPage {
    events: Vec<crate::api::EventView>,
    /// Where to continue from.
    next_cursor: Option<String>,
}

/// Every token.
#[derive(Serialize, ToSchema)]
pub struct TokenList {
    tokens: Vec<crate::api::TokenView>,
}

/// A token just made: its secret, shown this once, and what is listed of it.
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    /// The bearer token. Only its hash is kept.
    token: String,
    info: crate::api::TokenView,
}

/// The listing's filters; `badge` may be repeated and every one must match.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Describes the query string, which the handler parses by hand.
pub struct AccountParams {
    /// Only accounts of this organization.
    organization: Option<String>,
    /// Only accounts in this state.
    state: Option<AccountState>,
    /// Only accounts whose role could (`ok`) or could not (`assume_role_failed`) be assumed,
    /// or was not tried (`not_checked`).
    access: Option<AccessStatus>,
    /// Only accounts nested anywhere below this root or OU id.
    ou: Option<String>,
    /// `key:value`; repeat it to require several badges.
    badge: Option<Vec<String>>,
    /// A substring of the name, id or email, ignoring case.
    q: Option<String>,
    /// At most this many, 1 to 1000 (100 when left out).
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The REST API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "orgsync", description = "AWS Organizations inventory: REST API"),
    paths(
        health::healthz,
        health::readyz,
        organizations::external_id,
        organizations::register,
        organizations::list,
        organizations::get,
        organizations::update,
        organizations::remove,
        organizations::harvest,
        accounts::list,
        accounts::add,
        accounts::get,
        accounts::replace_credentials,
        accounts::delete,
        accounts::history,
        accounts::add_badge,
        accounts::remove_badge,
        events::feed,
        events::template,
        tokens::list,
        tokens::create,
        tokens::revoke,
    ),
    components(schemas(
        Access,
        AccessStatus,
        AccountState,
        BadgeView,
        Filters,
        LastHarvest,
        OrgUnit,
    )),
    modifiers(&BearerToken),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails when the checked-in document differs from the code; `UPDATE_SCHEMAS=1` rewrites it.
    #[test]
    fn openapi_json_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/openapi.json");
        let generated = ApiDoc::openapi()
            .to_pretty_json()
            .expect("the document serializes")
            + "\n";
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            std::fs::write(path, &generated).expect("write schema/openapi.json");
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "schema/openapi.json differs from the code: run `UPDATE_SCHEMAS=1 cargo test openapi` and commit it"
        );
    }
}
