//! The data directory: one append-only file holding every event in log order.
//!
//! Each event is a length-delimited protobuf frame. An event's position in
//! `$all` is the byte offset of its frame, which is how a real server's
//! positions behave too (offsets into its transaction file): strictly
//! increasing, not contiguous, and stable across restarts. The in-memory mode
//! computes the same offsets without writing them anywhere.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use prost::bytes::Bytes;
use prost::Message;
use uuid::Uuid;

use crate::store::Record;

/// Identifies the file format, and keeps the first event off position 0 so that
/// "subscribe after position 0" cannot skip it.
pub(crate) const HEADER: &[u8] = b"kurrentdb-test-server log v1\n";

const FILE_NAME: &str = "events.log";

#[derive(Clone, PartialEq, Message)]
struct StoredEvent {
    #[prost(string, tag = "1")]
    stream: String,
    #[prost(uint64, tag = "2")]
    revision: u64,
    #[prost(bytes = "vec", tag = "3")]
    id: Vec<u8>,
    #[prost(string, tag = "4")]
    event_type: String,
    #[prost(bool, tag = "5")]
    is_json: bool,
    #[prost(int64, tag = "6")]
    created: i64,
    #[prost(bytes = "bytes", tag = "7")]
    data: Bytes,
    #[prost(bytes = "bytes", tag = "8")]
    custom_metadata: Bytes,
    /// Marks the last event of one write, so that a write torn by a crash is
    /// dropped whole on reload: appends are atomic on a real server.
    #[prost(bool, tag = "9")]
    ends_write: bool,
}

/// Encodes one event as it is laid out in the log file.
pub(crate) fn encode(record: &Record, ends_write: bool) -> Vec<u8> {
    StoredEvent {
        stream: record.stream.clone(),
        revision: record.revision,
        id: record.id.as_bytes().to_vec(),
        event_type: record.event_type.clone(),
        is_json: record.is_json,
        created: record.created,
        data: record.data.clone(),
        custom_metadata: record.custom_metadata.clone(),
        ends_write,
    }
    .encode_length_delimited_to_vec()
}

/// The open log file of a data directory.
#[derive(Debug)]
pub(crate) struct LogFile {
    file: File,
}

impl LogFile {
    /// Opens (or creates) the log in `dir` and returns every complete write in
    /// it, with the offset the next frame goes to.
    pub(crate) fn open(dir: &Path) -> io::Result<(Self, Vec<Record>, u64)> {
        std::fs::create_dir_all(dir)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(dir.join(FILE_NAME))?;
        let mut contents = Vec::new();
        file.read_to_end(&mut contents)?;

        if contents.is_empty() {
            file.write_all(HEADER)?;
            file.sync_all()?;
            return Ok((Self { file }, Vec::new(), HEADER.len() as u64));
        }
        if !contents.starts_with(HEADER) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is not a kurrentdb-test-server log",
                    dir.join(FILE_NAME).display()
                ),
            ));
        }

        let (records, complete_len) = decode_all(&contents);
        if complete_len < contents.len() {
            // Only a crash mid-write leaves a tail; the client never got an
            // answer for it, so dropping it is what a real server's recovery does.
            file.set_len(complete_len as u64)?;
            file.seek(SeekFrom::End(0))?;
            file.sync_all()?;
        }
        Ok((Self { file }, records, complete_len as u64))
    }

    /// Writes one append's frames and waits until they are on disk, so that an
    /// acknowledged write survives the process.
    pub(crate) fn append(&mut self, frames: &[u8]) -> io::Result<()> {
        self.file.write_all(frames)?;
        self.file.sync_data()
    }
}

/// Decodes the frames after the header, returning the events of complete writes
/// and the file length they end at.
fn decode_all(contents: &[u8]) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut pending = Vec::new();
    let mut offset = HEADER.len();
    let mut complete_len = offset;

    while offset < contents.len() {
        let mut rest = &contents[offset..];
        let before = rest.len();
        let Ok(stored) = StoredEvent::decode_length_delimited(&mut rest) else {
            break;
        };
        let Ok(id) = Uuid::from_slice(&stored.id) else {
            break;
        };
        pending.push(Record {
            position: offset as u64,
            stream: stored.stream,
            revision: stored.revision,
            id,
            event_type: stored.event_type,
            is_json: stored.is_json,
            created: stored.created,
            data: stored.data,
            custom_metadata: stored.custom_metadata,
        });
        offset += before - rest.len();
        if stored.ends_write {
            records.append(&mut pending);
            complete_len = offset;
        }
    }
    (records, complete_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(revision: u64) -> Record {
        Record {
            position: 0,
            stream: "torn".to_owned(),
            revision,
            id: Uuid::new_v4(),
            event_type: "Torn".to_owned(),
            is_json: false,
            created: 0,
            data: Bytes::from_static(b"payload"),
            custom_metadata: Bytes::new(),
        }
    }

    #[test]
    fn a_write_torn_by_a_crash_is_dropped_whole_on_reload() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, records, end) = LogFile::open(dir.path()).unwrap();
        assert!(records.is_empty());
        assert_eq!(end, HEADER.len() as u64);

        let whole = encode(&record(0), true);
        log.append(&whole).unwrap();
        // Two events of one write, the second cut short: neither may survive.
        let mut torn = encode(&record(1), false);
        let second = encode(&record(2), true);
        torn.extend_from_slice(&second[..second.len() / 2]);
        log.append(&torn).unwrap();
        drop(log);

        let (_, records, end) = LogFile::open(dir.path()).unwrap();
        assert_eq!(records.iter().map(|r| r.revision).collect::<Vec<_>>(), [0]);
        assert_eq!(records[0].position, HEADER.len() as u64);
        assert_eq!(end, (HEADER.len() + whole.len()) as u64);
        let on_disk = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len();
        assert_eq!(
            on_disk, end,
            "the torn tail is cut off, so the next write follows the last whole one"
        );
    }

    #[test]
    fn a_file_that_is_not_a_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"something else").unwrap();
        let error = LogFile::open(dir.path()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
