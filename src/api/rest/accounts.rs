use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as CURSOR;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::api::cache::Answers;
use crate::api::input::{account_role, badge_key, badge_value, text_field, BadgeBody};
use crate::api::EventView;
use crate::app::{App, AppError};
use crate::domain::{AccountId, AccountState, Actor, OrgId};
use crate::projections::accounts::{AccountQuery, AccountView};

use super::auth::{Admin, Viewer};
use super::kept_answer;
use super::openapi::{AccountPage, AccountParams, ErrorBody, EventPage};
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

fn invalid(field: &str, message: impl std::fmt::Display) -> RestError {
    RestError::bad_request("invalid_query", format!("{field}: {message}"))
}

/// Parses the listing's query string: `organization`, `state`, `badge=key:value`
/// (repeatable, all must match), `q`, `limit` and `cursor`.
fn account_query(query_string: &str) -> Result<AccountQuery, RestError> {
    let mut query = AccountQuery {
        limit: DEFAULT_LIMIT,
        ..AccountQuery::default()
    };
    let mut seen = std::collections::HashSet::new();
    for (key, value) in form_urlencoded::parse(query_string.as_bytes()) {
        if key != "badge" && !seen.insert(key.clone()) {
            return Err(invalid(&key, "given more than once"));
        }
        let value = value.into_owned();
        match &*key {
            "organization" => {
                query.organization =
                    Some(OrgId::try_from(value).map_err(|e| invalid("organization", e))?)
            }
            "state" => {
                query.state = Some(
                    AccountState::parse(&value)
                        .ok_or_else(|| invalid("state", format!("unknown state {value:?}")))?,
                )
            }
            "badge" => {
                let (k, v) = value.split_once(':').ok_or_else(|| {
                    invalid("badge", format!("expected key:value, got {value:?}"))
                })?;
                query.badges.push((k.to_owned(), v.to_owned()));
            }
            "q" => query.text = Some(value).filter(|q| !q.is_empty()),
            "limit" => {
                let limit: i64 = value
                    .parse()
                    .map_err(|_| invalid("limit", format!("expected a number, got {value:?}")))?;
                if !(1..=MAX_LIMIT).contains(&limit) {
                    return Err(invalid(
                        "limit",
                        format!("expected 1 to {MAX_LIMIT}, got {limit}"),
                    ));
                }
                query.limit = limit;
            }
            "cursor" => {
                query.after = Some(
                    CURSOR
                        .decode(&value)
                        .ok()
                        .and_then(|bytes| String::from_utf8(bytes).ok())
                        .and_then(|id| AccountId::try_from(id).ok())
                        .ok_or_else(|| invalid("cursor", "not a cursor this API gave out"))?,
                )
            }
            other => return Err(invalid(other, "unknown parameter")),
        }
    }
    Ok(query)
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
        let accounts = app.accounts(&query).await?;
        let next_cursor = (accounts.len() as i64 == query.limit)
            .then(|| {
                accounts
                    .last()
                    .map(|a| CURSOR.encode(a.account_id.as_str()))
            })
            .flatten();
        Ok(AccountPage {
            accounts,
            next_cursor,
        })
    })
    .await
}

fn account_id(raw: String) -> Result<AccountId, RestError> {
    AccountId::try_from(raw).map_err(|e| RestError::bad_request("invalid_path", e.to_string()))
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
        Ok(app.account(&id).await?)
    })
    .await
}

/// A standalone account's role, in the account itself.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RoleBody {
    role_arn: String,
    session_name: String,
    duration_seconds: i64,
}

/// A standalone account and its role, which must be in the account itself.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AddBody {
    account_id: String,
    name: String,
    role_arn: String,
    session_name: String,
    duration_seconds: i64,
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
    let body = body.into_inner();
    let id = AccountId::try_from(body.account_id).map_err(AppError::from)?;
    let name = text_field("name", body.name, 1, 64)?;
    let role = account_role(&id, body.role_arn, body.session_name, body.duration_seconds)?;
    let account = app
        .add_standalone_account(&Actor::token(&who.name), &id, name, role)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/accounts/{id}")))
        .json(account))
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
    let body = body.into_inner();
    let role = account_role(&id, body.role_arn, body.session_name, body.duration_seconds)?;
    let account = app
        .replace_account_credentials(&Actor::token(&who.name), &id, role)
        .await?;
    Ok(HttpResponse::Ok().json(account))
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
    Ok(HttpResponse::Ok().json(account))
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

/// An account's whole history, also after it left the listing.
#[utoipa::path(get, path = "/api/v1/accounts/{id}/events", tag = "accounts",
    params(("id" = String, Path, description = "The 12-digit account id")),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn history(
    _: Viewer,
    app: web::Data<App>,
    id: web::Path<String>,
) -> Result<HttpResponse, RestError> {
    let id = account_id(id.into_inner())?;
    let events: Vec<EventView> = app
        .account_history(&id)
        .await?
        .into_iter()
        .map(EventView::from)
        .collect();
    Ok(HttpResponse::Ok().json(json!({"events": events, "next_cursor": null})))
}
