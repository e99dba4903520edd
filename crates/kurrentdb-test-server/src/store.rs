//! The event log and the consistency rules a single KurrentDB node applies to
//! writes, deletes and reads of streams.
//!
//! The rules follow the server's `IndexWriter.CheckCommit`, soft delete and
//! "soft undelete" in `StorageWriterService`, and `IndexReader`'s use of stream
//! metadata; the comments name the behaviour they keep.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::bytes::Bytes;
use tokio::sync::watch;
use uuid::Uuid;

use crate::persistence::{self, LogFile};

/// `EventNumber.DeletedStream`: the revision of a tombstone, and the `$tb` a
/// soft delete writes.
pub(crate) const DELETED_STREAM: u64 = i64::MAX as u64;

/// A metastream only ever shows its latest event (`ESConsts.MetaStreamMaxCount`).
const METASTREAM_MAX_COUNT: u64 = 1;

const METADATA_EVENT_TYPE: &str = "$metadata";
const TOMBSTONE_EVENT_TYPE: &str = "$streamDeleted";

/// One event in the log.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) position: u64,
    pub(crate) stream: String,
    pub(crate) revision: u64,
    pub(crate) id: Uuid,
    pub(crate) event_type: String,
    pub(crate) is_json: bool,
    /// .NET ticks (100 ns) since the Unix epoch, as the server reports `created`.
    pub(crate) created: i64,
    pub(crate) data: Bytes,
    pub(crate) custom_metadata: Bytes,
}

/// An event a client proposes to append.
#[derive(Debug)]
pub(crate) struct Proposed {
    pub(crate) id: Uuid,
    pub(crate) event_type: String,
    pub(crate) is_json: bool,
    pub(crate) data: Bytes,
    pub(crate) custom_metadata: Bytes,
}

impl Proposed {
    /// `Event.SizeOnDisk`, which is what the append size limit counts.
    pub(crate) fn size(&self) -> usize {
        self.data.len() + self.custom_metadata.len() + self.event_type.len() * 2
    }
}

/// The state a write expects its stream to be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expected {
    Any,
    NoStream,
    StreamExists,
    Exact(u64),
}

impl Expected {
    /// The server's `ExpectedVersion` number, as error metadata reports it.
    pub(crate) fn as_i64(self) -> i64 {
        match self {
            Expected::Any => -2,
            Expected::NoStream => -1,
            Expected::StreamExists => -4,
            Expected::Exact(revision) => revision as i64,
        }
    }
}

/// Why a write was refused.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// The stream is not in the expected state; `current` is its last revision.
    WrongExpectedVersion {
        current: Option<u64>,
    },
    StreamDeleted,
    Io(io::Error),
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        WriteError::Io(e)
    }
}

/// What a successful write reports.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Written {
    /// The stream's last revision after the write (`None`: still no stream).
    pub(crate) current: Option<u64>,
    /// The position of the write's last event; `None` when nothing was written.
    pub(crate) position: Option<u64>,
}

/// Where a stream read starts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Revision {
    Start,
    End,
    At(u64),
}

/// Where a read of `$all` starts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum LogPosition {
    Start,
    End,
    At(u64),
}

/// The answer to a read of one stream.
#[derive(Debug)]
pub(crate) enum StreamRead {
    NotFound,
    Deleted,
    Events {
        events: Vec<Arc<Record>>,
        last_revision: u64,
    },
}

/// The stream metadata properties that change what a read returns.
#[derive(Debug, Default, PartialEq, Eq)]
struct StreamMetadata {
    truncate_before: Option<u64>,
    max_count: Option<u64>,
    max_age: Option<Duration>,
}

enum Decision {
    Write {
        soft_deleted: bool,
    },
    /// Every proposed event is already in the stream: answer as the original write.
    Idempotent {
        last: usize,
    },
}

/// The whole log, with an index of every stream and of every event id.
#[derive(Debug)]
pub(crate) struct Store {
    records: Vec<Arc<Record>>,
    /// Each stream's records in revision order; revisions have no gaps, so a
    /// revision is an index here (a tombstone, if any, comes last).
    streams: HashMap<String, Vec<usize>>,
    ids: HashMap<Uuid, usize>,
    /// Where the next event's frame starts.
    end: u64,
    file: Option<LogFile>,
    appended: watch::Sender<usize>,
}

impl Store {
    /// Opens the log kept in `data`, or an empty in-memory one.
    pub(crate) fn open(data: Option<&Path>) -> io::Result<Self> {
        let (file, records, end) = match data {
            Some(dir) => {
                let (file, records, end) = LogFile::open(dir)?;
                (Some(file), records, end)
            }
            None => (None, Vec::new(), persistence::HEADER.len() as u64),
        };
        let mut store = Store {
            records: Vec::new(),
            streams: HashMap::new(),
            ids: HashMap::new(),
            end,
            file,
            appended: watch::channel(0).0,
        };
        for record in records {
            store.index(record);
        }
        Ok(store)
    }

