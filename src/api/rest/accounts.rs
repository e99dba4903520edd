use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::api::cache::Answers;
use crate::api::input::{
    badge_key, badge_value, cursor, cursor_after, event_page, invalid_query, AddBody, BadgeBody,
    ListingFilters, RoleBody,
};
use crate::api::EventView;
use crate::app::{App, AppError};
use crate::domain::account::AccessStatus;
use crate::domain::{AccountId, AccountState, Actor};
use crate::projections::accounts::AccountQuery;

use super::auth::{Admin, Viewer};
use super::events::PageParams;
use super::kept_answer;
use super::openapi::{AccountPage, AccountParams, ErrorBody, EventPage};
use super::views::AccountView;
use super::RestError;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/accounts").get(list).post(add))
        .service(
            web::resource("/accounts/{id}")
                .get(get)
                .patch(replace_credentials)
                .delete(delete),
        )
        .service(web::resource("/accounts/{id}/events").get(history))
        .service(web::resource("/accounts/{id}/badges").post(add_badge))
        .service(web::resource("/accounts/{id}/badges/{key}").delete(remove_badge));
}

/// Parses the listing's query string: `organization`, `state`, `access`, `ou`,
/// `badge=key:value` (repeatable, all must match), `q`, `limit` and `cursor`.
fn account_query(query_string: &str) -> Result<AccountQuery, AppError> {
    let mut filters = ListingFilters::default();
    let mut limit = DEFAULT_LIMIT;
    let mut after = None;
    let mut seen = std::collections::HashSet::new();
    for (key, value) in form_urlencoded::parse(query_string.as_bytes()) {
        if key != "badge" && !seen.insert(key.clone()) {
            return Err(invalid_query(&key, "given more than once"));
        }
        let value = value.into_owned();
        match &*key {
            "organization" => filters.organization = Some(value),
            "state" => {
                filters.state =
                    Some(AccountState::parse(&value).ok_or_else(|| {
                        invalid_query("state", format!("unknown state {value:?}"))
                    })?)
            }
            "access" => {
                filters.access = Some(AccessStatus::parse(&value).ok_or_else(|| {
                    invalid_query("access", format!("unknown access status {value:?}"))
                })?)
            }
            "ou" => filters.ou = Some(value),
            "badge" => filters.badges.push(value),
            "q" => filters.q = Some(value),
            "limit" => {
                limit = value.parse().map_err(|_| {
                    invalid_query("limit", format!("expected a number, got {value:?}"))
                })?;
                if !(1..=MAX_LIMIT).contains(&limit) {
                    return Err(invalid_query(
                        "limit",
                        format!("expected 1 to {MAX_LIMIT}, got {limit}"),
                    ));
                }
            }
            "cursor" => after = Some(cursor("cursor", &value)?),
            other => return Err(invalid_query(other, "unknown parameter")),
        }
    }
    filters.query(after, limit)
}

