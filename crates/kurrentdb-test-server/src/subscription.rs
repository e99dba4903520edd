//! Catch-up subscriptions to a stream or to `$all`.
//!
//! A subscription is one cursor over the log: it sends what lies between its
//! cursor and the end, then waits for the next append. Catch-up and live are
//! the same loop, so an event can be neither skipped nor sent twice at the
//! switch between them, and a subscriber never falls behind (the server does
//! not send `fell_behind` to clients either).

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use uuid::Uuid;

use crate::convert::{read_event, stream_name};
use crate::errors;
use crate::filter::Filter;
use crate::proto::event_store::client::streams::read_req::options::uuid_option;
use crate::proto::event_store::client::streams::read_req::options::{ReadDirection, StreamOption};
use crate::proto::event_store::client::streams::read_req::Options;
use crate::proto::event_store::client::streams::read_resp::{self, Content};
use crate::proto::event_store::client::streams::ReadResp;
use crate::read::{filter, position, response, revision};
use crate::store::{LogPosition, Record, Revision, Store, DELETED_STREAM};
use crate::streams::{Node, ResponseStream};

/// How many records one pass takes under the store's lock.
const BATCH: usize = 256;

/// Room for responses the client has not read yet: sending waits when full,
/// so a slow client slows its own subscription only.
const BUFFER: usize = 64;

#[derive(Debug)]
enum Source {
    /// Events of one stream after revision `after` (all of them if `None`).
    Stream {
        name: String,
        after: Option<u64>,
    },
    All {
        filter: Option<Filter>,
    },
}

#[derive(Debug)]
struct Subscription {
    node: Node,
    source: Source,
    uuid_form: Option<uuid_option::Content>,
    /// The index in the log of the next record to consider.
    cursor: usize,
    appended: watch::Receiver<usize>,
    /// For checkpoints of filtered subscriptions.
    considered_since_checkpoint: u64,
    last_considered: Option<u64>,
}

/// Starts the subscription `options` describes.
pub(crate) fn subscribe(node: Node, options: &Options) -> Result<ResponseStream<ReadResp>, Status> {
    if options.read_direction != ReadDirection::Forwards as i32 {
        return Err(Status::invalid_argument("subscriptions only go forwards"));
    }
    let (source, from) = match &options.stream_option {
        Some(StreamOption::Stream(s)) => {
            if filter(options)?.is_some() {
                return Err(Status::invalid_argument(
                    "a subscription to one stream takes no filter",
                ));
            }
            let name = stream_name(s.stream_identifier.as_ref())?;
            match revision(s.revision_option.as_ref())? {
                Revision::Start => (Source::Stream { name, after: None }, Start::Beginning),
                Revision::At(r) => (
                    Source::Stream {
                        name,
                        after: Some(r),
                    },
                    Start::Beginning,
                ),
                Revision::End => (Source::Stream { name, after: None }, Start::End),
            }
        }
        Some(StreamOption::All(a)) => (
            Source::All {
                filter: filter(options)?,
            },
            Start::After(position(a.all_option.as_ref())?),
        ),
        None => {
            return Err(Status::invalid_argument(
                "a subscription names a stream or $all",
            ))
        }
    };

    let (cursor, appended) = {
        let store = node.store();
        let cursor = match from {
            Start::Beginning => 0,
            Start::End => store.record_count(),
            Start::After(p) => store.index_after(p),
        };
        (cursor, store.watch())
    };
    let subscription = Subscription {
        node,
        source,
        uuid_form: options.uuid_option.as_ref().and_then(|o| o.content),
        cursor,
        appended,
        considered_since_checkpoint: 0,
        last_considered: None,
    };

    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(subscription.run(tx));
    Ok(Box::pin(ReceiverStream::new(rx)))
}

/// Where a subscription's cursor starts in the log.
#[derive(Clone, Copy, Debug)]
enum Start {
    Beginning,
    End,
    After(LogPosition),
}

