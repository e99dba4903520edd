use actix_web::{web, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as CURSOR;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::App;
use crate::domain::{AccountId, AccountState, OrgId};
use crate::projections::accounts::AccountQuery;
use crate::store::StoredEvent;

use super::auth::Viewer;
use super::RestError;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/accounts").get(list))
        .service(web::resource("/accounts/{id}").get(get))
        .service(web::resource("/accounts/{id}/events").get(history));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    organization: Option<String>,
    state: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

fn invalid(field: &str, message: impl std::fmt::Display) -> RestError {
    RestError::bad_request("invalid_query", format!("{field}: {message}"))
}

impl TryFrom<ListParams> for AccountQuery {
    type Error = RestError;
    fn try_from(p: ListParams) -> Result<Self, RestError> {
        let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid(
                "limit",
                format!("expected 1 to {MAX_LIMIT}, got {limit}"),
            ));
        }
        let state = p
            .state
            .map(|s| {
                AccountState::parse(&s)
                    .ok_or_else(|| invalid("state", format!("unknown state {s:?}")))
            })
            .transpose()?;
        let organization = p
            .organization
            .map(OrgId::try_from)
            .transpose()
            .map_err(|e| invalid("organization", e))?;
        let after = p
            .cursor
            .map(|c| {
                CURSOR
                    .decode(&c)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .and_then(|id| AccountId::try_from(id).ok())
                    .ok_or_else(|| invalid("cursor", "not a cursor this API gave out"))
            })
            .transpose()?;
        Ok(AccountQuery {
            organization,
            state,
            after,
            limit,
        })
    }
}

async fn list(
    _: Viewer,
    app: web::Data<App>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, RestError> {
    let query = AccountQuery::try_from(params.into_inner())?;
    let accounts = app.accounts(&query).await?;
    let next_cursor = (accounts.len() as i64 == query.limit)
        .then(|| {
            accounts
                .last()
                .map(|a| CURSOR.encode(a.account_id.as_str()))
        })
        .flatten();
    Ok(HttpResponse::Ok().json(json!({"accounts": accounts, "next_cursor": next_cursor})))
}

fn account_id(raw: String) -> Result<AccountId, RestError> {
    AccountId::try_from(raw).map_err(|e| RestError::bad_request("invalid_path", e.to_string()))
}

async fn get(
    _: Viewer,
    app: web::Data<App>,
    id: web::Path<String>,
) -> Result<HttpResponse, RestError> {
    let id = account_id(id.into_inner())?;
    Ok(HttpResponse::Ok().json(app.account(&id).await?))
}

/// An event as the API shows it, sealed fields left out.
#[derive(Serialize)]
pub(super) struct EventView {
    sequence: i64,
    #[serde(rename = "type")]
    event_type: String,
    at: chrono::DateTime<chrono::Utc>,
    actor: String,
    data: Value,
}

impl From<StoredEvent> for EventView {
    fn from(event: StoredEvent) -> Self {
        // Payloads are serde's externally tagged enums: {"EventType": {…fields…}}.
        let mut data = match event.payload {
            Value::Object(mut outer) => outer.remove(&event.event_type).unwrap_or(Value::Null),
            other => other,
        };
        if let Value::Object(fields) = &mut data {
            fields.remove("credentials");
        }
        Self {
            sequence: event.seq,
            event_type: event.event_type,
            at: event.metadata.at,
            actor: event.metadata.actor,
            data,
        }
    }
}

async fn history(
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
