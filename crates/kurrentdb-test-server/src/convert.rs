//! Conversions between the wire messages and the store's types.

use std::collections::HashMap;

use prost::bytes::Bytes;
use tonic::Status;
use uuid::Uuid;

use crate::errors;
use crate::proto::event_store::client::streams::read_req::options::uuid_option;
use crate::proto::event_store::client::streams::read_resp::{read_event, ReadEvent};
use crate::proto::event_store::client::{self as shared, uuid as wire_uuid};
use crate::store::{Proposed, Record};

const TYPE: &str = "type";
const CONTENT_TYPE: &str = "content-type";
const CREATED: &str = "created";
const APPLICATION_JSON: &str = "application/json";
const APPLICATION_OCTET_STREAM: &str = "application/octet-stream";

/// The wire form of a stream name.
pub(crate) fn stream_identifier(stream: &str) -> shared::StreamIdentifier {
    shared::StreamIdentifier {
        stream_name: Bytes::copy_from_slice(stream.as_bytes()),
    }
}

/// The stream a request names; names are UTF-8 on the server.
pub(crate) fn stream_name(identifier: Option<&shared::StreamIdentifier>) -> Result<String, Status> {
    let identifier =
        identifier.ok_or_else(|| Status::invalid_argument("stream_identifier is required"))?;
    let name = std::str::from_utf8(&identifier.stream_name)
        .map_err(|_| Status::invalid_argument("the stream name is not UTF-8"))?;
    if name.is_empty() {
        return Err(Status::invalid_argument("the stream name is empty"));
    }
    Ok(name.to_owned())
}

/// A UUID in either of its wire forms.
pub(crate) fn uuid(wire: Option<&shared::Uuid>) -> Result<Uuid, Status> {
    match wire.and_then(|u| u.value.as_ref()) {
        Some(wire_uuid::Value::Structured(s)) => Ok(Uuid::from_u128(
            ((s.most_significant_bits as u64 as u128) << 64)
                | s.least_significant_bits as u64 as u128,
        )),
        Some(wire_uuid::Value::String(s)) => s
            .parse()
            .map_err(|_| Status::invalid_argument(format!("'{s}' is not a UUID"))),
        None => Err(Status::invalid_argument("the event id is required")),
    }
}

/// `id` in the form the reader asked for.
fn wire_uuid(id: Uuid, form: Option<&uuid_option::Content>) -> shared::Uuid {
    let value = match form {
        Some(uuid_option::Content::String(_)) => wire_uuid::Value::String(id.to_string()),
        _ => {
            let bits = id.as_u128();
            wire_uuid::Value::Structured(wire_uuid::Structured {
                most_significant_bits: (bits >> 64) as u64 as i64,
                least_significant_bits: bits as u64 as i64,
            })
        }
    };
    shared::Uuid { value: Some(value) }
}

/// A proposed event; like the server, it keeps only `type` and whether the
/// content type is JSON out of the metadata map.
pub(crate) fn proposed(
    id: Option<&shared::Uuid>,
    metadata: &HashMap<String, String>,
    data: Bytes,
    custom_metadata: Bytes,
) -> Result<Proposed, Status> {
    let event_type = metadata
        .get(TYPE)
        .ok_or_else(|| errors::required_metadata_missing(TYPE))?;
    let content_type = metadata
        .get(CONTENT_TYPE)
        .ok_or_else(|| errors::required_metadata_missing(CONTENT_TYPE))?;
    Ok(Proposed {
        id: uuid(id)?,
        event_type: event_type.clone(),
        is_json: content_type == APPLICATION_JSON,
        data,
        custom_metadata,
    })
}

/// An event as a read or a subscription sends it (links are never resolved:
/// this server has no projections to write them).
pub(crate) fn read_event(record: &Record, form: Option<&uuid_option::Content>) -> ReadEvent {
    let metadata = HashMap::from([
        (TYPE.to_owned(), record.event_type.clone()),
        (CREATED.to_owned(), record.created.to_string()),
        (
            CONTENT_TYPE.to_owned(),
            if record.is_json {
                APPLICATION_JSON
            } else {
                APPLICATION_OCTET_STREAM
            }
            .to_owned(),
        ),
    ]);
    ReadEvent {
        event: Some(read_event::RecordedEvent {
            id: Some(wire_uuid(record.id, form)),
            stream_identifier: Some(stream_identifier(&record.stream)),
            stream_revision: record.revision,
            prepare_position: record.position,
            commit_position: record.position,
            metadata,
            custom_metadata: record.custom_metadata.clone(),
            data: record.data.clone(),
        }),
        link: None,
        position: Some(read_event::Position::CommitPosition(record.position)),
    }
}
