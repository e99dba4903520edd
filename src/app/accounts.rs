//! Use cases of accounts: the listing, history, manual badges and standalone accounts.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;

use crate::aws::Redaction;
use crate::crypto::debug_redacted;
use crate::domain::account::{
    Access, AccessStatus, Account, AccountCommand, AddBadge, AddStandaloneAccount, RemoveBadge,
};
use crate::domain::{AccountId, Actor, OrgId, RoleArn, SessionDuration, SessionName};
use crate::projections;
use crate::projections::accounts::{AccountQuery, AccountRow, UnitCounts};
use crate::store::StoredEvent;

use super::changes::AccountChangeEvent;
use super::{App, AppError};

/// A standalone account's own role; printed redacted.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountRole {
    /// The role, in the account itself.
    pub role_arn: RoleArn,
    /// The STS session name.
    pub session_name: SessionName,
    /// How long each session lasts.
    pub duration_seconds: SessionDuration,
}

impl std::fmt::Debug for AccountRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_redacted(f, "AccountRole")
    }
}

impl App {
    /// A page of the listing.
    #[tracing::instrument(skip_all)]
    pub async fn accounts(&self, query: &AccountQuery) -> Result<Vec<AccountRow>, AppError> {
        Ok(projections::accounts::list(self.store().pool(), query).await?)
    }

    /// The units of an organization's tree that hold its listed accounts, parents first, with
    /// their accounts' states.
    #[tracing::instrument(skip_all, fields(organization_id = %org))]
    pub async fn organization_units(&self, org: &OrgId) -> Result<Vec<UnitCounts>, AppError> {
        Ok(projections::accounts::units(self.store().pool(), org).await?)
    }

