//! The event log in KurrentDB (EventStoreDB), through the `eventstore` client, when
//! `store.events_url` names one; the read tables stay in SQL at `store.url`.
//!
//! - One stream per aggregate: `orgsync-account-<id>`, `orgsync-organization-<id>`, where
//!   `orgsync` is `store.events_prefix`, so that installations (or test runs) sharing a server
//!   keep apart. An event's revision in its stream is its sequence less one.
//! - Every append carries the revision the decision was made on (no stream for a first event),
//!   so a concurrent writer makes it fail with a wrong expected version, which is a version
//!   conflict like the SQL log's unique key (I4).
//! - The event type is the event's type; its version, actor and time travel in its custom
//!   metadata as JSON; the payload is the same JSON the SQL log keeps, sealed fields sealed.
//! - A position in the log is the event's commit position in `$all`: increasing, never
//!   reused, and the change feed's cursor.
//!
//! Events cannot be rewritten here, so re-sealing leaves them under the keys that sealed them
//! (each sealed value names its key) and the key ring keeps those keys.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use eventstore::{
    AppendToStreamOptions, Client, ClientSettings, EventData, ExpectedRevision, Position,
    ReadAllOptions, ReadEvent, ReadStreamOptions, RecordedEvent, StreamPosition,
};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::events::{replay, Metadata, NewEvent, StoredEvent};
use super::{parse_timestamp, timestamp, StoreError};

/// Events read from `$all` in one call.
const PAGE: usize = 1_000;

/// Streams read or appended to at once when many aggregates are read or written together.
const IN_FLIGHT: usize = 64;

/// The aggregate types and the names their streams carry.
const AGGREGATES: [(&str, &str); 2] = [("Account", "account"), ("Organization", "organization")];

/// A connection to KurrentDB holding orgsync's streams; cheap to clone.
#[derive(Clone)]
pub struct KurrentLog {
    client: Arc<Client>,
    // `<store.events_prefix>-`: every stream of this installation starts so, and reads of
    // `$all` keep only those.
    prefix: Arc<str>,
}

/// What an event carries beside its payload, in its custom metadata.
#[derive(Debug, Serialize, Deserialize)]
struct EventMetadata {
    /// The event type's version.
    version: String,
    /// Who caused it.
    actor: String,
    /// When it was appended, as the store writes timestamps.
    at: String,
    /// For an AWS call, CloudTrail's id of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cloudtrail_event_id: Option<String>,
    /// For an AWS call, who made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    caller_arn: Option<String>,
}

impl EventMetadata {
    fn metadata(self) -> Result<Metadata, StoreError> {
        Ok(Metadata {
            actor: self.actor,
            at: parse_timestamp(&self.at)?,
            cloudtrail_event_id: self.cloudtrail_event_id,
            caller_arn: self.caller_arn,
        })
    }
}

