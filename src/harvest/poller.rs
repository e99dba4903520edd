//! The pollers of organizations' events queues (R16): while this instance schedules, one
//! long-polls each configured queue, so that one poller per organization runs across every
//! instance sharing the store. Each message is refreshed and then deleted: a crash between
//! the two leaves it to be delivered again, which changes nothing the second time. A message
//! that is not an Organizations event, or names nothing orgsync lists, is deleted unread by
//! AWS; a refresh AWS refuses leaves its message for a later delivery.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::aws::{QueueMessage, Redaction, RoleSession};
use crate::domain::organization::Credentials;
use crate::domain::{OrgId, QueueUrl};
use crate::metrics::METRICS;
use crate::projections::organizations;
use crate::store::queue_polls;

use super::cloudtrail;
use super::pass::redaction;
use super::{HarvestError, Harvester};

/// How long an org role session is used before it is assumed again (sessions last 15 min
/// at the least).
const SESSION_REUSE: Duration = Duration::from_secs(600);

/// The pollers this instance runs, by organization.
#[derive(Default)]
pub(super) struct Pollers {
    running: Mutex<HashMap<OrgId, (QueueUrl, CancellationToken)>>,
}

impl Pollers {
    /// Runs one poller for each of `wanted` and no other: new queues get one, pollers whose
    /// organization or queue went are stopped.
    pub(super) fn keep(&self, harvester: &Harvester, wanted: Vec<(OrgId, QueueUrl)>) {
        let mut running = self.running.lock().expect("pollers poisoned");
        let wanted: HashMap<OrgId, QueueUrl> = wanted.into_iter().collect();
        running.retain(|org, (url, stop)| {
            let keep = wanted.get(org) == Some(url);
            if !keep {
                stop.cancel();
            }
            keep
        });
        for (org, url) in wanted {
            if running.contains_key(&org) {
                continue;
            }
            let stop = harvester.0.shutdown.child_token();
            running.insert(org.clone(), (url.clone(), stop.clone()));
            let poller = poll(harvester.clone(), org, url, stop);
            harvester.0.tasks.spawn_on(poller, &harvester.0.runtime);
        }
    }
}

impl Harvester {
    /// Runs a poller for each organization with an events queue, and no other; with
    /// `leading` false (another instance schedules), none.
    pub(super) async fn keep_pollers(&self, leading: bool) -> Result<(), HarvestError> {
        let wanted = if leading {
            organizations::events_queues(self.0.store.pool()).await?
        } else {
            Vec::new()
        };
        self.0.pollers.keep(self, wanted);
        Ok(())
    }
}

/// An org role session, with what its errors must not show (R14).
struct OrgSession {
    session: RoleSession,
    redaction: Redaction,
    since: Instant,
}

/// Reads `url` until `stop`: each read waits up to `harvest.queue_wait`; after a failed read
/// it waits a tick, with the error shown on the organization meanwhile.
async fn poll(harvester: Harvester, org: OrgId, url: QueueUrl, stop: CancellationToken) {
    let h = &harvester.0;
    let mut current: Option<OrgSession> = None;
    loop {
        let read = async {
            let session = match current.take() {
                Some(s) if s.since.elapsed() < SESSION_REUSE => s,
                _ => assume(&harvester, &org).await?,
            };
            let received = h
                .aws
                .api()
                .receive_messages(&session.session, &url, h.settings.queue_wait)
                .await
                .map_err(|e| e.redacted(&session.redaction));
            Ok::<_, String>((session, received?))
        };
        let read = tokio::select! {
            () = stop.cancelled() => return,
            read = read => read,
        };
        let error = read.as_ref().err().cloned();
        let recorded =
            queue_polls::polled(h.store.pool(), &org, &url, Utc::now(), error.as_deref()).await;
        if let Err(e) = recorded {
            tracing::warn!(org_id = %org, error = %e, "cannot record the events queue's read");
        }
        match read {
            Ok((session, messages)) => {
                for message in messages {
                    handle(&harvester, &org, &url, &session.session, message).await;
                }
                current = Some(session);
            }
            Err(error) => {
                tracing::warn!(org_id = %org, %error, "cannot read the events queue");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(h.settings.tick) => {}
                }
            }
        }
    }
}

/// Assumes the organization's org role; errors redacted.
async fn assume(harvester: &Harvester, org: &OrgId) -> Result<OrgSession, String> {
    let h = &harvester.0;
    let record = organizations::record(h.store.pool(), org)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("organization {org} is not registered"))?;
    let credentials = h
        .keys
        .open_json::<Credentials>(&record.credentials)
        .map_err(|e| e.to_string())?;
    let credentials = credentials.expose();
    let redaction = redaction(credentials);
    let session = h
        .aws
        .assume_org_role(&credentials.org_role)
        .await
        .map_err(|e| e.redacted(&redaction))?;
    Ok(OrgSession {
        session,
        redaction,
        since: Instant::now(),
    })
}

/// Refreshes what one message names and deletes it; counts what came of it.
async fn handle(
    harvester: &Harvester,
    org: &OrgId,
    url: &QueueUrl,
    session: &RoleSession,
    message: QueueMessage,
) {
    let outcome = match cloudtrail::parse(&message.body) {
        Err(unreadable) => {
            // Its body is not logged: it may be anything.
            tracing::warn!(org_id = %org, message_id = %message.id, reason = %unreadable, "deleting an unreadable events message");
            "unreadable"
        }
        Ok(notice) if notice.subject.is_none() => "ignored",
        Ok(notice) => match harvester.refresh(org, &notice, session).await {
            Ok(changes) => {
                tracing::debug!(org_id = %org, event = %notice.event_name, changes, "refreshed");
                "applied"
            }
            Err(e) => {
                tracing::warn!(org_id = %org, event = %notice.event_name, error = %e, "refresh failed; the message comes again");
                METRICS
                    .queue_messages
                    .with_label_values(&[org.as_str(), "failed"])
                    .inc();
                return;
            }
        },
    };
    fail::fail_point!("events-before-delete", |_| ());
    match harvester
        .0
        .aws
        .api()
        .delete_message(session, url, &message.receipt)
        .await
    {
        Ok(()) => METRICS
            .queue_messages
            .with_label_values(&[org.as_str(), outcome])
            .inc(),
        Err(e) => {
            tracing::warn!(org_id = %org, error = %e, "cannot delete an events message; it comes again")
        }
    }
}
