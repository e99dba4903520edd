use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::app::{App, AppError, FiltersPatch, OrganizationChange, Registration};
use crate::domain::organization::{Credentials, Filters, MemberRole, OrgRole};
use crate::domain::{Actor, OrgId, ParentId};
use crate::projections::organizations::OrganizationView;

use super::accounts::text_field;
use super::auth::{Admin, Viewer};
use super::openapi::{ErrorBody, ExternalIdBody, HarvestStarted, OrganizationList};
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

/// A registration.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RegisterBody {
    nickname: String,
    org_role: OrgRoleBody,
    member_role: MemberRoleBody,
    #[serde(default)]
    filters: FiltersBody,
}

/// The role in the management account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct OrgRoleBody {
    role_arn: String,
    session_name: String,
    duration_seconds: i64,
}

/// The role in every member account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct MemberRoleBody {
    role_name: String,
    session_name: String,
    duration_seconds: i64,
}

/// Scope and badge filters; keys left out take their defaults.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FiltersBody {
    #[serde(default)]
    exclude_name_prefixes: Vec<String>,
    #[serde(default)]
    limit_scope_ou_ids: Vec<String>,
    #[serde(default)]
    auto_remove_suspended: bool,
    #[serde(default = "yes")]
    auto_badge: bool,
}

fn yes() -> bool {
    true
}

impl Default for FiltersBody {
    fn default() -> Self {
        Self {
            exclude_name_prefixes: Vec::new(),
            limit_scope_ou_ids: Vec::new(),
            auto_remove_suspended: false,
            auto_badge: true,
        }
    }
}

fn prefixes(prefixes: Vec<String>) -> Result<Vec<String>, AppError> {
    if prefixes.iter().any(String::is_empty) {
        return Err(AppError::Invalid {
            code: "invalid_field",
            message: "exclude_name_prefixes: an empty prefix would exclude every account".into(),
        });
    }
    Ok(prefixes)
}

fn scope(ids: Vec<String>) -> Result<Vec<ParentId>, AppError> {
    Ok(ids
        .into_iter()
        .map(ParentId::try_from)
        .collect::<Result<_, _>>()?)
}

impl TryFrom<FiltersBody> for Filters {
    type Error = AppError;
    fn try_from(body: FiltersBody) -> Result<Self, AppError> {
        Ok(Filters {
            exclude_name_prefixes: prefixes(body.exclude_name_prefixes)?,
            limit_scope_ou_ids: scope(body.limit_scope_ou_ids)?,
            auto_remove_suspended: body.auto_remove_suspended,
            auto_badge: body.auto_badge,
        })
    }
}

impl TryFrom<RegisterBody> for Registration {
    type Error = RestError;
    fn try_from(body: RegisterBody) -> Result<Self, RestError> {
        Ok(Registration {
            nickname: text_field("nickname", body.nickname, 1, 64)?,
            credentials: role_credentials(body.org_role, body.member_role)?,
            filters: body.filters.try_into()?,
        })
    }
}

fn role_credentials(org: OrgRoleBody, member: MemberRoleBody) -> Result<Credentials, AppError> {
    Ok(Credentials {
        org_role: OrgRole {
            role_arn: org.role_arn.try_into()?,
            session_name: org.session_name.try_into()?,
            duration_seconds: org.duration_seconds.try_into()?,
        },
        member_role: MemberRole {
            role_name: member.role_name.try_into()?,
            session_name: member.session_name.try_into()?,
            duration_seconds: member.duration_seconds.try_into()?,
        },
    })
}

fn org_id(raw: String) -> Result<OrgId, RestError> {
    OrgId::try_from(raw).map_err(|e| RestError::bad_request("invalid_path", e.to_string()))
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
    let registration = Registration::try_from(body.into_inner())?;
    let org = app
        .register_organization(&Actor::token(&principal.name), registration)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/organizations/{}", org.id)))
        .json(org))
}