    /// One account of the listing, or 404.
    #[tracing::instrument(skip_all, fields(account_id = %id))]
    pub async fn account(&self, id: &AccountId) -> Result<AccountRow, AppError> {
        projections::accounts::get(self.store().pool(), id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("account {id}")))
    }

    /// Up to `limit` events of an account's history after its `after`th, oldest first, also
    /// after it left the listing, and whether more follow; 404 when it has none at all.
    #[tracing::instrument(skip_all, fields(account_id = %id))]
    pub async fn account_history(
        &self,
        id: &AccountId,
        after: i64,
        limit: i64,
    ) -> Result<(Vec<StoredEvent>, bool), AppError> {
        // One more than asked tells whether another page follows.
        let mut events = self
            .store()
            .events_of(Account::TYPE, id.as_str(), after, limit + 1)
            .await?;
        if events.is_empty() && after == 0 {
            return Err(AppError::NotFound(format!("account {id}")));
        }
        let more = events.len() as i64 > limit;
        events.truncate(usize::try_from(limit).unwrap_or(0));
        Ok((events, more))
    }

    /// Up to `limit` events of every aggregate after position `after`, in order (I5).
    #[tracing::instrument(skip(self))]
    pub async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>, AppError> {
        Ok(self.store().events_after(after, limit).await?)
    }

    /// How many accounts the listing holds in each state (standalone ones as `UNKNOWN`).
    pub async fn accounts_by_state(&self) -> Result<Vec<(String, i64)>, AppError> {
        Ok(projections::accounts::count_by_state(self.store().pool()).await?)
    }

    /// The newest event's position, 0 for an empty log.
    pub async fn last_event(&self) -> Result<i64, AppError> {
        Ok(self.store().last_seq().await?)
    }

    /// The account events of `org` from now on, in log order, as this process's one reader
    /// of the log hands them out. Ends when the subscriber falls more than a few thousand
    /// changes behind.
    pub async fn account_changes(
        &self,
        org: &OrgId,
    ) -> Result<impl futures::Stream<Item = AccountChangeEvent>, AppError> {
        let start = self.last_event().await?;
        let receiver = self.0.changes.subscribe(org, start);
        Ok(futures::stream::unfold(
            (receiver, start),
            |(mut receiver, mut last)| async move {
                loop {
                    match receiver.recv().await {
                        Ok(change) if change.sequence <= last => continue,
                        Ok(change) => {
                            last = change.sequence;
                            return Some((change, (receiver, last)));
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::warn!(
                                missed,
                                "a subscriber fell behind; its subscription ends"
                            );
                            return None;
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        ))
    }

    /// The listing as it was at `at`: the histories up to that instant of the accounts the
    /// page may hold replayed into the scratch store by the same projections, then queried
    /// the same way. One at a time: the scratch store has one connection.
    #[tracing::instrument(skip(self, query))]
    pub async fn accounts_as_of(
        &self,
        query: &AccountQuery,
        at: DateTime<Utc>,
    ) -> Result<Vec<AccountRow>, AppError> {
        Ok(projections::listing_as_of(self.store(), &self.0.scratch, query, at).await?)
    }

    /// Whether the badges of the account's organization follow its tags.
    async fn auto_badge(&self, account: &AccountRow) -> Result<bool, AppError> {
        Ok(match &account.organization_id {
            Some(org) => self.organization(org).await?.filters.auto_badge,
            None => false,
        })
    }

    async fn execute_on_account(
        &self,
        actor: &Actor,
        id: &AccountId,
        commands: &[AccountCommand],
    ) -> Result<(), AppError> {
        let inner = &self.0;
        inner
            .commands
            .accounts()
            .execute(id.as_str(), commands, actor)
            .await?;
        inner.projector.catch_up().await?;
        Ok(())
    }

    /// Adds or changes a manual badge; the key is never a reserved one (checked at the edge).
    #[tracing::instrument(skip_all, fields(account_id = %id))]
    pub async fn add_badge(
        &self,
        actor: &Actor,
        id: &AccountId,
        key: String,
        value: String,
    ) -> Result<AccountRow, AppError> {
        let account = self.account(id).await?;
        let auto_badge = self.auto_badge(&account).await?;
        let add = AccountCommand::AddBadge(AddBadge {
            key,
            value,
            auto_badge,
        });
        self.execute_on_account(actor, id, &[add]).await?;
        self.account(id).await
    }

    /// Removes a manual badge.
    #[tracing::instrument(skip_all, fields(account_id = %id))]
    pub async fn remove_badge(
        &self,
        actor: &Actor,
        id: &AccountId,
        key: String,
    ) -> Result<(), AppError> {
        let account = self.account(id).await?;
        let auto_badge = self.auto_badge(&account).await?;
        let remove = AccountCommand::RemoveBadge(RemoveBadge { key, auto_badge });
        self.execute_on_account(actor, id, &[remove]).await
    }

    /// Assumes a standalone account's role, so that a wrong one is refused before it is
    /// stored; the outcome becomes the account's access status.
    async fn check_account_role(&self, role: &AccountRole) -> Result<Access, AppError> {
        self.0
            .aws
            .assume(&role.role_arn, &role.session_name, role.duration_seconds)
            .await
            .map_err(|e| {
                let redaction =
                    Redaction::of(&role.role_arn, &role.session_name, "the account's role");
                AppError::aws_step("assume_role_failed", &e, &redaction)
            })?;
        Ok(Access {
            status: AccessStatus::Ok,
            message: None,
            warnings: Vec::new(),
            permissions_checked: false,
        })
    }

    /// Adds an account outside any organization, with its own role and the installation's
    /// external ID; refused for managed accounts (R12).
    #[tracing::instrument(skip_all, fields(account_id = %id))]
    pub async fn add_standalone_account(
        &self,
        actor: &Actor,
        id: &AccountId,
        name: String,
        role: AccountRole,
    ) -> Result<AccountRow, AppError> {
        if let Ok(existing) = self.account(id).await {
            // Refuse before touching AWS; the aggregate decides again on the way in.
            if let Some(org) = existing.organization_id {
                return Err(
                    crate::domain::account::AccountError::ManagedByOrganization(org).into(),
                );
            }
        }
        let access = self.check_account_role(&role).await?;
        let add = AccountCommand::AddStandaloneAccount(AddStandaloneAccount {
            name,
            credentials: self.0.keys.seal_json(&role),
        });
        self.execute_on_account(actor, id, &[add, AccountCommand::RecordAccessCheck(access)])
            .await?;
        self.account(id).await
    }

    /// Replaces a standalone account's role; refused for managed accounts (R12).
    #[tracing::instrument(skip_all, fields(account_id = %id))]
    pub async fn replace_account_credentials(
        &self,
        actor: &Actor,
        id: &AccountId,
        role: AccountRole,
    ) -> Result<AccountRow, AppError> {
        let account = self.account(id).await?;
        if let Some(org) = account.organization_id {
            return Err(crate::domain::account::AccountError::ManagedByOrganization(org).into());
        }
        let access = self.check_account_role(&role).await?;
        let replace = AccountCommand::ReplaceAccountCredentials(self.0.keys.seal_json(&role));
        self.execute_on_account(
            actor,
            id,
            &[replace, AccountCommand::RecordAccessCheck(access)],
        )
        .await?;
        self.account(id).await
    }

    /// Deletes a standalone account; refused for managed accounts (R12).
    #[tracing::instrument(skip_all, fields(account_id = %id))]
    pub async fn delete_account(&self, actor: &Actor, id: &AccountId) -> Result<(), AppError> {
        self.execute_on_account(actor, id, &[AccountCommand::DeleteAccount])
            .await
    }
}
