//! The edges: REST for automation, GraphQL for frontends. Both stay thin:
//! they parse and check input into domain values, call the application service, and shape
//! its answers.

pub mod cache;
pub mod graphql;
pub mod input;
pub mod rest;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

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
    /// Who caused it: `token:<name>`, `scheduler` or `harvest:<org id>`.
    actor: String,
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
