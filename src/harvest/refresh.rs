//! Refreshing what one Organizations event names (R16): the account, read again from AWS
//! (DescribeAccount, its parents or `Paths`, its tags) and brought into the listing through
//! the same filters and commands as a harvest's; or the accounts below a renamed OU. An event
//! says that something changed, never what it now is, so a refresh run twice, or for events
//! that arrive out of order, changes nothing the second time.

use std::collections::HashMap;

use crate::aws::{AwsError, DescribedAccount, ListedAccount, RoleSession};
use crate::domain::account::{AccountCommand, RecordAccountGone, RemoveAccount};
use crate::domain::organization::Credentials;
use crate::domain::{AccountId, AccountState, Actor, OrgPath, OrgUnit, ParentId};
use crate::projections::accounts;
use crate::projections::organizations::{self, OrganizationRecord};

use super::cloudtrail::{Notice, Subject};
use super::pass::{check_member, listed_commands, redaction, Known, Listing, Simulator};
use super::{HarvestError, Harvester, Inner};

impl Harvester {
    /// Refreshes what `notice` names in `org_id`'s listing, reading AWS in `session` (the
    /// org role's, as the queue was read), holding the organization's harvest lock; answers
    /// how many events that appended. AWS's refusals come back as [`HarvestError::Aws`],
    /// redacted, for the caller to try again later.
    pub(super) async fn refresh(
        &self,
        org_id: &crate::domain::OrgId,
        notice: &Notice,
        session: &RoleSession,
    ) -> Result<usize, HarvestError> {
        let Some(subject) = &notice.subject else {
            return Ok(0);
        };
        self.without_harvest(org_id, async {
            let h = &self.0;
            let org = organizations::record(h.store.pool(), org_id)
                .await?
                .ok_or_else(|| HarvestError::NotRegistered(org_id.clone()))?;
            let credentials = h.keys.open_json::<Credentials>(&org.credentials)?;
            let credentials = credentials.expose();
            let refused = |e: AwsError| HarvestError::Aws(e.redacted(&redaction(credentials)));
            let actor = Actor::aws_call(&notice.event_name, notice.trail.clone());
            let work = match subject {
                Subject::Account(id) => {
                    refresh_account(h, &org, credentials, session, id, &refused)
                        .await?
                        .map(|commands| (id.to_string(), commands))
                        .into_iter()
                        .collect()
                }
                Subject::Unit(unit) => refresh_unit(h, &org, session, unit, &refused).await?,
            };
            let appended = h
                .commands
                .accounts()
                .execute_each(work.into_iter(), &actor, h.projector.as_ref())
                .await?;
            Ok(appended)
        })
        .await?
    }
}

/// The commands that bring one account's row to what AWS says of it now.
async fn refresh_account(
    h: &Inner,
    org: &OrganizationRecord,
    credentials: &Credentials,
    session: &RoleSession,
    id: &AccountId,
    redact: &impl Fn(AwsError) -> HarvestError,
) -> Result<Option<Vec<AccountCommand>>, HarvestError> {
    let api = h.aws.api();
    let before = accounts::compared_one(h.store.pool(), &org.id, id)
        .await?
        .map(Known::from);
    let Some(described) = api.describe_account(session, id).await.map_err(redact)? else {
        // Not in the organization (any more): it left, if it was listed.
        return Ok(before.map(|_| {
            vec![AccountCommand::RecordAccountGone(RecordAccountGone {
                organization_id: org.id.clone(),
            })]
        }));
    };
    let org_path = path_of(h, org, session, id, &described)
        .await
        .map_err(redact)?;
    let tags = api.account_tags(session, id).await.map_err(redact)?;
    let listed = ListedAccount {
        id: id.clone(),
        name: described.name,
        email: described.email,
        state: described.state,
        org_path,
        tags,
    };
    let mut listing = Listing::new(&org.filters, vec![listed]);
    if let Some(account) = listing.kept.pop() {
        // The member role is tried for an account new to the listing or coming back, and an
        // account that is not active is not tried, as a harvest does; otherwise its access
        // stays as the last harvest found it.
        let active = matches!(
            account.state,
            AccountState::Active | AccountState::PendingActivation
        );
        let access = match &before {
            Some(known) if active => known.access().clone(),
            _ => {
                check_member(h, credentials, &account, None, &Simulator::default())
                    .await
                    .1
            }
        };
        return Ok(listed_commands(org, account, before.as_ref(), access));
    }
    Ok(before.and(listing.dropped.remove(id)).map(|reason| {
        vec![AccountCommand::RemoveAccount(RemoveAccount {
            organization_id: org.id.clone(),
            reason,
        })]
    }))
}

