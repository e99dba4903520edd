//! Use cases of organizations: register, edit, remove, read, harvest.

use futures::StreamExt;
use tokio::sync::broadcast;

use crate::aws::{actions, OrganizationInfo, Redaction, RoleSession};
use crate::domain::account::{AccountCommand, RemovalReason, RemoveAccount};
use crate::domain::organization::{
    ChangeFilters, Credentials, Filters, OrganizationCommand, RegisterOrganization,
    RenameOrganization, ReplaceCredentials, RoleAccount, SetEventsQueue,
};
use crate::domain::{Actor, OrgId, ParentId, QueueUrl};
use crate::harvest::Progress;
use crate::projections;
use crate::projections::organizations::OrganizationRow;
use crate::store::harvest_runs;

use super::{App, AppError, HarvestStart};

/// A registration that passed the edge's format checks (R3, first step).
#[derive(Debug, Clone)]
pub struct Registration {
    /// The name operators know it by.
    pub nickname: String,
    /// Both roles.
    pub credentials: Credentials,
    /// Scope and badge filters.
    pub filters: Filters,
    /// The queue its Organizations events arrive on, if any (R16).
    pub events_queue: Option<QueueUrl>,
}

/// Filters to change; keys left out keep their value.
#[derive(Debug, Clone, Default)]
pub struct FiltersPatch {
    /// New name prefixes to exclude.
    pub exclude_name_prefixes: Option<Vec<String>>,
    /// New OUs to limit the scope to.
    pub limit_scope_ou_ids: Option<Vec<ParentId>>,
    /// Whether suspended accounts leave the listing.
    pub auto_remove_suspended: Option<bool>,
    /// Whether badges follow tags.
    pub auto_badge: Option<bool>,
}

impl FiltersPatch {
    fn apply(self, current: &Filters) -> Filters {
        Filters {
            exclude_name_prefixes: self
                .exclude_name_prefixes
                .unwrap_or_else(|| current.exclude_name_prefixes.clone()),
            limit_scope_ou_ids: self
                .limit_scope_ou_ids
                .unwrap_or_else(|| current.limit_scope_ou_ids.clone()),
            auto_remove_suspended: self
                .auto_remove_suspended
                .unwrap_or(current.auto_remove_suspended),
            auto_badge: self.auto_badge.unwrap_or(current.auto_badge),
        }
    }
}

/// An edit of an organization (R13): a full credential set or none; the rest alone.
#[derive(Debug, Clone, Default)]
pub struct OrganizationChange {
    /// A new nickname.
    pub nickname: Option<String>,
    /// Filters to change.
    pub filters: Option<FiltersPatch>,
    /// Both roles, every field.
    pub credentials: Option<Credentials>,
    /// A new events queue, or none to stop following one (R16); left as it is when absent.
    pub events_queue: Option<Option<QueueUrl>>,
}

/// What an error of the org role's checks must not show of it (R14).
fn org_role_redaction(credentials: &Credentials) -> Redaction {
    let role = &credentials.org_role;
    Redaction::of(&role.role_arn, &role.session_name, "the org role")
}

