use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use crate::api::input::{RegisterBody, UpdateBody};
use crate::app::{App, AppError, OrganizationChange, Registration};
use crate::domain::{Actor, OrgId};

use super::auth::{Admin, Viewer};
use super::openapi::{ErrorBody, ExternalIdBody, HarvestStarted, OrganizationList};
use super::views::OrganizationView;
use super::RestError;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/external-id").get(external_id))
        .service(web::resource("/organizations").get(list).post(register))
        .service(
            web::resource("/organizations/{id}")
                .get(get)
                .patch(update)
                .delete(remove),
        )
        .service(web::resource("/organizations/{id}/harvest").post(harvest));
}

fn org_id(raw: String) -> Result<OrgId, RestError> {
    OrgId::try_from(raw).map_err(|e| RestError::from(AppError::from(e)))
}

/// The installation's external ID (R1).
#[utoipa::path(get, path = "/api/v1/external-id", tag = "organizations",
    responses((status = 200, body = ExternalIdBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn external_id(_: Admin, app: web::Data<App>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"external_id": app.external_id().expose()}))
}

/// Registers an organization after checking its role (R3); a harvest starts.
#[utoipa::path(post, path = "/api/v1/organizations", tag = "organizations", request_body = RegisterBody,
    responses((status = 201, body = OrganizationView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn register(
    Admin(principal): Admin,
    app: web::Data<App>,
    body: web::Json<RegisterBody>,
) -> Result<HttpResponse, RestError> {
    let registration = Registration::try_from(body.into_inner()).map_err(RestError::from)?;
    let org = app
        .register_organization(&Actor::token(&principal.name), registration)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/organizations/{}", org.id)))
        .json(OrganizationView::from(org)))
}

/// Every registered organization.
#[utoipa::path(get, path = "/api/v1/organizations", tag = "organizations",
    responses((status = 200, body = OrganizationList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(super) async fn list(_: Viewer, app: web::Data<App>) -> Result<HttpResponse, RestError> {
    let organizations: Vec<OrganizationView> = app
        .organizations()
        .await?
        .into_iter()
        .map(OrganizationView::from)
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "organizations": organizations })))
}

/// One organization.
#[utoipa::path(get, path = "/api/v1/organizations/{id}", tag = "organizations",
    params(("id" = String, Path, description = "The AWS organization id")),
    responses((status = 200, body = OrganizationView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn get(
    _: Viewer,
    app: web::Data<App>,
    id: web::Path<String>,
) -> Result<HttpResponse, RestError> {
    let id = org_id(id.into_inner())?;
    Ok(HttpResponse::Ok().json(OrganizationView::from(app.organization(&id).await?)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct HarvestParams {
    /// Wait for a harvest that starts after the request to finish, and answer 200.
    #[serde(default)]
    wait: bool,
}

/// Starts a harvest now (202), or runs one and waits until a harvest that started after the
/// request has finished (`wait=true`, 200 with the organization as it left it).
#[utoipa::path(post, path = "/api/v1/organizations/{id}/harvest", tag = "organizations",
    params(("id" = String, Path, description = "The AWS organization id"), HarvestParams),
    responses((status = 202, body = HarvestStarted), (status = 200, body = OrganizationView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn harvest(
    _: Admin,
    app: web::Data<App>,
    id: web::Path<String>,
    params: web::Query<HarvestParams>,
) -> Result<HttpResponse, RestError> {
    let id = org_id(id.into_inner())?;
    if params.wait {
        let org = app.harvest_now(&id).await?;
        return Ok(HttpResponse::Ok().json(OrganizationView::from(org)));
    }
    let status = app.request_harvest(&id).await?;
    Ok(HttpResponse::Accepted().json(json!({"status": status})))
}

/// Edits an organization (R13).
#[utoipa::path(patch, path = "/api/v1/organizations/{id}", tag = "organizations", request_body = UpdateBody,
    params(("id" = String, Path, description = "The AWS organization id")),
    responses((status = 200, body = OrganizationView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn update(
    Admin(principal): Admin,
    app: web::Data<App>,
    id: web::Path<String>,
    body: web::Json<UpdateBody>,
) -> Result<HttpResponse, RestError> {
    let id = org_id(id.into_inner())?;
    let change = OrganizationChange::try_from(body.into_inner()).map_err(RestError::from)?;
    let org = app
        .update_organization(&Actor::token(&principal.name), &id, change)
        .await?;
    Ok(HttpResponse::Ok().json(OrganizationView::from(org)))
}

/// Removes an organization and its accounts from the listing.
#[utoipa::path(delete, path = "/api/v1/organizations/{id}", tag = "organizations",
    params(("id" = String, Path, description = "The AWS organization id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn remove(
    Admin(principal): Admin,
    app: web::Data<App>,
    id: web::Path<String>,
) -> Result<HttpResponse, RestError> {
    let id = org_id(id.into_inner())?;
    app.remove_organization(&Actor::token(&principal.name), &id)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
