//! API tokens, for admins: list, create (the secret shown once) and revoke.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::api::input::token_lifetime;
use crate::api::TokenView;
use crate::app::{App, Role};

use super::auth::Admin;
use super::openapi::{CreatedToken, ErrorBody, TokenList};
use super::RestError;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/tokens").get(list).post(create))
        .service(web::resource("/tokens/{name}").delete(revoke));
}

/// A token to make.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TokenBody {
    /// A unique name, 1 to 64 printable ASCII characters; never reused, even once revoked.
    name: String,
    /// What it may do.
    role: Role,
    /// How long it stays valid, in seconds (at most ten years); forever when left out.
    expires_in_seconds: Option<i64>,
}

/// Every token, revoked and expired ones too; never a secret.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = TokenList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn list(_: Admin, app: web::Data<App>) -> Result<HttpResponse, RestError> {
    let tokens: Vec<TokenView> = app
        .tokens()
        .await?
        .into_iter()
        .map(TokenView::from)
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "tokens": tokens })))
}

/// Makes a token and shows its secret, this once. A new admin token removes the first admin
/// token's file from the state directory.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = TokenBody,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub(super) async fn create(
    _: Admin,
    app: web::Data<App>,
    body: web::Json<TokenBody>,
) -> Result<HttpResponse, RestError> {
    let body = body.into_inner();
    let lifetime = token_lifetime(body.expires_in_seconds)?;
    let (info, secret) = app.create_token(body.role, &body.name, lifetime).await?;
    Ok(HttpResponse::Created().json(json!({
        "token": secret.expose(),
        "info": TokenView::from(info),
    })))
}

/// Revokes a token for good: refused at once here, by other instances within a second.
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "tokens",
    params(("name" = String, Path, description = "The token's name")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(super) async fn revoke(
    _: Admin,
    app: web::Data<App>,
    name: web::Path<String>,
) -> Result<HttpResponse, RestError> {
    app.revoke_token(&name.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
