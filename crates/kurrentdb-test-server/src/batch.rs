//! `BatchAppend`: many appends, to any streams, over one bidirectional call.
//!
//! Each write is identified by its correlation id; its options (stream,
//! expected revision, deadline) come with its first request and its events
//! may span several requests up to the one marked final. As in the server's
//! `BatchAppendWorker`, a write that is not final before its deadline (capped
//! by the server's write timeout) is answered with a timeout, and every
//! failure is a result in the response stream, not the end of the call.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};
use uuid::Uuid;

use crate::convert::{proposed, stream_identifier, stream_name, uuid};
use crate::errors::{self, MAX_APPEND_SIZE};
use crate::proto::event_store::client::streams::batch_append_req::options::{
    DeadlineOption, ExpectedStreamPosition,
};
use crate::proto::event_store::client::streams::batch_append_resp::{self, success};
use crate::proto::event_store::client::streams::{BatchAppendReq, BatchAppendResp};
use crate::proto::event_store::client::{AllStreamPosition, Uuid as WireUuid};
use crate::store::{Expected, Proposed};
use crate::streams::{Node, ResponseStream};

/// The server's default `WriteTimeoutMs`, which caps every requested deadline.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

const BUFFER: usize = 64;

#[derive(Debug)]
struct Pending {
    wire_id: Option<WireUuid>,
    stream: String,
    expected: Expected,
    events: Vec<Proposed>,
    size: usize,
    deadline: Instant,
}