/// The commands that give every account below a renamed unit its new path.
async fn refresh_unit(
    h: &Inner,
    org: &OrganizationRecord,
    session: &RoleSession,
    unit: &ParentId,
    redact: &impl Fn(AwsError) -> HarvestError,
) -> Result<Vec<(String, Vec<AccountCommand>)>, HarvestError> {
    let name = h.aws.api().unit_name(session, unit).await.map_err(redact)?;
    let below = accounts::compared_below(h.store.pool(), &org.id, unit).await?;
    Ok(below
        .into_iter()
        .filter_map(|row| {
            let org_path: OrgPath = row
                .org_path
                .iter()
                .map(|step| OrgUnit {
                    id: step.id.clone(),
                    name: if &step.id == unit {
                        name.clone()
                    } else {
                        step.name.clone()
                    },
                })
                .collect();
            let listed = ListedAccount {
                id: row.account_id.clone(),
                name: row.name.clone(),
                email: row.email.clone().unwrap_or_default(),
                state: row.state?,
                org_path,
                tags: row.tags.clone(),
            };
            let access = row.access.clone();
            let id = row.account_id.to_string();
            let before = Known::from(row);
            listed_commands(org, listed, Some(&before), access).map(|commands| (id, commands))
        })
        .collect())
}

/// Where an account sits, root first: from its `Paths` when AWS gave them, else by walking
/// its parents up to a unit the listing knows. Names come from the listing where it knows
/// the unit, from DescribeOrganizationalUnit where it does not.
async fn path_of(
    h: &Inner,
    org: &OrganizationRecord,
    session: &RoleSession,
    id: &AccountId,
    described: &DescribedAccount,
) -> Result<OrgPath, AwsError> {
    let known: HashMap<ParentId, OrgPath> = known_paths(h, org).await;
    if let Some(ids) = &described.path {
        let mut path = Vec::with_capacity(ids.len());
        for unit in ids {
            path.push(step(h, session, &known, unit.clone()).await?);
        }
        return Ok(path.into());
    }
    // Walked up from the account until a unit the listing knows, or the root.
    let mut above = Vec::new();
    let mut child = id.to_string();
    loop {
        let parent = h.aws.api().parent_of(session, &child).await?;
        if let Some(path) = known.get(&parent) {
            return Ok(path
                .iter()
                .cloned()
                .chain(above.into_iter().rev())
                .collect());
        }
        let is_root = parent.as_str().starts_with("r-");
        child = parent.to_string();
        above.push(step(h, session, &known, parent).await?);
        if is_root {
            return Ok(above.into_iter().rev().collect());
        }
    }
}

/// A unit of a path with its name: the listing's, where it knows the unit.
async fn step(
    h: &Inner,
    session: &RoleSession,
    known: &HashMap<ParentId, OrgPath>,
    unit: ParentId,
) -> Result<OrgUnit, AwsError> {
    let name = match known.get(&unit) {
        Some(path) => path.last().map(|u| u.name.clone()).unwrap_or_default(),
        // Roots are all called so.
        None if unit.as_str().starts_with("r-") => "Root".to_owned(),
        None => h.aws.api().unit_name(session, &unit).await?,
    };
    Ok(OrgUnit { id: unit, name })
}

/// The path of every unit the organization's listed accounts sit in or below.
async fn known_paths(h: &Inner, org: &OrganizationRecord) -> HashMap<ParentId, OrgPath> {
    let units = match accounts::units(h.store.pool(), &org.id).await {
        Ok(units) => units,
        // Then every unit is read from AWS: slower, as true.
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the organization's units");
            return HashMap::new();
        }
    };
    let mut paths: HashMap<ParentId, OrgPath> = HashMap::with_capacity(units.len());
    // Parents come before their children.
    for unit in units {
        let path: OrgPath = match unit.parent.as_ref().and_then(|p| paths.get(p)) {
            Some(above) => above.iter().cloned().chain([unit.unit.clone()]).collect(),
            None => OrgPath::from([unit.unit.clone()]),
        };
        paths.insert(unit.unit.id.clone(), path);
    }
    paths
}
