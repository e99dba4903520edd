use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::app::{App, AppError, HarvestStart, Registration};
use crate::domain::organization::{Credentials, Filters, MemberRole, OrgRole};
use crate::domain::{Actor, OrgId};

use super::auth::{Admin, Viewer};
use super::RestError;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/external-id").get(external_id))
        .service(web::resource("/organizations").get(list).post(register))
        .service(web::resource("/organizations/{id}").get(get))
        .service(web::resource("/organizations/{id}/harvest").post(harvest));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    nickname: String,
    org_role: OrgRoleBody,
    member_role: MemberRoleBody,
    #[serde(default)]
    filters: FiltersBody,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgRoleBody {
    role_arn: String,
    session_name: String,
    duration_seconds: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberRoleBody {
    role_name: String,
    session_name: String,
    duration_seconds: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FiltersBody {
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

fn nickname(raw: String) -> Result<String, AppError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 64 || trimmed.chars().any(char::is_control) {
        return Err(AppError::Invalid {
            code: "invalid_field",
            message: format!("nickname: expected 1 to 64 printable characters, got {raw:?}"),
        });
    }
    Ok(trimmed.to_owned())
}

impl TryFrom<FiltersBody> for Filters {
    type Error = AppError;
    fn try_from(body: FiltersBody) -> Result<Self, AppError> {
        if body.exclude_name_prefixes.iter().any(String::is_empty) {
            return Err(AppError::Invalid {
                code: "invalid_field",
                message: "exclude_name_prefixes: an empty prefix would exclude every account"
                    .into(),
            });
        }
        Ok(Filters {
            exclude_name_prefixes: body.exclude_name_prefixes,
            limit_scope_ou_ids: body
                .limit_scope_ou_ids
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            auto_remove_suspended: body.auto_remove_suspended,
            auto_badge: body.auto_badge,
        })
    }
}

impl TryFrom<RegisterBody> for Registration {
    type Error = AppError;
    fn try_from(body: RegisterBody) -> Result<Self, AppError> {
        Ok(Registration {
            nickname: nickname(body.nickname)?,
            credentials: Credentials {
                org_role: OrgRole {
                    role_arn: body.org_role.role_arn.try_into()?,
                    session_name: body.org_role.session_name.try_into()?,
                    duration_seconds: body.org_role.duration_seconds.try_into()?,
                },
                member_role: MemberRole {
                    role_name: body.member_role.role_name.try_into()?,
                    session_name: body.member_role.session_name.try_into()?,
                    duration_seconds: body.member_role.duration_seconds.try_into()?,
                },
            },
            filters: body.filters.try_into()?,
        })
    }
}

fn org_id(raw: String) -> Result<OrgId, RestError> {
    OrgId::try_from(raw).map_err(|e| RestError::bad_request("invalid_path", e.to_string()))
}

async fn external_id(_: Admin, app: web::Data<App>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"external_id": app.external_id().expose()}))
}

async fn register(
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

async fn list(_: Viewer, app: web::Data<App>) -> Result<HttpResponse, RestError> {
    Ok(HttpResponse::Ok().json(json!({"organizations": app.organizations().await?})))
}

async fn get(
    _: Viewer,
    app: web::Data<App>,
    id: web::Path<String>,
) -> Result<HttpResponse, RestError> {
    let id = org_id(id.into_inner())?;
    Ok(HttpResponse::Ok().json(app.organization(&id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HarvestParams {
    #[serde(default)]
    wait: bool,
}

/// 202 and the harvest runs in the background; with `?wait=true`, 200 once a harvest that
/// started after the request has finished, with the organization as it left it.
async fn harvest(
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
    let status = match status {
        HarvestStart::Started => "started",
        HarvestStart::AlreadyRunning => "already_running",
    };
    Ok(HttpResponse::Accepted().json(json!({"status": status})))
}
