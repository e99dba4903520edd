//! The command side: commands run against an aggregate loaded from its events (load, decide,
//! append), one aggregate at a time or, for a harvest's accounts, thousands at once.

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, DomainEvent, EventStore};

use crate::domain::account::{Account, AccountCommand, AccountError};
use crate::domain::organization::Organization;
use crate::domain::Actor;
use crate::metrics::METRICS;
use crate::projections::{AccountFact, Prepared, Projector};
use crate::store::{EventRepository, Metadata, NewEvent, Store};

/// Attempts before a version conflict is given up as a 409 (I4).
const ATTEMPTS: usize = 5;

/// Accounts whose events [`CommandBus::execute_each`] appends in one transaction.
const AGGREGATES_PER_APPEND: usize = 2_000;

/// The command buses of both aggregates.
pub struct Commands {
    organizations: CommandBus<Organization>,
    accounts: CommandBus<Account>,
}

impl Commands {
    /// Buses appending to `store`.
    pub fn new(store: &Store) -> Self {
        Self {
            organizations: CommandBus::new(store),
            accounts: CommandBus::new(store),
        }
    }

    /// Commands to organizations.
    pub fn organizations(&self) -> &CommandBus<Organization> {
        &self.organizations
    }

    /// Commands to accounts.
    pub fn accounts(&self) -> &CommandBus<Account> {
        &self.accounts
    }
}

/// Runs commands against one aggregate type: load, decide, append, with retries on conflict.
pub struct CommandBus<A: Aggregate> {
    store: PersistedEventStore<EventRepository, A>,
    log: Store,
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
            log: store.clone(),
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
            let committed = self
                .store
                .commit(events, context, Metadata::now(actor).fields())
                .await;
            appending.observe_duration();
            match committed {
                Ok(_) => return Ok(count),
                Err(AggregateError::AggregateConflict) if attempt < ATTEMPTS => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }
}

/// One chunk of [`CommandBus::execute_each`]'s work, decided: the events its commands make,
/// as appended and as the read tables apply them.
struct Decided {
    work: Vec<(String, Vec<AccountCommand>)>,
    metadata: Metadata,
    events: Vec<NewEvent>,
    // The rows the events make, when the log shares a transaction with the read tables.
    prepared: Option<Prepared>,
}

impl CommandBus<Account> {
    /// Runs each account's commands as [`Self::execute`] would, for many accounts at once:
    /// their histories are read in bulk and their events appended in multi-row statements, a
    /// couple of thousand accounts to a transaction, which also applies them to the read
    /// tables when those are up to date ([`Projector::commit_appended`]). While one
    /// transaction writes, the next accounts' commands are decided, and the rows their events
    /// make are prepared ([`Prepared`]), on another thread. A transaction in which another
    /// writer got to one of its accounts first appends nothing; its accounts then go through
    /// [`Self::execute`] one by one, so no command is lost (I4). Returns how many events were
    /// appended.
    ///
    /// With the log in KurrentDB, each account's events are one append expecting its stream's
    /// revision, many in flight at once; the read tables then catch up from the log, and the
    /// accounts another writer got to first go through [`Self::execute`] one by one.
    pub async fn execute_each(
        &self,
        mut work: impl Iterator<Item = (String, Vec<AccountCommand>)>,
        actor: &Actor,
        projector: &Projector,
    ) -> Result<usize, AggregateError<AccountError>> {
        let mut appended = 0;
        let mut deciding = None;
        loop {
            let chunk: Vec<_> = work.by_ref().take(AGGREGATES_PER_APPEND).collect();
            let next = (!chunk.is_empty())
                .then(|| tokio::spawn(decide(self.log.clone(), chunk, Metadata::now(actor))));
            if let Some(decided) = deciding.take() {
                appended += self.append(decided, actor, projector).await?;
            }
            let Some(next) = next else {
                return Ok(appended);
            };
            deciding = Some(next.await.map_err(unexpected)??);
        }
    }

    /// Appends a decided chunk and applies it to the read tables, or, when another writer
    /// got to one of its accounts first, runs its accounts' commands one by one.
    async fn append(
        &self,
        decided: Decided,
        actor: &Actor,
        projector: &Projector,
    ) -> Result<usize, AggregateError<AccountError>> {
        if decided.events.is_empty() {
            return Ok(0);
        }
        let appending = METRICS.append_seconds.start_timer();
        #[cfg(feature = "kurrentdb")]
        if let Some(kurrent) = self.log.kurrent() {
            let conflicts = kurrent
                .append(Account::TYPE, &decided.events, &decided.metadata)
                .await
                .map_err(unexpected)?;
            appending.observe_duration();
            let mut appended = decided.events.len();
            for (id, commands) in decided.work.iter().filter(|(id, _)| conflicts.contains(id)) {
                appended -= decided
                    .events
                    .iter()
                    .filter(|e| e.aggregate_id == *id)
                    .count();
                appended += self.execute(id, commands, actor).await?;
            }
            projector.catch_up().await.map_err(unexpected)?;
            return Ok(appended);
        }
        let Some(prepared) = decided.prepared else {
            return Err(AggregateError::UnexpectedError(
                "rows were not prepared for a log that shares their transaction".into(),
            ));
        };
        let mut tx = self.log.pool().begin().await.map_err(unexpected)?;
        let positions = self
            .log
            .append(&mut tx, Account::TYPE, &decided.events, &decided.metadata)
            .await
            .map_err(unexpected)?;
        let Some(positions) = positions else {
            drop(tx);
            appending.observe_duration();
            let mut appended = 0;
            for (id, commands) in &decided.work {
                appended += self.execute(id, commands, actor).await?;
            }
            return Ok(appended);
        };
        projector
            .commit_appended(tx, positions, prepared)
            .await
            .map_err(unexpected)?;
        appending.observe_duration();
        Ok(decided.events.len())
    }
}

