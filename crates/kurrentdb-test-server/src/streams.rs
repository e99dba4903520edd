//! The `event_store.client.streams.Streams` service.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::convert::{proposed, stream_name};
use crate::errors::{self, MAX_APPEND_SIZE};
use crate::proto::event_store::client::streams::{
    append_req, append_resp, delete_req, delete_resp, read_req, streams_server, tombstone_req,
    tombstone_resp, AppendReq, AppendResp, BatchAppendReq, BatchAppendResp, DeleteReq, DeleteResp,
    ReadReq, ReadResp, TombstoneReq, TombstoneResp,
};
use crate::proto::event_store::client::Empty;
use crate::store::{Expected, Store, WriteError};
use crate::{batch, read, subscription};

/// A response stream of one of the streaming calls.
pub(crate) type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The store shared by every call, and the signal that ends the long-lived ones.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    store: Arc<Mutex<Store>>,
    shutdown: CancellationToken,
}

impl Node {
    pub(crate) fn new(store: Store, shutdown: CancellationToken) -> Self {
        Node {
            store: Arc::new(Mutex::new(store)),
            shutdown,
        }
    }

    /// The store, locked. Nothing awaits while holding it. A call that
    /// panicked while holding it is a bug the tests would show; later calls
    /// still get the store rather than failing one after another.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Cancelled when the server stops.
    pub(crate) fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }
}

/// The four forms of expected revision share their variant names across the
/// request messages, but each message has its own generated enum.
macro_rules! expected {
    ($option:expr, $($oneof:ident)::+) => {
        match $option {
            Some($($oneof)::+::Revision(revision)) => Ok(Expected::Exact(revision)),
            Some($($oneof)::+::NoStream(_)) => Ok(Expected::NoStream),
            Some($($oneof)::+::Any(_)) => Ok(Expected::Any),
            Some($($oneof)::+::StreamExists(_)) => Ok(Expected::StreamExists),
            None => Err(Status::invalid_argument("expected_stream_revision is required")),
        }
    };
}

#[tonic::async_trait]
impl streams_server::Streams for Node {
    type ReadStream = ResponseStream<ReadResp>;
    type BatchAppendStream = ResponseStream<BatchAppendResp>;

    async fn read(&self, request: Request<ReadReq>) -> Result<Response<Self::ReadStream>, Status> {
        let options = request
            .into_inner()
            .options
            .ok_or_else(|| Status::invalid_argument("options are required"))?;
        let stream: Self::ReadStream = match options.count_option {
            Some(read_req::options::CountOption::Count(count)) => {
                let responses = read::read(&self.store(), &options, count)?;
                Box::pin(tokio_stream::iter(responses.into_iter().map(Ok)))
            }
            Some(read_req::options::CountOption::Subscription(_)) => {
                subscription::subscribe(self.clone(), &options)?
            }
            None => {
                return Err(Status::invalid_argument(
                    "a read needs a count or subscription options",
                ))
            }
        };
        Ok(Response::new(stream))
    }

    async fn append(
        &self,
        request: Request<Streaming<AppendReq>>,
    ) -> Result<Response<AppendResp>, Status> {
        let mut requests = request.into_inner();
        let Some(append_req::Content::Options(options)) =
            requests.message().await?.and_then(|m| m.content)
        else {
            return Err(Status::invalid_argument(
                "an append starts with its options",
            ));
        };
        let stream = stream_name(options.stream_identifier.as_ref())?;
        let expected = expected!(
            options.expected_stream_revision,
            append_req::options::ExpectedStreamRevision
        )?;

        let mut events = Vec::new();
        let mut size = 0;
        while let Some(message) = requests.message().await? {
            let Some(append_req::Content::ProposedMessage(m)) = message.content else {
                return Err(Status::invalid_argument(
                    "only proposed messages follow the options",
                ));
            };
            let event = proposed(m.id.as_ref(), &m.metadata, m.data, m.custom_metadata)?;
            size += event.size();
            if size > MAX_APPEND_SIZE {
                return Err(errors::maximum_append_size_exceeded());
            }
            events.push(event);
        }

        let result = self.store().append(&stream, expected, events);
        let result = match result {
            Ok(written) => {
                use append_resp::success::{CurrentRevisionOption, PositionOption};
                append_resp::Result::Success(append_resp::Success {
                    current_revision_option: Some(match written.current {
                        Some(revision) => CurrentRevisionOption::CurrentRevision(revision),
                        None => CurrentRevisionOption::NoStream(Empty {}),
                    }),
                    position_option: Some(match written.position {
                        Some(p) => PositionOption::Position(append_resp::Position {
                            commit_position: p,
                            prepare_position: p,
                        }),
                        None => PositionOption::NoPosition(Empty {}),
                    }),
                })
            }
            Err(WriteError::WrongExpectedVersion { current }) => {
                append_resp::Result::WrongExpectedVersion(wrong_expected_version(expected, current))
            }
            Err(e) => return Err(errors::write_error(&stream, expected, e)),
        };
        Ok(Response::new(AppendResp {
            result: Some(result),
        }))
    }

