//! Account changes for subscriptions: one reader of the log per process, shared by every
//! subscription, hands each organization's account events to that organization's
//! subscribers. A subscriber's wait does not grow with other organizations' events: the
//! reader reads the log a page after another while pages come full, and a page costs two
//! queries whatever it holds (the events, then the organizations of the accounts they name).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::Deserialize;
use tokio::sync::{broadcast, watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::domain::account::{Account, AccountEvent};
use crate::domain::{AccountId, OrgId};
use crate::projections;
use crate::store::{Store, StoreError, StoredEvent};

/// How many events the reader reads at a time.
const PAGE: i64 = 1000;
/// How long the reader waits for this process's projector before looking at the log anyway,
/// for the events other instances append.
const POLL: Duration = Duration::from_secs(1);
/// How many changes a subscriber may fall behind before its subscription ends.
const BACKLOG: usize = 4096;

/// An account event as a subscription delivers it.
#[derive(Debug, Clone)]
pub struct AccountChangeEvent {
    /// The event's position in the log.
    pub sequence: i64,
    /// The account.
    pub account_id: String,
    /// The event's type.
    pub event_type: String,
    /// When it was appended.
    pub at: DateTime<Utc>,
}

/// The reader's subscribers, by organization, and where it reads from.
#[derive(Default)]
struct Readers {
    /// After which position the reader reads next; none while nobody subscribes.
    cursor: Option<i64>,
    by_organization: HashMap<OrgId, broadcast::Sender<AccountChangeEvent>>,
}

/// The process's one reader of account changes.
#[derive(Default)]
pub(super) struct ChangeFeed {
    readers: Mutex<Readers>,
    subscribed: Notify,
}

impl ChangeFeed {
    /// The account events of `org` after position `after`, from the shared reader; a
    /// subscriber drops those at or before the last it had, which a rewind for a newer
    /// subscriber may hand it again.
    pub(super) fn subscribe(
        &self,
        org: &OrgId,
        after: i64,
    ) -> broadcast::Receiver<AccountChangeEvent> {
        let mut readers = self.readers.lock().expect("change feed poisoned");
        readers.cursor = Some(readers.cursor.map_or(after, |cursor| cursor.min(after)));
        let receiver = readers
            .by_organization
            .entry(org.clone())
            .or_insert_with(|| broadcast::channel(BACKLOG).0)
            .subscribe();
        drop(readers);
        self.subscribed.notify_one();
        receiver
    }

    /// Reads the log while anyone subscribes, until `shutdown`.
    pub(super) async fn run(
        self: Arc<Self>,
        store: Store,
        mut projected: watch::Receiver<i64>,
        shutdown: CancellationToken,
    ) {
        loop {
            let full = match self.cursor() {
                Some(cursor) => match self.read_page(&store, cursor).await {
                    Ok(full) => full,
                    Err(e) => {
                        tracing::warn!(error = %e, "the change feed cannot read the log");
                        false
                    }
                },
                None => false,
            };
            if full {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.subscribed.notified() => {}
                _ = tokio::time::timeout(POLL, projected.changed()) => {}
            }
        }
    }

    /// Where to read next, after forgetting organizations nobody subscribes to any more.
    fn cursor(&self) -> Option<i64> {
        let mut readers = self.readers.lock().expect("change feed poisoned");
        readers
            .by_organization
            .retain(|_, sender| sender.receiver_count() > 0);
        if readers.by_organization.is_empty() {
            readers.cursor = None;
        }
        readers.cursor
    }

    /// Reads and hands out one page after `cursor`; whether it came full.
    async fn read_page(&self, store: &Store, cursor: i64) -> Result<bool, StoreError> {
        let events = store.events_after(cursor, PAGE).await?;
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(false);
        };
        let full = events.len() as i64 == PAGE;
        let changes = organizations_of(store, events).await?;
        let mut readers = self.readers.lock().expect("change feed poisoned");
        for (org, change) in changes {
            if let Some(sender) = readers.by_organization.get(&org) {
                // No receiver left is not an error: the next page forgets the organization.
                let _ = sender.send(change);
            }
        }
        // A subscription made meanwhile from an earlier position moved the cursor back below
        // this page: it stays there (subscribers drop what they had already).
        readers.cursor = match readers.cursor {
            Some(moved) if moved < cursor => Some(moved),
            _ => Some(last),
        };
        Ok(full)
    }
}

/// The account events of `events`, each with the organization it belongs to: the one it
/// names when it changes membership, else the one listing the account now (read once for
/// all of them), or the one a membership event before it in the page named.
async fn organizations_of(
    store: &Store,
    events: Vec<StoredEvent>,
) -> Result<Vec<(OrgId, AccountChangeEvent)>, StoreError> {
    let mut named = Vec::with_capacity(events.len());
    let mut unnamed = Vec::new();
    for event in events
        .into_iter()
        .filter(|e| e.aggregate_type == Account::TYPE)
    {
        let org = AccountEvent::deserialize(&event.payload)?
            .organization_named()
            .cloned();
        if org.is_none() {
            unnamed.push(event.aggregate_id.clone());
        }
        named.push((org, event));
    }
    let ids: Vec<AccountId> = unnamed
        .into_iter()
        .filter_map(|id| AccountId::try_from(id).ok())
        .collect();
    let mut listed = projections::accounts::organizations_of(store.pool(), &ids).await?;
    let mut changes = Vec::with_capacity(named.len());
    for (org, event) in named {
        let org = match org {
            Some(org) => {
                if let Ok(id) = AccountId::try_from(event.aggregate_id.as_str()) {
                    listed.insert(id, org.clone());
                }
                Some(org)
            }
            None => AccountId::try_from(event.aggregate_id.as_str())
                .ok()
                .and_then(|id| listed.get(&id).cloned()),
        };
        if let Some(org) = org {
            changes.push((
                org,
                AccountChangeEvent {
                    sequence: event.seq,
                    account_id: event.aggregate_id,
                    event_type: event.event_type,
                    at: event.metadata.at,
                },
            ));
        }
    }
    Ok(changes)
}
