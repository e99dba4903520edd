//! The edges: REST for automation, GraphQL for frontends. Both stay thin:
//! they parse and check input into domain values, call the application service, and shape
//! its answers.

pub mod cache;
pub mod console;
pub mod graphql;
pub mod input;
pub mod rest;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::app::{Role, TokenInfo};
use crate::store::StoredEvent;

/// An event of the log as REST and GraphQL show it, sealed fields left out.
#[derive(Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
#[graphql(name = "Event")]
pub struct EventView {
    /// Its position in the log: the feed's cursor.
    sequence: i64,
    /// Its type, e.g. `AccountDiscovered`.
    #[serde(rename = "type")]
    #[graphql(name = "type")]
    event_type: String,
    /// `Organization` or `Account`.
    aggregate_type: String,
    /// The organization or account id.
    aggregate_id: String,
    /// When it was appended.
    #[schema(value_type = String, format = DateTime)]
    at: DateTime<Utc>,
    /// Who caused it: `token:<name>`, `scheduler`, `harvest:<org id>`, or `event:<name>` for
    /// an AWS call that Organizations' events reported (R16).
    actor: String,
    /// For an AWS call, CloudTrail's `eventID` of it.
    cloudtrail_event_id: Option<String>,
    /// For an AWS call, the ARN of who made it.
    caller_arn: Option<String>,
    /// Its fields, sealed ones left out.
    #[schema(value_type = Object)]
    data: async_graphql::Json<Value>,
}

impl From<StoredEvent> for EventView {
    fn from(event: StoredEvent) -> Self {
        let data = event_data(&event);
        Self {
            sequence: event.seq,
            event_type: event.event_type,
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            at: event.metadata.at,
            actor: event.metadata.actor,
            cloudtrail_event_id: event.metadata.cloudtrail_event_id,
            caller_arn: event.metadata.caller_arn,
            data: async_graphql::Json(data),
        }
    }
}

/// An event's fields as the edges show them: serde's externally tagged payload unwrapped, and
/// sealed fields left out.
pub fn event_data(event: &StoredEvent) -> Value {
    let mut data = match &event.payload {
        Value::Object(outer) => outer.get(&event.event_type).cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    if let Value::Object(fields) = &mut data {
        fields.remove("credentials");
    }
    data
}

/// An API token as REST and GraphQL list it: everything but its secret.
#[derive(Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
#[graphql(name = "Token")]
pub struct TokenView {
    /// Its unique name; events it causes carry it as `token:<name>`.
    name: String,
    /// What it may do.
    role: Role,
    /// When it was made.
    #[schema(value_type = String, format = DateTime)]
    created_at: DateTime<Utc>,
    /// When it was last used, to the minute; null when never.
    #[schema(value_type = Option<String>, format = DateTime)]
    last_used_at: Option<DateTime<Utc>>,
    /// When it stops being valid; null for never.
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<DateTime<Utc>>,
    /// When it was revoked; null while it is not.
    #[schema(value_type = Option<String>, format = DateTime)]
    revoked_at: Option<DateTime<Utc>>,
    /// Whether it is accepted now: neither revoked nor expired.
    valid: bool,
}

impl From<TokenInfo> for TokenView {
    fn from(token: TokenInfo) -> Self {
        Self {
            valid: token.is_valid_at(Utc::now()),
            name: token.name,
            role: token.role,
            created_at: token.created_at,
            last_used_at: token.last_used_at,
            expires_at: token.expires_at,
            revoked_at: token.revoked_at,
        }
    }
}