impl KurrentLog {
    /// Connects to the server `url` names (`esdb://host:port?tls=false`, `kurrentdb://…`),
    /// for the streams named after `prefix`.
    pub fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let url = url.replacen("kurrentdb://", "esdb://", 1);
        let settings: ClientSettings = url
            .parse()
            .map_err(|e| StoreError::Config(format!("store.events_url: {e}")))?;
        let client = Client::new(settings).map_err(kurrent)?;
        Ok(Self {
            client: Arc::new(client),
            prefix: format!("{prefix}-").into(),
        })
    }

    /// Up to `limit` of orgsync's events after position `after`, in order.
    pub async fn events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let recorded = self.recorded_after(after, limit).await?;
        recorded
            .iter()
            .filter_map(|event| self.stored_event(event).transpose())
            .collect()
    }

    /// Up to `limit` events of orgsync's streams after position `after`, in order, as read
    /// from `$all` a page at a time (other streams' events are passed over).
    async fn recorded_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut from = match u64::try_from(after) {
            Ok(0) | Err(_) => StreamPosition::Start,
            Ok(at) => StreamPosition::Position(Position {
                commit: at,
                prepare: at,
            }),
        };
        let mut events = Vec::new();
        loop {
            let options = ReadAllOptions::default()
                .forwards()
                .position(from)
                .max_count(PAGE);
            let page = read(|| self.client.read_all(&options)).await?;
            let Some(last) = page.last().map(|event| event.position) else {
                return Ok(events);
            };
            let full = page.len() == PAGE;
            for event in page {
                // A page starts at the position it is read from, the last one's end.
                if position_of(&event) <= after || self.aggregate_of(&event.stream_id).is_none() {
                    continue;
                }
                events.push(event);
                if events.len() == limit {
                    return Ok(events);
                }
            }
            if !full {
                return Ok(events);
            }
            from = StreamPosition::Position(last);
        }
    }

    /// Up to `limit` events of one aggregate after its `after`th, oldest first: its stream
    /// from revision `after` (an event's sequence is its revision plus one).
    pub async fn events_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let stream = self.stream_name(aggregate_type, aggregate_id)?;
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Position(u64::try_from(after).unwrap_or(0)))
            .max_count(usize::try_from(limit).unwrap_or(usize::MAX));
        let events = read(|| self.client.read_stream(stream.as_str(), &options)).await?;
        events
            .iter()
            .filter_map(|event| self.stored_event(event).transpose())
            .collect()
    }

    /// Every event of the `aggregate_type` aggregates `ids`, by aggregate id, each
    /// aggregate's oldest first. Streams are read many at a time.
    pub async fn events_of_each(
        &self,
        aggregate_type: &str,
        ids: &[&str],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        // Collected first: a stream over a closure that borrows the ids is not `Send` enough
        // for a spawned task.
        let reads: Vec<_> = ids
            .iter()
            .map(|id| {
                let (log, kind, id) = (self.clone(), aggregate_type.to_owned(), id.to_string());
                async move { log.events_of(&kind, &id, 0, i64::MAX).await }
            })
            .collect();
        let mut histories: Vec<Vec<StoredEvent>> = futures::stream::iter(reads)
            .buffer_unordered(IN_FLIGHT)
            .try_collect()
            .await?;
        histories.retain(|events| !events.is_empty());
        histories.sort_unstable_by(|a, b| a[0].aggregate_id.cmp(&b[0].aggregate_id));
        Ok(histories.into_iter().flatten().collect())
    }

    /// The payloads of every event of the `aggregate_type` aggregates `ids`, by aggregate,
    /// oldest first; aggregates without events are absent.
    pub async fn histories(
        &self,
        aggregate_type: &str,
        ids: &[&str],
    ) -> Result<HashMap<String, Vec<String>>, StoreError> {
        let mut histories: HashMap<String, Vec<String>> = HashMap::new();
        for event in self.events_of_each(aggregate_type, ids).await? {
            histories
                .entry(event.aggregate_id)
                .or_default()
                .push(event.payload.to_string());
        }
        Ok(histories)
    }

    /// Appends `events` of `aggregate_type` aggregates, each with `metadata`: each
    /// aggregate's events in one append that expects its stream at the revision before them,
    /// many aggregates at a time. Answers the aggregates another writer got to first, whose
    /// events were not appended (I4); the others' are.
    pub async fn append(
        &self,
        aggregate_type: &str,
        events: &[NewEvent],
        metadata: &Metadata,
    ) -> Result<Vec<String>, StoreError> {
        // Each aggregate's run of events, made ready to send before anything is in flight.
        let mut writes: Vec<(String, ExpectedRevision, Vec<EventData>)> = Vec::new();
        for event in events {
            let data = event_data(
                &event.event_type,
                &event.event_version,
                &event.payload,
                metadata,
            )?;
            match writes.last_mut() {
                Some((id, _, run)) if *id == event.aggregate_id => run.push(data),
                _ => writes.push((
                    event.aggregate_id.clone(),
                    expected_before(event.sequence),
                    vec![data],
                )),
            }
        }
        let appends = writes.into_iter().map(|(id, expected, data)| {
            let client = self.client.clone();
            let stream = self.stream_name(aggregate_type, &id);
            async move {
                let stream = stream?;
                let options = AppendToStreamOptions::default().expected_revision(expected);
                let appending = || client.append_to_stream(stream.as_str(), &options, data.clone());
                match retried(appending).await {
                    Ok(_) => Ok(None),
                    Err(eventstore::Error::WrongExpectedVersion { .. }) => Ok(Some(id)),
                    Err(e) => Err(kurrent(e)),
                }
            }
        });
        let conflicts: Vec<Option<String>> = futures::stream::iter(appends)
            .buffer_unordered(IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(conflicts.into_iter().flatten().collect())
    }

    /// One of orgsync's events as the log reads it; `None` for another stream's.
    fn stored_event(&self, event: &RecordedEvent) -> Result<Option<StoredEvent>, StoreError> {
        let Some((aggregate_type, aggregate_id)) = self.aggregate_of(&event.stream_id) else {
            return Ok(None);
        };
        let metadata: EventMetadata = serde_json::from_slice(&event.custom_metadata)?;
        Ok(Some(StoredEvent {
            seq: position_of(event),
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            sequence: i64::try_from(event.revision + 1).unwrap_or(i64::MAX),
            event_type: event.event_type.clone(),
            payload: serde_json::from_slice(&event.data)?,
            metadata: metadata.metadata()?,
        }))
    }

    /// One of orgsync's events as cqrs-es replays it.
    fn serialized_event(&self, event: &RecordedEvent) -> Result<SerializedEvent, PersistenceError> {
        let (aggregate_type, aggregate_id) = self
            .aggregate_of(&event.stream_id)
            .ok_or_else(|| PersistenceError::UnknownError(event.stream_id.clone().into()))?;
        let metadata: EventMetadata = serde_json::from_slice(&event.custom_metadata)?;
        let version = metadata.version.clone();
        let fields = metadata.metadata().map_err(unknown)?.fields();
        Ok(SerializedEvent::new(
            aggregate_id.to_owned(),
            usize::try_from(event.revision + 1).map_err(unknown)?,
            aggregate_type.to_owned(),
            event.event_type.clone(),
            version,
            serde_json::from_slice(&event.data)?,
            serde_json::to_value(fields)?,
        ))
    }

    /// `orgsync-account-<id>`.
    fn stream_name(&self, aggregate_type: &str, aggregate_id: &str) -> Result<String, StoreError> {
        let (_, name) = AGGREGATES
            .iter()
            .find(|(kind, _)| *kind == aggregate_type)
            .ok_or_else(|| StoreError::Malformed(format!("aggregate type {aggregate_type:?}")))?;
        Ok(format!("{}{name}-{aggregate_id}", self.prefix))
    }

    /// The aggregate type and id of one of this installation's streams; `None` for any other
    /// stream.
    fn aggregate_of<'a>(&self, stream: &'a str) -> Option<(&'static str, &'a str)> {
        let rest = stream.strip_prefix(&*self.prefix)?;
        AGGREGATES.iter().find_map(|(kind, name)| {
            let id = rest.strip_prefix(name)?.strip_prefix('-')?;
            Some((*kind, id))
        })
    }

    /// How many events orgsync's streams hold.
    pub async fn count(&self) -> Result<i64, StoreError> {
        let events = self.recorded_after(0, i64::MAX).await?;
        Ok(i64::try_from(events.len()).unwrap_or(i64::MAX))
    }

    /// The newest of orgsync's events' position, 0 for an empty log.
    pub async fn last_position(&self) -> Result<i64, StoreError> {
        let mut from = StreamPosition::End;
        loop {
            let options = ReadAllOptions::default()
                .backwards()
                .position(from)
                .max_count(PAGE);
            let page = read(|| self.client.read_all(&options)).await?;
            if let Some(ours) = page
                .iter()
                .find(|e| self.aggregate_of(&e.stream_id).is_some())
            {
                return Ok(position_of(ours));
            }
            match page.last() {
                Some(last) if page.len() == PAGE => from = StreamPosition::Position(last.position),
                _ => return Ok(0),
            }
        }
    }
}

