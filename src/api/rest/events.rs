//! The change feed (I5) and the role templates.

use actix_web::{web, HttpResponse};
use serde_json::json;
use utoipa::IntoParams;

use crate::api::input::event_page;
use crate::api::EventView;
use crate::app::templates::Template;
use crate::app::App;

use super::auth::{Admin, Viewer};
use super::openapi::{ErrorBody, EventPage};
use super::RestError;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/events").get(feed))
        .service(web::resource("/templates/{name}").get(template));
}

/// Where a page of events starts and how long it is, for the change feed and histories.
#[derive(serde::Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct PageParams {
    /// The `next_cursor` of the previous page; from the start when left out.
    pub(super) after: Option<String>,
    /// At most this many events, 1 to 1000 (100 when left out).
    pub(super) limit: Option<i64>,
}

/// Events after a cursor, oldest first; `next_cursor` is where to continue from, also when
/// nothing new came, so a client polls with it forever and sees each event exactly once.
/// The change feed: every event after a cursor, in order, each exactly once (I5).
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(PageParams),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(super) async fn feed(
    _: Viewer,
    app: web::Data<App>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, RestError> {
    let (after, limit) = event_page(params.after.as_deref(), params.limit)?;
    let events: Vec<EventView> = app
        .events_after(after, limit)
        .await?
        .into_iter()
        .map(EventView::from)
        .collect();
    let next = events.last().map_or(after, |e| e.sequence);
    Ok(HttpResponse::Ok().json(json!({"events": events, "next_cursor": next.to_string()})))
}

/// A CloudFormation template for the org role or the member role.
#[utoipa::path(get, path = "/api/v1/templates/{name}", tag = "organizations",
    params(("name" = String, Path, description = "`org-role.yaml` or `member-role.yaml`")),
    responses((status = 200, content_type = "application/yaml", body = String), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn template(
    _: Admin,
    app: web::Data<App>,
    name: web::Path<String>,
) -> Result<HttpResponse, RestError> {
    let name = name.into_inner();
    let template = name
        .strip_suffix(".yaml")
        .and_then(Template::from_name)
        .ok_or_else(|| crate::app::AppError::NotFound(format!("template {name}")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/yaml")
        .body(app.role_template(template)))
}