impl App {
    /// Checks the org role as R3 says, in order: assume it with the external ID, describe its
    /// organization (managed from the role's account, or else listable by it as a delegated
    /// administrator, R17), and simulate its policies over the harvest actions, with its own
    /// credentials on its own ARN. The error names the step that failed, AWS's error code and
    /// every denied action.
    async fn check_org_role(
        &self,
        credentials: &Credentials,
    ) -> Result<(OrganizationInfo, RoleAccount, RoleSession), AppError> {
        let aws = &self.0.aws;
        let org_role = &credentials.org_role;
        let redaction = org_role_redaction(credentials);
        let session = self.assume_org_role(credentials).await?;
        let info = aws
            .api()
            .describe_organization(&session)
            .await
            .map_err(|e| AppError::aws_step("describe_organization_failed", &e, &redaction))?;
        // R17: a role outside the management account must be a delegated administrator's,
        // which the organization's delegation policy lets list the organization.
        let role_account = if &info.management_account_id == org_role.role_arn.account_id() {
            RoleAccount::Management
        } else {
            aws.api().list_first_page(&session).await.map_err(|e| {
                let message = format!(
                    "the org role is in account {}, not in account {} that manages organization \
                     {}, and cannot list the organization as a delegated administrator: {}. The \
                     organization's delegation policy (AWS::Organizations::ResourcePolicy, in \
                     the management account) must allow that account to read it",
                    org_role.role_arn.account_id(),
                    info.management_account_id,
                    info.id,
                    e.redacted(&redaction)
                );
                AppError::Rejected {
                    code: "not_delegated_administrator",
                    message,
                    aws_error_code: e.code.clone(),
                    denied_actions: Vec::new(),
                }
            })?;
            RoleAccount::DelegatedAdministrator
        };
        let denied = aws
            .api()
            .denied_actions(&session, &org_role.role_arn, actions::ORGANIZATION_HARVEST)
            .await
            .map_err(|e| AppError::aws_step("simulation_failed", &e, &redaction))?;
        if !denied.is_empty() {
            return Err(AppError::Rejected {
                code: "missing_permissions",
                message: format!(
                    "iam:SimulatePrincipalPolicy: the org role's policies do not allow {}",
                    denied.join(", ")
                ),
                aws_error_code: None,
                denied_actions: denied,
            });
        }
        Ok((info, role_account, session))
    }

    /// Assumes the org role of `credentials`; a refusal is R3's first step failing.
    async fn assume_org_role(&self, credentials: &Credentials) -> Result<RoleSession, AppError> {
        self.0
            .aws
            .assume_org_role(&credentials.org_role)
            .await
            .map_err(|e| {
                AppError::aws_step("assume_role_failed", &e, &org_role_redaction(credentials))
            })
    }

    /// Checks that the org role, in `session`, reads the events queue `queue` (R16).
    async fn check_events_queue(
        &self,
        credentials: &Credentials,
        session: &RoleSession,
        queue: &QueueUrl,
    ) -> Result<(), AppError> {
        self.0
            .aws
            .api()
            .check_queue(session, queue)
            .await
            .map_err(|e| {
                let redaction = org_role_redaction(credentials);
                AppError::aws_step("events_queue_unreachable", &e, &redaction)
            })
    }

    /// Registers an organization after checking, in order, that its role can be assumed and
    /// that it reads the organization (R3); stores nothing when a step fails. A harvest
    /// starts at once (R5); it adopts standalone accounts of the organization (R12).
    #[tracing::instrument(skip_all, fields(org_id))]
    pub async fn register_organization(
        &self,
        actor: &Actor,
        registration: Registration,
    ) -> Result<OrganizationRow, AppError> {
        let inner = &self.0;
        let (info, org_role_account, session) =
            self.check_org_role(&registration.credentials).await?;
        tracing::Span::current().record("org_id", info.id.as_str());
        if let Some(queue) = &registration.events_queue {
            self.check_events_queue(&registration.credentials, &session, queue)
                .await?;
        }
        let mut commands = vec![OrganizationCommand::Register(RegisterOrganization {
            org_id: info.id.clone(),
            nickname: registration.nickname,
            management_account_id: info.management_account_id,
            credentials: inner.keys.seal_json(&registration.credentials),
            org_role_account,
            filters: registration.filters,
        })];
        if let Some(url) = registration.events_queue {
            commands.push(OrganizationCommand::SetEventsQueue(SetEventsQueue {
                url: Some(url),
            }));
        }
        inner
            .commands
            .organizations()
            .execute(info.id.as_str(), &commands, actor)
            .await?;
        inner.projector.catch_up().await?;
        inner.harvester.start(&info.id);
        self.organization(&info.id).await
    }