/// What one pass over the log found.
struct Pass {
    responses: Vec<Result<ReadResp, Status>>,
    at_end: bool,
    /// The subscription ends after these responses.
    ends: bool,
}

impl Subscription {
    async fn run(mut self, tx: mpsc::Sender<Result<ReadResp, Status>>) {
        let shutdown = self.node.shutdown().clone();
        tokio::select! {
            () = shutdown.cancelled() => {
                let _ = tx.send(Err(errors::shutting_down())).await;
            }
            () = self.serve(&tx) => {}
        }
    }

    async fn serve(&mut self, tx: &mpsc::Sender<Result<ReadResp, Status>>) {
        let confirmation = read_resp::SubscriptionConfirmation {
            subscription_id: Uuid::new_v4().to_string(),
        };
        if tx
            .send(Ok(response(Content::Confirmation(confirmation))))
            .await
            .is_err()
        {
            return;
        }
        let mut caught_up = false;
        loop {
            self.appended.borrow_and_update();
            let pass = self.pass();
            for item in pass.responses {
                if tx.send(item).await.is_err() {
                    return;
                }
            }
            if pass.ends {
                return;
            }
            if !pass.at_end {
                continue;
            }
            if !caught_up {
                caught_up = true;
                // A filtered subscription tells where it got to before going
                // live, so that at least one checkpoint falls in each interval.
                if let Some(checkpoint) = self.end_of_catch_up_checkpoint() {
                    if tx.send(Ok(checkpoint)).await.is_err() {
                        return;
                    }
                }
                if tx
                    .send(Ok(response(Content::CaughtUp(read_resp::CaughtUp {}))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            tokio::select! {
                changed = self.appended.changed() => if changed.is_err() { return },
                () = tx.closed() => return,
            }
        }
    }

    /// Takes the next records from the log, under the lock.
    fn pass(&mut self) -> Pass {
        let node = self.node.clone();
        let store = node.store();
        let mut responses = Vec::new();
        let mut ends = false;
        for record in store.records_from(self.cursor, BATCH) {
            self.cursor += 1;
            if let Err(deleted) = self.consider(&store, record, &mut responses) {
                responses.push(Err(deleted));
                ends = true;
                break;
            }
        }
        Pass {
            responses,
            at_end: self.cursor >= store.record_count(),
            ends,
        }
    }

    /// Adds what `record` calls for to `responses`; fails when the subscribed
    /// stream has been tombstoned, which ends the subscription.
    fn consider(
        &mut self,
        store: &Store,
        record: &Arc<Record>,
        responses: &mut Vec<Result<ReadResp, Status>>,
    ) -> Result<(), Status> {
        let event = || {
            Ok(response(Content::Event(read_event(
                record,
                self.uuid_form.as_ref(),
            ))))
        };
        match &self.source {
            Source::Stream { name, after } => {
                if record.stream != *name || after.is_some_and(|a| record.revision <= a) {
                    return Ok(());
                }
                if record.revision == DELETED_STREAM {
                    return Err(errors::stream_deleted(name));
                }
                if store.is_visible_in_stream(record) {
                    responses.push(event());
                }
            }
            Source::All { filter: None } => responses.push(event()),
            Source::All {
                filter: Some(filter),
            } => {
                if filter.matches(record) {
                    responses.push(event());
                }
                let interval = filter.checkpoint_interval;
                self.last_considered = Some(record.position);
                self.considered_since_checkpoint += 1;
                if self.considered_since_checkpoint >= interval {
                    self.considered_since_checkpoint = 0;
                    responses.push(Ok(checkpoint(record.position)));
                }
            }
        }
        Ok(())
    }

    fn end_of_catch_up_checkpoint(&mut self) -> Option<ReadResp> {
        if !matches!(self.source, Source::All { filter: Some(_) }) {
            return None;
        }
        self.considered_since_checkpoint = 0;
        self.last_considered.map(checkpoint)
    }
}

fn checkpoint(position: u64) -> ReadResp {
    response(Content::Checkpoint(read_resp::Checkpoint {
        commit_position: position,
        prepare_position: position,
    }))
}