/// Calls made while the server is unreachable (restarting, or its leader moving) are made
/// again this many times in all, the client reconnecting in between.
const ATTEMPTS: u32 = 6;

/// How long the first retry waits; each next one waits that much longer.
const RETRY_DELAY: Duration = Duration::from_millis(250);

/// Runs `call` until it is answered, or has failed [`ATTEMPTS`] times for want of a server.
/// Appends may be retried: their events keep their ids, by which the server recognizes a
/// write it already made.
async fn retried<T, F>(mut call: impl FnMut() -> F) -> eventstore::Result<T>
where
    F: Future<Output = eventstore::Result<T>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(
                eventstore::Error::ServerError(_)
                | eventstore::Error::GrpcConnectionError(_)
                | eventstore::Error::ConnectionClosed,
            ) if attempt < ATTEMPTS => {
                tokio::time::sleep(RETRY_DELAY * attempt).await;
                attempt += 1;
            }
            answered => return answered,
        }
    }
}

/// Every event a read started by `start` gives; none when what it reads does not exist.
async fn read<F>(start: impl Fn() -> F) -> Result<Vec<RecordedEvent>, StoreError>
where
    F: Future<Output = eventstore::Result<eventstore::ReadStream>>,
{
    let read_all = || async {
        let mut stream = start().await?;
        let mut events = Vec::new();
        while let Some(read) = stream.next_read_event().await? {
            // Links are not resolved, so the event read is the one recorded.
            if let ReadEvent::Event(resolved) = read {
                events.extend(resolved.link.or(resolved.event));
            }
        }
        Ok(events)
    };
    match retried(read_all).await {
        Err(eventstore::Error::ResourceNotFound) => Ok(Vec::new()),
        read => read.map_err(kurrent),
    }
}

/// The revision a stream must be at for an event of aggregate position `sequence` (from 1)
/// to come next.
fn expected_before(sequence: i64) -> ExpectedRevision {
    match u64::try_from(sequence - 2) {
        Ok(revision) => ExpectedRevision::Exact(revision),
        Err(_) => ExpectedRevision::NoStream,
    }
}

