//! How the harvests this process runs are getting on, for a frontend's progress bar: each
//! pass reports its phase and counts here, and every subscriber of its organization is told.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::broadcast;

use crate::domain::OrgId;

/// How many reports a subscriber may fall behind before it misses some.
const BACKLOG: usize = 256;
/// How many reports of applying a pass sends at most: one per hundredth of its accounts.
const APPLY_STEPS: usize = 100;

/// Where a harvest is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// It holds the organization's lock and has begun.
    Started,
    /// AWS is being read: the tree, the tags, then the member roles.
    Listing,
    /// What changed is being turned into events.
    Applying,
    /// It ended; the outcome says how.
    Finished,
}

/// One report of a harvest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The organization harvested.
    pub organization_id: OrgId,
    /// Where the harvest is.
    pub phase: Phase,
    /// Accounts AWS listed (0 until the listing is complete).
    pub accounts_listed: usize,
    /// Listed accounts compared with the listing and, where they changed, applied.
    pub accounts_applied: usize,
    /// `completed` or `failed`, once finished.
    pub outcome: Option<&'static str>,
    /// Why it failed, redacted.
    pub error: Option<String>,
}

impl Progress {
    fn new(organization_id: &OrgId, phase: Phase) -> Self {
        Self {
            organization_id: organization_id.clone(),
            phase,
            accounts_listed: 0,
            accounts_applied: 0,
            outcome: None,
            error: None,
        }
    }
}

/// The latest report of each running harvest, and everyone listening.
pub struct ProgressBoard {
    running: Mutex<HashMap<OrgId, Progress>>,
    reports: broadcast::Sender<Progress>,
}

impl Default for ProgressBoard {
    fn default() -> Self {
        Self {
            running: Mutex::default(),
            reports: broadcast::channel(BACKLOG).0,
        }
    }
}

impl ProgressBoard {
    /// The latest report of `org`'s running harvest, if one runs here, and the reports of
    /// every harvest from now on.
    pub fn subscribe(&self, org: &OrgId) -> (Option<Progress>, broadcast::Receiver<Progress>) {
        let running = self.running.lock().expect("progress board poisoned");
        (running.get(org).cloned(), self.reports.subscribe())
    }

    fn report(&self, progress: Progress) {
        let mut running = self.running.lock().expect("progress board poisoned");
        if progress.phase == Phase::Finished {
            running.remove(&progress.organization_id);
        } else {
            running.insert(progress.organization_id.clone(), progress.clone());
        }
        // Nobody listening is not an error.
        let _ = self.reports.send(progress);
    }

    pub(super) fn started(&self, org: &OrgId) {
        self.report(Progress::new(org, Phase::Started));
    }

    pub(super) fn listing(&self, org: &OrgId, listed: usize) {
        self.report(Progress {
            accounts_listed: listed,
            ..Progress::new(org, Phase::Listing)
        });
    }

    /// Reports `applied` of `listed` accounts applied, at every hundredth of them and at
    /// the last.
    pub(super) fn applying(&self, org: &OrgId, listed: usize, applied: usize) {
        let step = (listed / APPLY_STEPS).max(1);
        if applied.is_multiple_of(step) || applied == listed {
            self.report(Progress {
                accounts_listed: listed,
                accounts_applied: applied,
                ..Progress::new(org, Phase::Applying)
            });
        }
    }

    pub(super) fn finished(&self, org: &OrgId, listed: usize, error: Option<String>) {
        self.report(Progress {
            accounts_listed: listed,
            accounts_applied: if error.is_none() { listed } else { 0 },
            outcome: Some(if error.is_none() {
                "completed"
            } else {
                "failed"
            }),
            error,
            ..Progress::new(org, Phase::Finished)
        });
    }
}