    /// Edits an organization (R13). New credentials are checked like a registration's and
    /// must reach the same organization. A filter change takes effect at once: accounts it
    /// removes leave the listing now, and a harvest starts for those it brings in.
    #[tracing::instrument(skip_all, fields(org_id = %id))]
    pub async fn update_organization(
        &self,
        actor: &Actor,
        id: &OrgId,
        change: OrganizationChange,
    ) -> Result<OrganizationRow, AppError> {
        let inner = &self.0;
        let current = self.organization(id).await?;
        let mut commands = Vec::new();
        let mut checked = None;
        if let Some(credentials) = &change.credentials {
            let (info, org_role_account, session) = self.check_org_role(credentials).await?;
            if info.id != *id {
                return Err(AppError::rejected(
                    "wrong_organization",
                    format!("the org role reads organization {}, not {id}", info.id),
                ));
            }
            commands.push(OrganizationCommand::ReplaceCredentials(
                ReplaceCredentials {
                    credentials: inner.keys.seal_json(credentials),
                    org_role_account,
                },
            ));
            checked = Some(session);
        }
        if let Some(queue) = change.events_queue {
            if let Some(url) = &queue {
                // Read through the org role as it will be: the new one, or the current one.
                let credentials = match &change.credentials {
                    Some(credentials) => credentials.clone(),
                    None => self.current_credentials(id).await?,
                };
                let session = match checked {
                    Some(session) => session,
                    None => self.assume_org_role(&credentials).await?,
                };
                self.check_events_queue(&credentials, &session, url).await?;
            }
            commands.push(OrganizationCommand::SetEventsQueue(SetEventsQueue {
                url: queue,
            }));
        }
        if let Some(nickname) = change.nickname {
            commands.push(OrganizationCommand::Rename(RenameOrganization { nickname }));
        }
        let filters = change.filters.map(|patch| patch.apply(&current.filters));
        if let Some(filters) = &filters {
            commands.push(OrganizationCommand::ChangeFilters(ChangeFilters {
                filters: filters.clone(),
            }));
        }
        let appended = inner
            .commands
            .organizations()
            .execute(id.as_str(), &commands, actor)
            .await?;
        inner.projector.catch_up().await?;
        if let Some(filters) = filters.filter(|f| *f != current.filters) {
            if filters.auto_badge != current.filters.auto_badge {
                self.switch_auto_badge(actor, id, filters.auto_badge)
                    .await?;
            }
            self.remove_out_of_filters(actor, id, &filters).await?;
        }
        if appended > 0 {
            inner.harvester.start(id);
        }
        self.organization(id).await
    }