/// A page of the listing.
#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts", params(AccountParams),
    responses((status = 200, body = AccountPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(super) async fn list(
    _: Viewer,
    app: web::Data<App>,
    answers: web::Data<Answers>,
    req: HttpRequest,
) -> Result<HttpResponse, RestError> {
    kept_answer(&app, &answers, &req, async {
        let query = account_query(req.query_string())?;
        let accounts: Vec<AccountView> = app
            .accounts(&query)
            .await?
            .into_iter()
            .map(AccountView::from)
            .collect();
        let next_cursor = (accounts.len() as i64 == query.limit)
            .then(|| accounts.last().map(|a| cursor_after(&a.account_id)))
            .flatten();
        Ok(AccountPage {
            accounts,
            next_cursor,
        })
    })
    .await
}

fn account_id(raw: String) -> Result<AccountId, RestError> {
    AccountId::try_from(raw).map_err(|e| RestError::from(AppError::from(e)))
}

/// One account.
#[utoipa::path(get, path = "/api/v1/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "The 12-digit account id")),
    responses((status = 200, body = AccountView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn get(
    _: Viewer,
    app: web::Data<App>,
    answers: web::Data<Answers>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, RestError> {
    kept_answer(&app, &answers, &req, async {
        let id = account_id(id.into_inner())?;
        Ok(AccountView::from(app.account(&id).await?))
    })
    .await
}

/// Adds a standalone account, after assuming its role (R12).
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = AddBody,
    responses((status = 201, body = AccountView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn add(
    Admin(who): Admin,
    app: web::Data<App>,
    body: web::Json<AddBody>,
) -> Result<HttpResponse, RestError> {
    let (id, name, role) = body.into_inner().parse()?;
    let account = app
        .add_standalone_account(&Actor::token(&who.name), &id, name, role)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/accounts/{id}")))
        .json(AccountView::from(account)))
}

/// Replaces a standalone account's role; 409 for managed accounts (R12).
#[utoipa::path(patch, path = "/api/v1/accounts/{id}", tag = "accounts", request_body = RoleBody,
    params(("id" = String, Path, description = "The 12-digit account id")),
    responses((status = 200, body = AccountView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(super) async fn replace_credentials(
    Admin(who): Admin,
    app: web::Data<App>,
    id: web::Path<String>,
    body: web::Json<RoleBody>,
) -> Result<HttpResponse, RestError> {
    let id = account_id(id.into_inner())?;
    let role = body.into_inner().parse(&id)?;
    let account = app
        .replace_account_credentials(&Actor::token(&who.name), &id, role)
        .await?;
    Ok(HttpResponse::Ok().json(AccountView::from(account)))
}

/// Deletes a standalone account; 409 for managed accounts (R12).
#[utoipa::path(delete, path = "/api/v1/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "The 12-digit account id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub(super) async fn delete(
    Admin(who): Admin,
    app: web::Data<App>,
    id: web::Path<String>,
) -> Result<HttpResponse, RestError> {
    let id = account_id(id.into_inner())?;
    app.delete_account(&Actor::token(&who.name), &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Adds or changes a manual badge.
#[utoipa::path(post, path = "/api/v1/accounts/{id}/badges", tag = "accounts", request_body = BadgeBody,
    params(("id" = String, Path, description = "The 12-digit account id")),
    responses((status = 200, body = AccountView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub(super) async fn add_badge(
    Admin(who): Admin,
    app: web::Data<App>,
    id: web::Path<String>,
    body: web::Json<BadgeBody>,
) -> Result<HttpResponse, RestError> {
    let id = account_id(id.into_inner())?;
    let body = body.into_inner();
    let key = badge_key(body.key)?;
    let value = badge_value(body.value)?;
    let account = app
        .add_badge(&Actor::token(&who.name), &id, key, value)
        .await?;
    Ok(HttpResponse::Ok().json(AccountView::from(account)))
}

/// Removes a manual badge.
#[utoipa::path(delete, path = "/api/v1/accounts/{id}/badges/{key}", tag = "accounts",
    params(("id" = String, Path, description = "The 12-digit account id"), ("key" = String, Path, description = "The badge's key")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub(super) async fn remove_badge(
    Admin(who): Admin,
    app: web::Data<App>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, RestError> {
    let (id, key) = path.into_inner();
    let id = account_id(id)?;
    let key = badge_key(key)?;
    app.remove_badge(&Actor::token(&who.name), &id, key).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// An account's history, oldest first, also after it left the listing, a page at a time:
/// `next_cursor` continues it, and is null on its last page.
#[utoipa::path(get, path = "/api/v1/accounts/{id}/events", tag = "accounts",
    params(("id" = String, Path, description = "The 12-digit account id"), PageParams),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn history(
    _: Viewer,
    app: web::Data<App>,
    id: web::Path<String>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, RestError> {
    let id = account_id(id.into_inner())?;
    let (after, limit) = event_page(params.after.as_deref(), params.limit)?;
    let (events, more) = app.account_history(&id, after, limit).await?;
    let next = events
        .last()
        .filter(|_| more)
        .map(|last| last.sequence.to_string());
    let events: Vec<EventView> = events.into_iter().map(EventView::from).collect();
    Ok(HttpResponse::Ok().json(json!({"events": events, "next_cursor": next})))
}