fn position_of(event: &RecordedEvent) -> i64 {
    i64::try_from(event.position.commit).unwrap_or(i64::MAX)
}

/// An event as KurrentDB keeps it.
fn event_data(
    event_type: &str,
    event_version: &str,
    payload: &str,
    metadata: &Metadata,
) -> Result<EventData, StoreError> {
    let payload: Value = serde_json::from_str(payload)?;
    let metadata = EventMetadata {
        version: event_version.to_owned(),
        actor: metadata.actor.clone(),
        at: timestamp(metadata.at),
        cloudtrail_event_id: metadata.cloudtrail_event_id.clone(),
        caller_arn: metadata.caller_arn.clone(),
    };
    Ok(EventData::json(event_type, &payload)?
        .id(uuid::Uuid::new_v4())
        .metadata_as_json(&metadata)?)
}

fn kurrent(e: eventstore::Error) -> StoreError {
    StoreError::Kurrent(e.to_string())
}

/// cqrs-es's event repository on KurrentDB, in plain event-store mode: no snapshots.
pub struct KurrentEventRepository {
    log: KurrentLog,
}

impl KurrentEventRepository {
    /// A repository on `log`.
    pub fn new(log: KurrentLog) -> Self {
        Self { log }
    }

    async fn serialized(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let stream = self
            .log
            .stream_name(aggregate_type, aggregate_id)
            .map_err(unknown)?;
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Start);
        let events = read(|| self.log.client.read_stream(stream.as_str(), &options))
            .await
            .map_err(connection)?;
        events
            .iter()
            .map(|event| self.log.serialized_event(event))
            .collect()
    }
}

fn unknown(e: impl std::error::Error + Send + Sync + 'static) -> PersistenceError {
    PersistenceError::UnknownError(Box::new(e))
}

fn connection(e: StoreError) -> PersistenceError {
    PersistenceError::ConnectionError(Box::new(e))
}

impl PersistedEventRepository for KurrentEventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.serialized(A::TYPE, id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let mut events = self.serialized(A::TYPE, id).await?;
        events.retain(|event| event.sequence > last_sequence);
        Ok(events)
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        _id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        Ok(None)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        _snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        let metadata: Metadata = serde_json::from_value(first.metadata.clone())?;
        let new: Vec<NewEvent> = events
            .iter()
            .map(|event| {
                Ok(NewEvent {
                    aggregate_id: event.aggregate_id.clone(),
                    sequence: i64::try_from(event.sequence).map_err(unknown)?,
                    event_type: event.event_type.clone(),
                    event_version: event.event_version.clone(),
                    payload: event.payload.to_string(),
                })
            })
            .collect::<Result<_, PersistenceError>>()?;
        let conflicts = self
            .log
            .append(&first.aggregate_type, &new, &metadata)
            .await
            .map_err(connection)?;
        if conflicts.is_empty() {
            Ok(())
        } else {
            Err(PersistenceError::OptimisticLockError)
        }
    }

    async fn stream_events<A: Aggregate>(
        &self,
        id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        replay(self.serialized(A::TYPE, id).await?).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        let recorded = self
            .log
            .recorded_after(0, i64::MAX)
            .await
            .map_err(connection)?;
        let events = recorded
            .iter()
            .filter(|event| {
                let kind = self
                    .log
                    .aggregate_of(&event.stream_id)
                    .map(|(kind, _)| kind);
                kind == Some(A::TYPE)
            })
            .map(|event| self.log.serialized_event(event))
            .collect::<Result<Vec<_>, _>>()?;
        replay(events).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streams_are_named_per_aggregate_and_read_back() {
        let log = KurrentLog::connect("esdb://127.0.0.1:2113?tls=false", "orgsync").unwrap();
        let stream = log.stream_name("Account", "111122223333").unwrap();
        assert_eq!(stream, "orgsync-account-111122223333");
        assert_eq!(log.aggregate_of(&stream), Some(("Account", "111122223333")));
        let org = log.stream_name("Organization", "o-abcdefghij").unwrap();
        assert_eq!(org, "orgsync-organization-o-abcdefghij");
        assert_eq!(
            log.aggregate_of(&org),
            Some(("Organization", "o-abcdefghij"))
        );
        assert_eq!(log.aggregate_of("$stats-127.0.0.1:2113"), None);
        assert_eq!(log.aggregate_of("orgsync-other-1"), None);
        assert_eq!(log.aggregate_of("orgsync2-account-111122223333"), None);
    }

    #[test]
    fn the_first_event_expects_no_stream_and_the_next_ones_the_revision_before() {
        assert!(matches!(expected_before(1), ExpectedRevision::NoStream));
        assert!(matches!(expected_before(2), ExpectedRevision::Exact(0)));
        assert!(matches!(expected_before(7), ExpectedRevision::Exact(5)));
    }
}
