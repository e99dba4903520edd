//! The scheduler: its loop only calls [`Scheduler::tick`], so tests call `tick` with the
//! instant they want instead of waiting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::domain::OrgId;
use crate::store::{harvest_runs, Leadership, StoreError};

use super::Harvester;

/// Starts harvests of organizations that are due: never harvested, left marked running by a
/// process that stopped, or last started an interval (plus jitter) ago (R5).
pub struct Scheduler {
    harvester: Harvester,
    interval: Duration,
    tick: Duration,
    // Whether this instance schedules now, for whoever asks (readiness, metrics).
    leading: Arc<AtomicBool>,
}

impl Scheduler {
    /// A scheduler starting `harvester`'s passes at its configured interval, looking every
    /// tick; `leading` tells whether this instance schedules.
    pub fn new(harvester: Harvester, leading: Arc<AtomicBool>) -> Self {
        let settings = &harvester.0.settings;
        Self {
            interval: settings.interval,
            tick: settings.tick,
            harvester,
            leading,
        }
    }

    /// Starts the harvests due at `now`; returns the organizations it started.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<Vec<OrgId>, StoreError> {
        let store = &self.harvester.0.store;
        let mut started = Vec::new();
        for (org, last_start, marked_running) in harvest_runs::last_starts(store.pool()).await? {
            // Marked running by no harvest of this process: one elsewhere stopped, or one
            // here could not record its end, in which case the harvester backs off.
            let abandoned = marked_running && !self.harvester.is_running(&org);
            let due = match last_start {
                None => true,
                Some(_) if abandoned => self.harvester.may_retry(&org, now),
                Some(at) => at + self.interval + jitter(&org, at, self.interval) <= now,
            };
            if due
                && self
                    .harvester
                    .start_scheduled(&org, (last_start, marked_running))
            {
                started.push(org);
            }
        }
        Ok(started)
    }

    /// Ticks every `harvest.tick` until the daemon stops, while this instance leads: with
    /// several instances on one PostgreSQL, one schedules and the others take over within a
    /// tick when it goes (each serves the API all along).
    pub async fn run(self) {
        let shutdown = self.harvester.0.shutdown.clone();
        let store = self.harvester.0.store.clone();
        let mut ticker = tokio::time::interval(self.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut leadership: Option<Leadership> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {
                    if let Some(held) = &mut leadership {
                        if !held.still_held().await {
                            tracing::warn!("lost the scheduler lock");
                            leadership = None;
                        }
                    }
                    if leadership.is_none() {
                        match store.try_lead().await {
                            Ok(Some(won)) => {
                                tracing::info!("this instance schedules harvests");
                                leadership = Some(won);
                            }
                            Ok(None) => {}
                            Err(e) => tracing::warn!(error = %e, "cannot take the scheduler lock"),
                        }
                    }
                    self.leading.store(leadership.is_some(), Ordering::SeqCst);
                    if leadership.is_some() {
                        if let Err(e) = self.tick(Utc::now()).await {
                            tracing::error!(error = %e, "scheduler tick failed");
                        }
                    }
                    // The instance that schedules polls the events queues too (R16).
                    if let Err(e) = self.harvester.keep_pollers(leadership.is_some()).await {
                        tracing::error!(error = %e, "cannot keep the events queues' pollers");
                    }
                }
            }
        }
    }
}

/// Up to a tenth of the interval, fixed for one organization and one run, so organizations
/// registered together drift apart instead of hitting AWS at the same instant.
fn jitter(org: &OrgId, last_start: DateTime<Utc>, interval: Duration) -> chrono::Duration {
    let digest = Sha256::digest(format!("{org}@{}", last_start.timestamp_millis()));
    let value = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    let span = u64::try_from(interval.as_millis() / 10)
        .unwrap_or(u64::MAX)
        .max(1);
    chrono::Duration::milliseconds(i64::try_from(value % span).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_tenth_and_differs_between_organizations() {
        let interval = Duration::from_secs(3600);
        let at = Utc::now();
        let a: OrgId = "o-aaaaaaaaaa".try_into().unwrap();
        let b: OrgId = "o-bbbbbbbbbb".try_into().unwrap();
        for org in [&a, &b] {
            let j = jitter(org, at, interval);
            assert!(j >= chrono::Duration::zero() && j < chrono::Duration::seconds(360));
            assert_eq!(j, jitter(org, at, interval));
        }
        assert_ne!(jitter(&a, at, interval), jitter(&b, at, interval));
    }
}