/// Serves one batch append call.
pub(crate) fn batch_append(
    node: Node,
    requests: Streaming<BatchAppendReq>,
) -> ResponseStream<BatchAppendResp> {
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        let shutdown = node.shutdown().clone();
        tokio::select! {
            () = shutdown.cancelled() => {
                let _ = tx.send(Err(errors::shutting_down())).await;
            }
            () = Worker { node, pending: HashMap::new() }.run(requests, &tx) => {}
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

struct Worker {
    node: Node,
    pending: HashMap<Uuid, Pending>,
}

impl Worker {
    async fn run(
        mut self,
        mut requests: Streaming<BatchAppendReq>,
        tx: &mpsc::Sender<Result<BatchAppendResp, Status>>,
    ) {
        loop {
            let next_deadline = self.pending.values().map(|p| p.deadline).min();
            let responses = tokio::select! {
                request = requests.message() => match request {
                    Ok(Some(request)) => self.handle(request),
                    // The client is done (or gone): writes it never finished are dropped.
                    Ok(None) | Err(_) => return,
                },
                () = sleep_until(next_deadline), if next_deadline.is_some() => self.expire(),
            };
            for response in responses {
                if tx.send(Ok(response)).await.is_err() {
                    return;
                }
            }
        }
    }

    fn handle(&mut self, request: BatchAppendReq) -> Vec<BatchAppendResp> {
        let wire_id = request.correlation_id.clone();
        let reply = |stream: &str, result| response(wire_id.clone(), stream, result);
        let correlation_id = match uuid(request.correlation_id.as_ref()) {
            Ok(id) => id,
            Err(e) => {
                return vec![reply(
                    "",
                    batch_append_resp::Result::Error(errors::batch_bad_request(e.message())),
                )]
            }
        };

        if let Some(options) = request.options {
            let stream = match stream_name(options.stream_identifier.as_ref()) {
                Ok(stream) => stream,
                Err(_) => {
                    let error =
                        errors::batch_bad_request("Required field StreamIdentifier not set.");
                    return vec![reply("", batch_append_resp::Result::Error(error))];
                }
            };
            let expected = match options.expected_stream_position {
                Some(ExpectedStreamPosition::StreamPosition(r)) => Expected::Exact(r),
                Some(ExpectedStreamPosition::NoStream(())) => Expected::NoStream,
                Some(ExpectedStreamPosition::Any(())) => Expected::Any,
                Some(ExpectedStreamPosition::StreamExists(())) => Expected::StreamExists,
                None => {
                    let error = errors::batch_bad_request("expected_stream_position is required");
                    return vec![reply(&stream, batch_append_resp::Result::Error(error))];
                }
            };
            let Some(timeout) =
                requested_timeout(options.deadline_option.as_ref()).map(|t| t.min(WRITE_TIMEOUT))
            else {
                return vec![reply(
                    &stream,
                    batch_append_resp::Result::Error(errors::batch_timeout()),
                )];
            };
            self.pending
                .entry(correlation_id)
                .or_insert_with(|| Pending {
                    wire_id: wire_id.clone(),
                    stream,
                    expected,
                    events: Vec::new(),
                    size: 0,
                    deadline: Instant::now() + timeout,
                });
        }

        let Some(pending) = self.pending.get_mut(&correlation_id) else {
            return Vec::new();
        };
        for m in request.proposed_messages {
            match proposed(m.id.as_ref(), &m.metadata, m.data, m.custom_metadata) {
                Ok(event) => {
                    pending.size += event.size();
                    pending.events.push(event);
                }
                Err(e) => {
                    let stream = self
                        .pending
                        .remove(&correlation_id)
                        .map(|p| p.stream)
                        .unwrap_or_default();
                    return vec![reply(
                        &stream,
                        batch_append_resp::Result::Error(errors::batch_bad_request(e.message())),
                    )];
                }
            }
        }
        if pending.size > MAX_APPEND_SIZE {
            let stream = self
                .pending
                .remove(&correlation_id)
                .map(|p| p.stream)
                .unwrap_or_default();
            return vec![reply(
                &stream,
                batch_append_resp::Result::Error(errors::batch_maximum_append_size_exceeded()),
            )];
        }
        if !request.is_final {
            return Vec::new();
        }

        let pending = self
            .pending
            .remove(&correlation_id)
            .expect("the write is pending");
        let result = self
            .node
            .store()
            .append(&pending.stream, pending.expected, pending.events);
        let result = match result {
            Ok(written) => batch_append_resp::Result::Success(batch_append_resp::Success {
                current_revision_option: Some(match written.current {
                    Some(revision) => success::CurrentRevisionOption::CurrentRevision(revision),
                    None => success::CurrentRevisionOption::NoStream(()),
                }),
                position_option: Some(match written.position {
                    Some(p) => success::PositionOption::Position(AllStreamPosition {
                        commit_position: p,
                        prepare_position: p,
                    }),
                    None => success::PositionOption::NoPosition(()),
                }),
            }),
            Err(e) => batch_append_resp::Result::Error(errors::batch_write_error(
                &pending.stream,
                pending.expected,
                e,
            )),
        };
        vec![reply(&pending.stream, result)]
    }

    /// Answers a timeout for every pending write whose deadline has passed.
    fn expire(&mut self) -> Vec<BatchAppendResp> {
        let now = Instant::now();
        let expired: Vec<Uuid> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        expired
            .into_iter()
            .filter_map(|id| self.pending.remove(&id))
            .map(|p| {
                response(
                    p.wire_id,
                    &p.stream,
                    batch_append_resp::Result::Error(errors::batch_timeout()),
                )
            })
            .collect()
    }
}

/// The server answers with the correlation id and the stream of the write,
/// but leaves the expected position unset.
fn response(
    wire_id: Option<WireUuid>,
    stream: &str,
    result: batch_append_resp::Result,
) -> BatchAppendResp {
    BatchAppendResp {
        correlation_id: wire_id,
        result: Some(result),
        stream_identifier: Some(stream_identifier(stream)),
        expected_stream_position: None,
    }
}

/// How long the client gives the write; `None` if its deadline has passed.
///
/// `deadline` is a duration from now; the older `deadline_21_10_0` is a point
/// in time; without either the write may take the server's write timeout.
fn requested_timeout(option: Option<&DeadlineOption>) -> Option<Duration> {
    let timeout = match option {
        Some(DeadlineOption::Deadline(d)) => Duration::try_from(*d).ok()?,
        Some(DeadlineOption::Deadline21100(t)) => SystemTime::try_from(*t)
            .ok()?
            .duration_since(SystemTime::now())
            .ok()?,
        None => return Some(WRITE_TIMEOUT),
    };
    (!timeout.is_zero()).then_some(timeout)
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline).await;
    }
}
