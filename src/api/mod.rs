//! The edges: REST for automation, GraphQL for frontends. Both stay thin:
//! they parse and check input into domain values, call the application service, and shape
//! its answers.

pub mod cache;
pub mod graphql;
pub mod input;
pub mod rest;

use serde_json::Value;

use crate::store::StoredEvent;

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