/// Every registered organization.
#[utoipa::path(get, path = "/api/v1/organizations", tag = "organizations",
    responses((status = 200, body = OrganizationList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(super) async fn list(_: Viewer, app: web::Data<App>) -> Result<HttpResponse, RestError> {
    Ok(HttpResponse::Ok().json(json!({"organizations": app.organizations().await?})))
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
    Ok(HttpResponse::Ok().json(app.organization(&id).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct HarvestParams {
    /// Wait for a harvest that starts after the request to finish, and answer 200.
    #[serde(default)]
    wait: bool,
}

/// 202 and the harvest runs in the background; with `?wait=true`, 200 once a harvest that
/// started after the request has finished, with the organization as it left it.
/// Starts a harvest now (202), or runs one and waits for it (`wait=true`, 200).
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
        return Ok(HttpResponse::Ok().json(app.harvest_now(&id).await?));
    }
    let status = app.request_harvest(&id).await?;
    Ok(HttpResponse::Accepted().json(json!({"status": status})))
}

/// Every field optional: PATCH takes a full credential set or none (R13).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PartialRole {
    role_arn: Option<String>,
    role_name: Option<String>,
    session_name: Option<String>,
    duration_seconds: Option<i64>,
}

/// Filters to change; keys left out keep their value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FiltersPatchBody {
    exclude_name_prefixes: Option<Vec<String>>,
    limit_scope_ou_ids: Option<Vec<String>>,
    auto_remove_suspended: Option<bool>,
    auto_badge: Option<bool>,
}

/// An edit: nickname, filters, or both roles with every field.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateBody {
    nickname: Option<String>,
    filters: Option<FiltersPatchBody>,
    org_role: Option<PartialRole>,
    member_role: Option<PartialRole>,
}

/// Both roles with every field, or neither; anything between is a 400 naming what is missing.
fn credentials(
    org: Option<PartialRole>,
    member: Option<PartialRole>,
) -> Result<Option<Credentials>, RestError> {
    if org.is_none() && member.is_none() {
        return Ok(None);
    }
    let (org, member) = (org.unwrap_or_default(), member.unwrap_or_default());
    let mut missing = Vec::new();
    for (name, present) in [
        ("org_role.role_arn", org.role_arn.is_some()),
        ("org_role.session_name", org.session_name.is_some()),
        ("org_role.duration_seconds", org.duration_seconds.is_some()),
        ("member_role.role_name", member.role_name.is_some()),
        ("member_role.session_name", member.session_name.is_some()),
        (
            "member_role.duration_seconds",
            member.duration_seconds.is_some(),
        ),
    ] {
        if !present {
            missing.push(name);
        }
    }
    if org.role_name.is_some() || member.role_arn.is_some() {
        return Err(RestError::bad_request(
            "invalid_field",
            "org_role takes role_arn and member_role takes role_name",
        ));
    }
    if !missing.is_empty() {
        return Err(RestError::bad_request(
            "incomplete_credentials",
            format!(
                "credentials are replaced whole, every field again; missing: {}",
                missing.join(", ")
            ),
        ));
    }
    let body = RegisterBody {
        nickname: String::new(),
        org_role: OrgRoleBody {
            role_arn: org.role_arn.unwrap_or_default(),
            session_name: org.session_name.unwrap_or_default(),
            duration_seconds: org.duration_seconds.unwrap_or_default(),
        },
        member_role: MemberRoleBody {
            role_name: member.role_name.unwrap_or_default(),
            session_name: member.session_name.unwrap_or_default(),
            duration_seconds: member.duration_seconds.unwrap_or_default(),
        },
        filters: FiltersBody::default(),
    };
    Ok(Some(role_credentials(body.org_role, body.member_role)?))
}

impl TryFrom<UpdateBody> for OrganizationChange {
    type Error = RestError;
    fn try_from(body: UpdateBody) -> Result<Self, RestError> {
        let filters = body
            .filters
            .map(|f| -> Result<FiltersPatch, AppError> {
                Ok(FiltersPatch {
                    exclude_name_prefixes: f.exclude_name_prefixes.map(prefixes).transpose()?,
                    limit_scope_ou_ids: f.limit_scope_ou_ids.map(scope).transpose()?,
                    auto_remove_suspended: f.auto_remove_suspended,
                    auto_badge: f.auto_badge,
                })
            })
            .transpose()?;
        Ok(OrganizationChange {
            nickname: body
                .nickname
                .map(|n| text_field("nickname", n, 1, 64))
                .transpose()?,
            filters,
            credentials: credentials(body.org_role, body.member_role)?,
        })
    }
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
    let change = OrganizationChange::try_from(body.into_inner())?;
    let org = app
        .update_organization(&Actor::token(&principal.name), &id, change)
        .await?;
    Ok(HttpResponse::Ok().json(org))
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
