//! Server-side filters of `$all` reads and subscriptions.

use regex::Regex;
use tonic::Status;

use crate::proto::event_store::client::streams::read_req::options::filter_options::{
    self, Expression,
};
use crate::proto::event_store::client::streams::read_req::options::FilterOptions;
use crate::store::Record;

/// The search window when the client leaves it to the server (`count`):
/// the server's `DefaultReadBatchSize`.
const DEFAULT_WINDOW: u64 = 32;

#[derive(Debug)]
enum Matcher {
    Prefixes(Vec<String>),
    Regex(Regex),
}

impl Matcher {
    /// As on the server, a regex, when given, wins over the prefixes.
    fn new(expression: &Expression) -> Result<Self, Status> {
        if expression.regex.is_empty() {
            return Ok(Matcher::Prefixes(expression.prefix.clone()));
        }
        Regex::new(&expression.regex)
            .map(Matcher::Regex)
            .map_err(|e| Status::invalid_argument(format!("invalid filter regex: {e}")))
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Prefixes(prefixes) => prefixes.iter().any(|p| value.starts_with(p.as_str())),
            Matcher::Regex(regex) => regex.is_match(value),
        }
    }
}

/// A filter on stream names or on event types.
#[derive(Debug)]
pub(crate) struct Filter {
    on_stream: bool,
    matcher: Matcher,
    /// How many events a subscription considers between two checkpoints:
    /// the search window times the client's multiplier, as on the server.
    pub(crate) checkpoint_interval: u64,
}

impl Filter {
    /// The filter a read request carries.
    pub(crate) fn new(options: &FilterOptions) -> Result<Self, Status> {
        let (on_stream, expression) = match &options.filter {
            Some(filter_options::Filter::StreamIdentifier(e)) => (true, e),
            Some(filter_options::Filter::EventType(e)) => (false, e),
            None => {
                return Err(Status::invalid_argument(
                    "a filter needs a stream or an event type expression",
                ))
            }
        };
        let window = match options.window {
            Some(filter_options::Window::Max(max)) => u64::from(max).max(1),
            Some(filter_options::Window::Count(_)) | None => DEFAULT_WINDOW,
        };
        let multiplier = u64::from(options.checkpoint_interval_multiplier);
        if multiplier == 0 {
            return Err(Status::invalid_argument(
                "checkpointIntervalMultiplier must be positive",
            ));
        }
        Ok(Filter {
            on_stream,
            matcher: Matcher::new(expression)?,
            checkpoint_interval: window * multiplier,
        })
    }

    /// Whether `record` passes.
    pub(crate) fn matches(&self, record: &Record) -> bool {
        self.matcher.matches(if self.on_stream {
            &record.stream
        } else {
            &record.event_type
        })
    }
}