    async fn delete(&self, request: Request<DeleteReq>) -> Result<Response<DeleteResp>, Status> {
        let options = request
            .into_inner()
            .options
            .ok_or_else(|| Status::invalid_argument("options are required"))?;
        let stream = stream_name(options.stream_identifier.as_ref())?;
        let expected = expected!(
            options.expected_stream_revision,
            delete_req::options::ExpectedStreamRevision
        )?;
        let position = self
            .store()
            .delete(&stream, expected, false)
            .map_err(|e| errors::write_error(&stream, expected, e))?;
        Ok(Response::new(DeleteResp {
            position_option: Some(delete_resp::PositionOption::Position(
                delete_resp::Position {
                    commit_position: position,
                    prepare_position: position,
                },
            )),
        }))
    }

    async fn tombstone(
        &self,
        request: Request<TombstoneReq>,
    ) -> Result<Response<TombstoneResp>, Status> {
        let options = request
            .into_inner()
            .options
            .ok_or_else(|| Status::invalid_argument("options are required"))?;
        let stream = stream_name(options.stream_identifier.as_ref())?;
        let expected = expected!(
            options.expected_stream_revision,
            tombstone_req::options::ExpectedStreamRevision
        )?;
        let position = self
            .store()
            .delete(&stream, expected, true)
            .map_err(|e| errors::write_error(&stream, expected, e))?;
        Ok(Response::new(TombstoneResp {
            position_option: Some(tombstone_resp::PositionOption::Position(
                tombstone_resp::Position {
                    commit_position: position,
                    prepare_position: position,
                },
            )),
        }))
    }

    async fn batch_append(
        &self,
        request: Request<Streaming<BatchAppendReq>>,
    ) -> Result<Response<Self::BatchAppendStream>, Status> {
        Ok(Response::new(batch::batch_append(
            self.clone(),
            request.into_inner(),
        )))
    }
}

/// The append answer for a failed expectation, with the fields of both
/// protocol generations filled as the server fills them.
fn wrong_expected_version(
    expected: Expected,
    current: Option<u64>,
) -> append_resp::WrongExpectedVersion {
    use append_resp::wrong_expected_version::{
        CurrentRevisionOption, CurrentRevisionOption2060, ExpectedRevisionOption,
        ExpectedRevisionOption2060,
    };
    let (expected_option, expected_option_2060) = match expected {
        Expected::Any => (
            ExpectedRevisionOption::ExpectedAny(Empty {}),
            ExpectedRevisionOption2060::Any2060(Empty {}),
        ),
        Expected::StreamExists => (
            ExpectedRevisionOption::ExpectedStreamExists(Empty {}),
            ExpectedRevisionOption2060::StreamExists2060(Empty {}),
        ),
        Expected::NoStream => (
            ExpectedRevisionOption::ExpectedNoStream(Empty {}),
            ExpectedRevisionOption2060::ExpectedRevision2060(u64::MAX),
        ),
        Expected::Exact(revision) => (
            ExpectedRevisionOption::ExpectedRevision(revision),
            ExpectedRevisionOption2060::ExpectedRevision2060(revision),
        ),
    };
    let (current_option, current_option_2060) = match current {
        Some(revision) => (
            CurrentRevisionOption::CurrentRevision(revision),
            CurrentRevisionOption2060::CurrentRevision2060(revision),
        ),
        None => (
            CurrentRevisionOption::CurrentNoStream(Empty {}),
            CurrentRevisionOption2060::NoStream2060(Empty {}),
        ),
    };
    append_resp::WrongExpectedVersion {
        current_revision_option_20_6_0: Some(current_option_2060),
        expected_revision_option_20_6_0: Some(expected_option_2060),
        current_revision_option: Some(current_option),
        expected_revision_option: Some(expected_option),
    }
}
