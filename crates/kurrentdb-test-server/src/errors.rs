//! The errors the server sends, with the codes, messages and `exception`
//! metadata of KurrentDB's `RpcExceptions` (for calls) and of its
//! `google.rpc.Status` helpers (for batch append results), since the client maps
//! exactly these to its error types.

use prost::Message;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

use crate::convert::stream_identifier;
use crate::proto::event_store::client as shared;
use crate::proto::google::rpc;
use crate::store::{Expected, WriteError};

/// The server's default `MaxAppendSize` before 25.1 (1 MiB).
pub(crate) const MAX_APPEND_SIZE: usize = 1024 * 1024;

fn with_exception(code: Code, message: String, metadata: &[(&'static str, String)]) -> Status {
    let mut map = MetadataMap::new();
    for (key, value) in metadata {
        // Stream names are client data; one that is not a valid header value
        // is left out rather than failing the call.
        if let Ok(value) = MetadataValue::try_from(value.as_str()) {
            map.insert(*key, value);
        }
    }
    Status::with_metadata(code, message, map)
}

/// `RpcExceptions.StreamDeleted`, which the client maps to `ResourceDeleted`.
pub(crate) fn stream_deleted(stream: &str) -> Status {
    with_exception(
        Code::FailedPrecondition,
        format!("Event stream '{stream}' is deleted."),
        &[
            ("exception", "stream-deleted".into()),
            ("stream-name", stream.into()),
        ],
    )
}

/// `RpcExceptions.WrongExpectedVersion`, as deletes report it (appends answer
/// a `WrongExpectedVersion` message instead).
pub(crate) fn wrong_expected_version(
    stream: &str,
    expected: Expected,
    current: Option<u64>,
) -> Status {
    let actual = current.map_or(-1, |r| r as i64);
    with_exception(
        Code::FailedPrecondition,
        format!(
            "Delete failed due to WrongExpectedVersion. Stream: {stream}, Expected version: {}, Actual version: {actual}",
            expected.as_i64()
        ),
        &[
            ("exception", "wrong-expected-version".into()),
            ("stream-name", stream.into()),
            ("expected-version", expected.as_i64().to_string()),
            ("actual-version", actual.to_string()),
        ],
    )
}

/// `RpcExceptions.MaxAppendSizeExceeded`.
pub(crate) fn maximum_append_size_exceeded() -> Status {
    with_exception(
        Code::InvalidArgument,
        format!("Maximum Append Size of {MAX_APPEND_SIZE} Exceeded."),
        &[
            ("exception", "maximum-append-size-exceeded".into()),
            ("maximum-append-size", MAX_APPEND_SIZE.to_string()),
        ],
    )
}

/// `RpcExceptions.RequiredMetadataPropertyMissing`: every event needs a
/// `type` and a `content-type`.
pub(crate) fn required_metadata_missing(property: &str) -> Status {
    with_exception(
        Code::InvalidArgument,
        format!("Required Metadata Property '{property}' is missing"),
        &[
            ("exception", "missing-required-metadata-property".into()),
            ("required-metadata-properties", "type,content-type".into()),
        ],
    )
}

/// What every open call gets when the server stops: the client treats
/// `Unavailable` as a node gone away, and reconnects.
pub(crate) fn shutting_down() -> Status {
    Status::unavailable("Server is shutting down")
}

/// The status of a failed write, for the calls that raise it.
pub(crate) fn write_error(stream: &str, expected: Expected, error: WriteError) -> Status {
    match error {
        WriteError::WrongExpectedVersion { current } => {
            wrong_expected_version(stream, expected, current)
        }
        WriteError::StreamDeleted => stream_deleted(stream),
        WriteError::Io(e) => Status::internal(format!("Writing to the log failed: {e}")),
    }
}

fn status(code: Code, message: &str, details: prost_types::Any) -> rpc::Status {
    rpc::Status {
        code: code as i32,
        message: message.to_owned(),
        details: Some(details),
    }
}

/// `Any.Pack`, which names the type under `type.googleapis.com/`.
fn pack(full_name: &str, message: &impl Message) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("type.googleapis.com/{full_name}"),
        value: message.encode_to_vec(),
    }
}

/// The `google.rpc.Status` a batch append answers for a failed write.
pub(crate) fn batch_write_error(
    stream: &str,
    expected: Expected,
    error: WriteError,
) -> rpc::Status {
    use shared::wrong_expected_version::{
        CurrentStreamRevisionOption, ExpectedStreamPositionOption,
    };
    match error {
        WriteError::WrongExpectedVersion { current } => {
            let details = shared::WrongExpectedVersion {
                current_stream_revision_option: Some(match current {
                    Some(revision) => CurrentStreamRevisionOption::CurrentStreamRevision(revision),
                    None => CurrentStreamRevisionOption::CurrentNoStream(()),
                }),
                expected_stream_position_option: Some(match expected {
                    Expected::Any => ExpectedStreamPositionOption::ExpectedAny(()),
                    Expected::NoStream => ExpectedStreamPositionOption::ExpectedNoStream(()),
                    Expected::StreamExists => {
                        ExpectedStreamPositionOption::ExpectedStreamExists(())
                    }
                    Expected::Exact(revision) => {
                        ExpectedStreamPositionOption::ExpectedStreamPosition(revision)
                    }
                }),
            };
            status(
                Code::AlreadyExists,
                "WrongExpectedVersion",
                pack("event_store.client.WrongExpectedVersion", &details),
            )
        }
        WriteError::StreamDeleted => {
            let details = shared::StreamDeleted {
                stream_identifier: Some(stream_identifier(stream)),
            };
            status(
                Code::NotFound,
                "StreamDeleted",
                pack("event_store.client.StreamDeleted", &details),
            )
        }
        WriteError::Io(e) => status(
            Code::Internal,
            &format!("Writing to the log failed: {e}"),
            pack("google.protobuf.Empty", &()),
        ),
    }
}

/// The batch append answer for a write whose deadline passed first.
pub(crate) fn batch_timeout() -> rpc::Status {
    status(
        Code::DeadlineExceeded,
        "Timeout",
        pack("event_store.client.Timeout", &shared::Timeout {}),
    )
}

/// The batch append answer for a write over the append size limit.
pub(crate) fn batch_maximum_append_size_exceeded() -> rpc::Status {
    let details = shared::MaximumAppendSizeExceeded {
        max_append_size: MAX_APPEND_SIZE as u32,
    };
    status(
        Code::InvalidArgument,
        "MaximumAppendSizeExceeded",
        pack("event_store.client.MaximumAppendSizeExceeded", &details),
    )
}

/// The batch append answer for a malformed request.
pub(crate) fn batch_bad_request(message: &str) -> rpc::Status {
    let details = shared::BadRequest {
        message: message.to_owned(),
    };
    status(
        Code::InvalidArgument,
        "BadRequest",
        pack("event_store.client.BadRequest", &details),
    )
}