/// Decides `work` against its accounts' histories, read in bulk from `log`.
async fn decide(
    log: Store,
    work: Vec<(String, Vec<AccountCommand>)>,
    metadata: Metadata,
) -> Result<Decided, AggregateError<AccountError>> {
    let ids: Vec<&str> = work.iter().map(|(id, _)| id.as_str()).collect();
    let histories = log
        .histories(Account::TYPE, &ids)
        .await
        .map_err(unexpected)?;
    let mut events = Vec::new();
    let mut facts = Vec::new();
    for (id, commands) in &work {
        let mut account = Account::default();
        let history = histories.get(id).map(Vec::as_slice).unwrap_or_default();
        for payload in history {
            let event = serde_json::from_str(payload)
                .map_err(|e| AggregateError::DeserializationError(e.into()))?;
            account.apply(event);
        }
        let sink = EventSink::default();
        for command in commands {
            account
                .handle(command.clone(), &(), &sink)
                .await
                .map_err(AggregateError::UserError)?;
        }
        for (sequence, event) in (history.len() + 1..).zip(sink.collect().await) {
            events.push(NewEvent {
                aggregate_id: id.clone(),
                sequence: i64::try_from(sequence).map_err(unexpected)?,
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload: serde_json::to_string(&event)
                    .map_err(|e| AggregateError::DeserializationError(e.into()))?,
            });
            facts.push(AccountFact {
                account_id: id.clone(),
                at: metadata.at,
                event,
            });
        }
    }
    // Rows are made ready only for a log that commits with them.
    let prepared = if log.events_beside_read_tables() {
        Some(Prepared::new(&log, &facts).await.map_err(unexpected)?)
    } else {
        None
    };
    Ok(Decided {
        work,
        metadata,
        events,
        prepared,
    })
}

fn unexpected<T: std::error::Error>(
    e: impl std::error::Error + Send + Sync + 'static,
) -> AggregateError<T> {
    AggregateError::UnexpectedError(Box::new(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Sealed;
    use crate::domain::account::badges;
    use crate::domain::account::RecordAccountSeen;
    use crate::domain::organization::{
        Filters, OrganizationCommand, RegisterOrganization, RenameOrganization,
    };
    use crate::domain::{AccountId, AccountState, OrgId, OrgUnit};
    use crate::projections::accounts;

    /// An organization event landing between a chunk's preparation and its transaction: the
    /// rows made ahead are not written, and catch-up makes them anew, with the new name.
    #[tokio::test]
    async fn rows_made_ahead_are_not_written_once_their_organization_changed() {
        let store = Store::scratch().await.unwrap();
        let organizations = CommandBus::<Organization>::new(&store);
        let bus = CommandBus::<Account>::new(&store);
        let projector = Projector::new(store.clone());
        let org_id = OrgId::try_from("o-abcdefghij").unwrap();
        let account_id = AccountId::try_from("111122223333").unwrap();
        let actor = Actor::harvest(&org_id);
        let register = OrganizationCommand::Register(RegisterOrganization {
            org_id: org_id.clone(),
            nickname: "before".into(),
            management_account_id: account_id.clone(),
            credentials: Sealed::from_stored("sealed".into()),
            org_role_account: Default::default(),
            filters: Filters::default(),
        });
        organizations
            .execute(org_id.as_str(), &[register], &actor)
            .await
            .unwrap();
        projector.catch_up().await.unwrap();
        let seen = AccountCommand::RecordAccountSeen(RecordAccountSeen {
            organization_id: org_id.clone(),
            name: "prod".into(),
            email: "prod@example.com".into(),
            state: AccountState::Active,
            org_path: [OrgUnit {
                id: "r-ab12".try_into().unwrap(),
                name: "Root".into(),
            }]
            .into(),
        });
        let work = vec![(account_id.to_string(), vec![seen])];

        let decided = decide(store.clone(), work, Metadata::now(&actor))
            .await
            .unwrap();
        let rename = OrganizationCommand::Rename(RenameOrganization {
            nickname: "after".into(),
        });
        organizations
            .execute(org_id.as_str(), &[rename], &actor)
            .await
            .unwrap();
        projector.catch_up().await.unwrap();
        assert_eq!(bus.append(decided, &actor, &projector).await.unwrap(), 1);

        assert!(accounts::get(store.pool(), &account_id)
            .await
            .unwrap()
            .is_none());
        assert_eq!(projector.catch_up().await.unwrap(), 1);
        let view = accounts::get(store.pool(), &account_id)
            .await
            .unwrap()
            .unwrap();
        let (name, _) = view.badges.get(badges::ORGANIZATION_NAME).unwrap();
        assert_eq!(name, "after");
    }
}