    /// Notifies of every append: the value is the number of records in the log.
    pub(crate) fn watch(&self) -> watch::Receiver<usize> {
        self.appended.subscribe()
    }

    /// Appends `events` to `stream` if it is in the `expected` state.
    pub(crate) fn append(
        &mut self,
        stream: &str,
        expected: Expected,
        events: Vec<Proposed>,
    ) -> Result<Written, WriteError> {
        let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
        let soft_deleted = match self.decide(stream, expected, &ids)? {
            Decision::Idempotent { last } => {
                let record = &self.records[last];
                return Ok(Written {
                    current: Some(record.revision),
                    position: Some(record.position),
                });
            }
            Decision::Write { soft_deleted } => soft_deleted,
        };
        if events.is_empty() {
            return Ok(Written {
                current: self.last_revision(stream),
                position: None,
            });
        }

        let first = self.next_revision(stream);
        let now = now_ticks();
        let records = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| Record {
                position: 0,
                stream: stream.to_owned(),
                revision: first + i as u64,
                id: e.id,
                event_type: e.event_type,
                is_json: e.is_json,
                created: now,
                data: e.data,
                custom_metadata: e.custom_metadata,
            })
            .collect();
        let written = self.commit(records)?;

        // Writing to a soft-deleted stream brings it back from the new events on.
        if soft_deleted {
            self.undelete(stream, first)?;
        }
        if let Some(original) = stream.strip_prefix("$$") {
            if self.is_soft_deleted(original) {
                let from = self.next_revision(original);
                self.undelete(original, from)?;
            }
        }
        Ok(written)
    }

    /// Deletes `stream`: `hard` writes a tombstone, otherwise a `$tb` of
    /// `DELETED_STREAM` in its metadata hides every event it has.
    pub(crate) fn delete(
        &mut self,
        stream: &str,
        expected: Expected,
        hard: bool,
    ) -> Result<u64, WriteError> {
        // The server checks a delete as a write of one new event.
        self.decide(stream, expected, &[Uuid::new_v4()])?;

        let record = if hard {
            Record {
                position: 0,
                stream: stream.to_owned(),
                revision: DELETED_STREAM,
                id: Uuid::new_v4(),
                event_type: TOMBSTONE_EVENT_TYPE.to_owned(),
                is_json: false,
                created: now_ticks(),
                data: Bytes::new(),
                custom_metadata: Bytes::new(),
            }
        } else {
            let meta = meta_stream(stream);
            if self.last_revision(stream).is_none() && self.last_revision(&meta).is_none() {
                return Err(WriteError::WrongExpectedVersion { current: None });
            }
            // A soft delete replaces the metadata rather than amending it.
            self.metadata_record(&meta, serde_json::json!({ "$tb": DELETED_STREAM }))
        };
        let written = self.commit(vec![record])?;
        Ok(written.position.expect("a delete writes one event"))
    }

    /// Reads up to `count` visible events of `stream` from `from`.
    pub(crate) fn read_stream(
        &self,
        stream: &str,
        from: Revision,
        backwards: bool,
        count: u64,
    ) -> StreamRead {
        if self.is_tombstoned(stream) {
            return StreamRead::Deleted;
        }
        let Some(last) = self.last_revision(stream) else {
            return StreamRead::NotFound;
        };
        let metadata = self.metadata(stream);
        if metadata.truncate_before == Some(DELETED_STREAM) {
            return StreamRead::NotFound;
        }
        let min = min_visible(&metadata, last);
        let indices = &self.streams[stream];
        let visible = |revision: u64| {
            let record = &self.records[indices[revision as usize]];
            metadata
                .max_age
                .is_none_or(|age| record.created >= now_ticks() - ticks(age))
        };
        let take = count.min(usize::MAX as u64) as usize;
        let revisions: Vec<u64> = if backwards {
            let start = match from {
                Revision::Start => 0,
                Revision::End => last,
                Revision::At(r) => r.min(last),
            };
            (min..=start)
                .rev()
                .filter(|&r| visible(r))
                .take(take)
                .collect()
        } else {
            let start = match from {
                Revision::Start => min,
                Revision::End => last.saturating_add(1),
                Revision::At(r) => r.max(min),
            };
            (start..=last).filter(|&r| visible(r)).take(take).collect()
        };
        StreamRead::Events {
            events: revisions
                .into_iter()
                .map(|r| self.records[indices[r as usize]].clone())
                .collect(),
            last_revision: last,
        }
    }

    /// Reads up to `count` events of `$all` that `matches` accepts. Forwards a
    /// position is inclusive, backwards it is exclusive, as on the server.
    pub(crate) fn read_all(
        &self,
        from: LogPosition,
        backwards: bool,
        count: u64,
        matches: impl Fn(&Record) -> bool,
    ) -> Vec<Arc<Record>> {
        let take = count.min(usize::MAX as u64) as usize;
        let start = match from {
            LogPosition::Start => 0,
            LogPosition::End => self.records.len(),
            LogPosition::At(p) => self.records.partition_point(|r| r.position < p),
        };
        let matching = |r: &&Arc<Record>| matches(r);
        if backwards {
            let end = if matches!(from, LogPosition::Start) {
                0
            } else {
                start
            };
            self.records[..end]
                .iter()
                .rev()
                .filter(matching)
                .take(take)
                .cloned()
                .collect()
        } else {
            self.records[start..]
                .iter()
                .filter(matching)
                .take(take)
                .cloned()
                .collect()
        }
    }

    /// The index in the log of the first record after `position`, which is
    /// where a subscription from `position` starts.
    pub(crate) fn index_after(&self, position: LogPosition) -> usize {
        match position {
            LogPosition::Start => 0,
            LogPosition::End => self.records.len(),
            LogPosition::At(p) => self.records.partition_point(|r| r.position <= p),
        }
    }

    /// How many records the log holds.
    pub(crate) fn record_count(&self) -> usize {
        self.records.len()
    }

    /// Up to `max` records of the log from index `from`.
    pub(crate) fn records_from(&self, from: usize, max: usize) -> &[Arc<Record>] {
        let from = from.min(self.records.len());
        &self.records[from..self.records.len().min(from + max)]
    }

    /// Whether a read of its stream would return `record` now.
    pub(crate) fn is_visible_in_stream(&self, record: &Record) -> bool {
        let Some(last) = self.last_revision(&record.stream) else {
            return false;
        };
        let metadata = self.metadata(&record.stream);
        record.revision >= min_visible(&metadata, last)
            && metadata
                .max_age
                .is_none_or(|age| record.created >= now_ticks() - ticks(age))
    }

    fn decide(
        &self,
        stream: &str,
        expected: Expected,
        ids: &[Uuid],
    ) -> Result<Decision, WriteError> {
        if self.is_tombstoned(stream) {
            // Nothing can be added to a tombstoned stream; an empty write only checks.
            return match expected {
                Expected::Any | Expected::NoStream if ids.is_empty() => Ok(Decision::Write {
                    soft_deleted: false,
                }),
                _ => Err(WriteError::StreamDeleted),
            };
        }
        let current = self.last_revision(stream);
        let soft_deleted = self.is_soft_deleted(stream);
        let wrong = || WriteError::WrongExpectedVersion { current };

        match expected {
            Expected::Any | Expected::StreamExists => {
                if expected == Expected::StreamExists {
                    if soft_deleted {
                        return Err(WriteError::StreamDeleted);
                    }
                    if current.is_none() && self.last_revision(&meta_stream(stream)).is_none() {
                        return Err(wrong());
                    }
                }
                // Without a revision to compare, a write whose first event is
                // already in the stream is a retry of that write.
                let Some(&first) = ids.first().and_then(|id| self.ids.get(id)) else {
                    return Ok(Decision::Write { soft_deleted });
                };
                let first = &self.records[first];
                if first.stream != stream {
                    return Ok(Decision::Write { soft_deleted });
                }
                let indices = &self.streams[stream];
                let all_there = ids.iter().enumerate().all(|(i, id)| {
                    indices
                        .get(first.revision as usize + i)
                        .is_some_and(|&at| self.records[at].id == *id)
                });
                if all_there {
                    Ok(Decision::Idempotent {
                        last: indices[first.revision as usize + ids.len() - 1],
                    })
                } else {
                    Err(wrong())
                }
            }
            Expected::NoStream | Expected::Exact(_) => {
                let expected_number = expected.as_i64();
                let current_number = current.map_or(-1, |r| r as i64);
                if expected_number > current_number {
                    return Err(wrong());
                }
                if expected_number == current_number {
                    return Ok(Decision::Write { soft_deleted });
                }
                // Writing before the end is only a retry of events already there,
                // or (expecting no stream) a write that recreates a soft-deleted one.
                let recreates = expected == Expected::NoStream && soft_deleted;
                let indices = &self.streams[stream];
                let from = (expected_number + 1) as usize;
                let first_there = ids.first().is_some_and(|id| {
                    indices
                        .get(from)
                        .is_some_and(|&at| self.records[at].id == *id)
                });
                if !first_there {
                    return if recreates {
                        Ok(Decision::Write { soft_deleted })
                    } else {
                        Err(wrong())
                    };
                }
                let all_there = ids.iter().enumerate().all(|(i, id)| {
                    indices
                        .get(from + i)
                        .is_some_and(|&at| self.records[at].id == *id)
                });
                if all_there {
                    Ok(Decision::Idempotent {
                        last: indices[from + ids.len() - 1],
                    })
                } else {
                    Err(wrong())
                }
            }
        }
    }

    /// Writes `records` as one write, assigning their positions.
    fn commit(&mut self, mut records: Vec<Record>) -> io::Result<Written> {
        let mut frames = Vec::new();
        let mut position = self.end;
        let count = records.len();
        for (i, record) in records.iter_mut().enumerate() {
            record.position = position;
            let frame = persistence::encode(record, i + 1 == count);
            position += frame.len() as u64;
            frames.extend_from_slice(&frame);
        }
        if let Some(file) = &mut self.file {
            file.append(&frames)?;
        }
        self.end = position;

        let last = records.last().map(|r| (r.revision, r.position));
        for record in records {
            self.index(record);
        }
        self.appended.send_replace(self.records.len());
        Ok(Written {
            current: last.map(|(revision, _)| revision),
            position: last.map(|(_, position)| position),
        })
    }

    fn index(&mut self, record: Record) {
        let at = self.records.len();
        self.ids.insert(record.id, at);
        self.streams
            .entry(record.stream.clone())
            .or_default()
            .push(at);
        self.records.push(Arc::new(record));
    }

    /// Rewrites the metadata of a soft-deleted stream so that it shows events
    /// from revision `from` on, keeping its other properties.
    fn undelete(&mut self, stream: &str, from: u64) -> io::Result<()> {
        let meta = meta_stream(stream);
        let mut metadata = self
            .last_event(&meta)
            .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.data).ok())
            .filter(serde_json::Value::is_object)
            .unwrap_or_else(|| serde_json::json!({}));
        metadata["$tb"] = from.into();
        let record = self.metadata_record(&meta, metadata);
        self.commit(vec![record]).map(drop)
    }

    fn metadata_record(&self, meta_stream: &str, metadata: serde_json::Value) -> Record {
        Record {
            position: 0,
            stream: meta_stream.to_owned(),
            revision: self.next_revision(meta_stream),
            id: Uuid::new_v4(),
            event_type: METADATA_EVENT_TYPE.to_owned(),
            is_json: true,
            created: now_ticks(),
            data: Bytes::from(metadata.to_string()),
            custom_metadata: Bytes::new(),
        }
    }

    fn last_event(&self, stream: &str) -> Option<&Arc<Record>> {
        self.streams
            .get(stream)
            .and_then(|s| s.last())
            .map(|&at| &self.records[at])
    }

    /// The stream's last revision; `DELETED_STREAM` once tombstoned.
    fn last_revision(&self, stream: &str) -> Option<u64> {
        self.last_event(stream).map(|r| r.revision)
    }

    fn next_revision(&self, stream: &str) -> u64 {
        self.last_revision(stream).map_or(0, |r| r + 1)
    }

    fn is_tombstoned(&self, stream: &str) -> bool {
        self.last_revision(stream) == Some(DELETED_STREAM)
    }

    fn is_soft_deleted(&self, stream: &str) -> bool {
        self.metadata(stream).truncate_before == Some(DELETED_STREAM)
    }

    fn metadata(&self, stream: &str) -> StreamMetadata {
        if stream.starts_with("$$") {
            return StreamMetadata {
                max_count: Some(METASTREAM_MAX_COUNT),
                ..StreamMetadata::default()
            };
        }
        let Some(json) = self
            .last_event(&meta_stream(stream))
            .filter(|r| r.event_type == METADATA_EVENT_TYPE)
            .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.data).ok())
        else {
            return StreamMetadata::default();
        };
        let number = |key: &str| json.get(key).and_then(serde_json::Value::as_u64);
        StreamMetadata {
            truncate_before: number("$tb"),
            max_count: number("$maxCount"),
            max_age: number("$maxAge").map(Duration::from_secs),
        }
    }
}

/// The lowest revision `$tb` and `$maxCount` leave readable.
fn min_visible(metadata: &StreamMetadata, last: u64) -> u64 {
    let by_count = metadata
        .max_count
        .map_or(0, |n| (last + 1).saturating_sub(n));
    by_count.max(metadata.truncate_before.unwrap_or(0))
}

/// The metastream that holds `stream`'s metadata.
pub(crate) fn meta_stream(stream: &str) -> String {
    format!("$${stream}")
}

fn ticks(duration: Duration) -> i64 {
    (duration.as_nanos() / 100).min(i64::MAX as u128) as i64
}

fn now_ticks() -> i64 {
    ticks(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}