    /// The organization's credentials as stored.
    async fn current_credentials(&self, id: &OrgId) -> Result<Credentials, AppError> {
        let record = projections::organizations::record(self.store().pool(), id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("organization {id}")))?;
        Ok(self
            .0
            .keys
            .open_json::<Credentials>(&record.credentials)?
            .expose()
            .clone())
    }

    /// Tells every account of the organization that its tag badges are switched on or off
    /// (R10), so that each account's history and badges say so.
    async fn switch_auto_badge(
        &self,
        actor: &Actor,
        id: &OrgId,
        auto_badge: bool,
    ) -> Result<(), AppError> {
        let inner = &self.0;
        let accounts = projections::accounts::of_organization(inner.store.pool(), id).await?;
        let work = accounts.into_iter().map(|account| {
            let switch = AccountCommand::SwitchAutoBadge(auto_badge);
            (account.account_id.to_string(), vec![switch])
        });
        inner
            .commands
            .accounts()
            .execute_each(work, actor, &inner.projector)
            .await?;
        inner.projector.catch_up().await?;
        Ok(())
    }

    /// Removes the listed accounts that `filters` leave out, from what the read model knows,
    /// without waiting for AWS (R6, R7).
    async fn remove_out_of_filters(
        &self,
        actor: &Actor,
        id: &OrgId,
        filters: &Filters,
    ) -> Result<(), AppError> {
        let inner = &self.0;
        for account in projections::accounts::of_organization(inner.store.pool(), id).await? {
            let reason = if !filters.in_scope(&account.name, &account.org_path) {
                RemovalReason::Excluded
            } else if account.state.is_some_and(|s| filters.removes(s)) {
                RemovalReason::Suspended
            } else {
                continue;
            };
            let remove = AccountCommand::RemoveAccount(RemoveAccount {
                organization_id: id.clone(),
                reason,
            });
            inner
                .commands
                .accounts()
                .execute(account.account_id.as_str(), &[remove], actor)
                .await?;
        }
        inner.projector.catch_up().await?;
        Ok(())
    }

    /// Removes an organization and its accounts from the listing; their history stays. No
    /// harvest of it runs meanwhile, here or on another instance.
    #[tracing::instrument(skip_all, fields(org_id = %id))]
    pub async fn remove_organization(&self, actor: &Actor, id: &OrgId) -> Result<(), AppError> {
        let inner = &self.0;
        self.organization(id).await?;
        let removal = async {
            let accounts = projections::accounts::of_organization(inner.store.pool(), id).await?;
            for account in accounts {
                let remove = AccountCommand::RemoveAccount(RemoveAccount {
                    organization_id: id.clone(),
                    reason: RemovalReason::OrganizationRemoved,
                });
                inner
                    .commands
                    .accounts()
                    .execute(account.account_id.as_str(), &[remove], actor)
                    .await?;
            }
            inner
                .commands
                .organizations()
                .execute(id.as_str(), &[OrganizationCommand::Remove], actor)
                .await?;
            inner.projector.catch_up().await?;
            harvest_runs::forget(inner.store.pool(), id).await?;
            Ok::<_, AppError>(())
        };
        inner.harvester.without_harvest(id, removal).await?
    }

    /// Every registered organization.
    #[tracing::instrument(skip_all)]
    pub async fn organizations(&self) -> Result<Vec<OrganizationRow>, AppError> {
        Ok(projections::organizations::list(self.store().pool()).await?)
    }

    /// One organization, or 404.
    #[tracing::instrument(skip_all, fields(org_id = %id))]
    pub async fn organization(&self, id: &OrgId) -> Result<OrganizationRow, AppError> {
        projections::organizations::get(self.store().pool(), id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("organization {id}")))
    }

    /// Starts a harvest of a registered organization unless one is running (R5).
    #[tracing::instrument(skip_all, fields(org_id = %id))]
    pub async fn request_harvest(&self, id: &OrgId) -> Result<HarvestStart, AppError> {
        self.organization(id).await?;
        Ok(if self.0.harvester.start(id) {
            HarvestStart::Started
        } else {
            HarvestStart::AlreadyRunning
        })
    }

    /// How the harvests of a registered organization that run in this process get on: the
    /// running one's latest report first, if one runs, then every report as it comes.
    #[tracing::instrument(skip_all, fields(org_id = %id))]
    pub async fn harvest_progress(
        &self,
        id: &OrgId,
    ) -> Result<impl futures::Stream<Item = Progress>, AppError> {
        self.organization(id).await?;
        let (current, receiver) = self.0.harvester.progress().subscribe(id);
        let reports =
            futures::stream::unfold((receiver, id.clone()), |(mut receiver, id)| async move {
                loop {
                    match receiver.recv().await {
                        Ok(report) if report.organization_id == id => {
                            return Some((report, (receiver, id)))
                        }
                        // Each report says all there is to say: one missed is made good by the next.
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            });
        Ok(futures::stream::iter(current).chain(reports))
    }

    /// Waits for a running harvest, runs one more, and answers the organization after it.
    #[tracing::instrument(skip_all, fields(org_id = %id))]
    pub async fn harvest_now(&self, id: &OrgId) -> Result<OrganizationRow, AppError> {
        self.organization(id).await?;
        self.0.harvester.run_now(id).await?;
        self.organization(id).await
    }
}
