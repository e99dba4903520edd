use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventStore};

use crate::domain::Actor;
use crate::metrics::METRICS;
use crate::store::{metadata, EventRepository, Store};

/// Attempts before a version conflict is given up as a 409 (I4).
const ATTEMPTS: usize = 5;

/// Runs commands against one aggregate type: load, decide, append, with retries on conflict.
pub struct CommandBus<A: Aggregate> {
    store: PersistedEventStore<EventRepository, A>,
}

impl<A> CommandBus<A>
where
    A: Aggregate<Services = ()>,
    A::Command: Clone,
{
    /// A bus appending to `store`.
    pub fn new(store: &Store) -> Self {
        Self {
            store: store.event_store::<A>(),
        }
    }

    /// Decides `commands` in order against one loaded aggregate and appends all their events
    /// in one transaction; returns how many were appended. A version conflict (another writer
    /// appended first) reloads and decides again, so a retried command is never lost.
    pub async fn execute(
        &self,
        id: &str,
        commands: &[A::Command],
        actor: &Actor,
    ) -> Result<usize, AggregateError<A::Error>> {
        let mut attempt = 1;
        loop {
            let mut context = self.store.load_aggregate(id).await?;
            let sink = EventSink::default();
            for command in commands {
                context
                    .aggregate()
                    .handle(command.clone(), &(), &sink)
                    .await
                    .map_err(AggregateError::UserError)?;
            }
            let events = sink.collect().await;
            if events.is_empty() {
                return Ok(0);
            }
            let count = events.len();
            let appending = METRICS.append_seconds.start_timer();
            let committed = self.store.commit(events, context, metadata(actor)).await;
            appending.observe_duration();
            match committed {
                Ok(_) => return Ok(count),
                Err(AggregateError::AggregateConflict) if attempt < ATTEMPTS => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }
}
