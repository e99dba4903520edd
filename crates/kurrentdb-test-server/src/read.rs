//! Reads with a count: of one stream, or of `$all`.

use tonic::Status;

use crate::convert::{read_event, stream_identifier, stream_name};
use crate::errors;
use crate::filter::Filter;
use crate::proto::event_store::client::streams::read_req::options::{
    all_options, stream_options, FilterOption, ReadDirection, StreamOption,
};
use crate::proto::event_store::client::streams::read_req::Options;
use crate::proto::event_store::client::streams::read_resp::{self, Content};
use crate::proto::event_store::client::streams::ReadResp;
use crate::store::{LogPosition, Revision, Store, StreamRead};

/// Every response of a read, or the error the call fails with.
///
/// Errors are returned before any message, as the server's are (its read
/// fails the call before writing), so the client sees them on the call itself.
pub(crate) fn read(store: &Store, options: &Options, count: u64) -> Result<Vec<ReadResp>, Status> {
    let backwards = options.read_direction == ReadDirection::Backwards as i32;
    let form = options
        .uuid_option
        .as_ref()
        .and_then(|o| o.content.as_ref());
    let event = |record| response(Content::Event(read_event(record, form)));

    match &options.stream_option {
        Some(StreamOption::Stream(stream_options)) => {
            if matches!(options.filter_option, Some(FilterOption::Filter(_))) {
                return Err(Status::invalid_argument(
                    "a read of one stream takes no filter",
                ));
            }
            let stream = stream_name(stream_options.stream_identifier.as_ref())?;
            let from = revision(stream_options.revision_option.as_ref())?;
            match store.read_stream(&stream, from, backwards, count) {
                StreamRead::NotFound => Ok(vec![response(Content::StreamNotFound(
                    read_resp::StreamNotFound {
                        stream_identifier: Some(stream_identifier(&stream)),
                    },
                ))]),
                StreamRead::Deleted => Err(errors::stream_deleted(&stream)),
                StreamRead::Events {
                    events,
                    last_revision,
                } => {
                    let mut responses: Vec<ReadResp> = events.iter().map(|r| event(r)).collect();
                    // Clients that declare compatibility 1 expect the stream's
                    // last revision after the events.
                    if options
                        .control_option
                        .as_ref()
                        .is_some_and(|c| c.compatibility >= 1)
                    {
                        responses.push(response(Content::LastStreamPosition(last_revision)));
                    }
                    Ok(responses)
                }
            }
        }
        Some(StreamOption::All(all_options)) => {
            let from = position(all_options.all_option.as_ref())?;
            let filter = filter(options)?;
            let events = store.read_all(from, backwards, count, |r| {
                filter.as_ref().is_none_or(|f| f.matches(r))
            });
            Ok(events.iter().map(|r| event(r)).collect())
        }
        None => Err(Status::invalid_argument("a read names a stream or $all")),
    }
}

/// The filter of a read of `$all`, if it has one.
pub(crate) fn filter(options: &Options) -> Result<Option<Filter>, Status> {
    match &options.filter_option {
        Some(FilterOption::Filter(f)) => Filter::new(f).map(Some),
        Some(FilterOption::NoFilter(_)) | None => Ok(None),
    }
}

/// Where a read of a stream starts.
pub(crate) fn revision(
    option: Option<&stream_options::RevisionOption>,
) -> Result<Revision, Status> {
    match option {
        Some(stream_options::RevisionOption::Start(_)) => Ok(Revision::Start),
        Some(stream_options::RevisionOption::End(_)) => Ok(Revision::End),
        Some(stream_options::RevisionOption::Revision(r)) => Ok(Revision::At(*r)),
        None => Err(Status::invalid_argument(
            "a stream read needs a revision option",
        )),
    }
}

/// Where a read of `$all` starts. A position's commit and prepare parts are
/// equal on a single node, so the commit part is the one compared.
pub(crate) fn position(option: Option<&all_options::AllOption>) -> Result<LogPosition, Status> {
    match option {
        Some(all_options::AllOption::Start(_)) => Ok(LogPosition::Start),
        Some(all_options::AllOption::End(_)) => Ok(LogPosition::End),
        Some(all_options::AllOption::Position(p)) => Ok(LogPosition::At(p.commit_position)),
        None => Err(Status::invalid_argument(
            "a read of $all needs a position option",
        )),
    }
}

/// A read response carrying `content`.
pub(crate) fn response(content: Content) -> ReadResp {
    ReadResp {
        content: Some(content),
    }
}
