use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::crypto::Sealed;
use crate::domain::QueueUrl;

use super::{Filters, HarvestOutcome, OrganizationCommand, OrganizationError, OrganizationEvent};

/// An organization's state, as far as deciding its commands needs it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Organization {
    registered: bool,
    credentials: Option<Sealed>,
    filters: Filters,
    nickname: String,
    #[serde(default)]
    events_queue: Option<QueueUrl>,
    last_harvest: Option<LastHarvest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum LastHarvest {
    Completed { accounts_seen: usize },
    Failed { error: String },
}

impl Aggregate for Organization {
    const TYPE: &'static str = "Organization";
    type Command = OrganizationCommand;
    type Event = OrganizationEvent;
    type Error = OrganizationError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let Some(event) = self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            OrganizationEvent::OrganizationRegistered {
                nickname,
                credentials,
                filters,
                ..
            } => {
                *self = Self {
                    registered: true,
                    credentials: Some(credentials),
                    filters,
                    nickname,
                    events_queue: None,
                    last_harvest: None,
                }
            }
            OrganizationEvent::CredentialsReplaced { credentials, .. } => {
                self.credentials = Some(credentials)
            }
            OrganizationEvent::FiltersChanged { filters } => self.filters = filters,
            OrganizationEvent::OrganizationRenamed { nickname } => self.nickname = nickname,
            OrganizationEvent::EventsQueueChanged { url } => self.events_queue = url,
            OrganizationEvent::OrganizationRemoved => *self = Self::default(),
            OrganizationEvent::HarvestCompleted { accounts_seen, .. } => {
                self.last_harvest = Some(LastHarvest::Completed { accounts_seen })
            }
            OrganizationEvent::HarvestFailed { error } => {
                self.last_harvest = Some(LastHarvest::Failed { error })
            }
        }
    }
}

impl Organization {
    fn decide(
        &self,
        command: OrganizationCommand,
    ) -> Result<Option<OrganizationEvent>, OrganizationError> {
        if let OrganizationCommand::Register(register) = command {
            if self.registered {
                return Err(OrganizationError::AlreadyRegistered);
            }
            return Ok(Some(OrganizationEvent::OrganizationRegistered {
                org_id: register.org_id,
                nickname: register.nickname,
                management_account_id: register.management_account_id,
                credentials: register.credentials,
                filters: register.filters,
                org_role_account: register.org_role_account,
            }));
        }
        if !self.registered {
            return Err(OrganizationError::NotRegistered);
        }
        Ok(match command {
            OrganizationCommand::Register(_) => unreachable!("decided above"),
            // Sealing is randomized, so equal credentials never compare equal here: a
            // replacement is always recorded, which is what an audit wants anyway.
            OrganizationCommand::ReplaceCredentials(replace) => {
                Some(OrganizationEvent::CredentialsReplaced {
                    credentials: replace.credentials,
                    org_role_account: replace.org_role_account,
                })
            }
            OrganizationCommand::ChangeFilters(change) => (change.filters != self.filters)
                .then_some(OrganizationEvent::FiltersChanged {
                    filters: change.filters,
                }),
            OrganizationCommand::Rename(rename) => (rename.nickname != self.nickname).then_some(
                OrganizationEvent::OrganizationRenamed {
                    nickname: rename.nickname,
                },
            ),
            OrganizationCommand::SetEventsQueue(set) => (set.url != self.events_queue)
                .then_some(OrganizationEvent::EventsQueueChanged { url: set.url }),
            OrganizationCommand::RecordHarvest(record) => self.harvest_event(record.outcome),
            OrganizationCommand::Remove => Some(OrganizationEvent::OrganizationRemoved),
        })
    }

    /// A harvest that saw nothing new appends nothing (I3); neither does a failure that
    /// repeats the last one.
    fn harvest_event(&self, outcome: HarvestOutcome) -> Option<OrganizationEvent> {
        match outcome {
            HarvestOutcome::Completed {
                accounts_seen,
                changes,
            } => {
                let same = self.last_harvest == Some(LastHarvest::Completed { accounts_seen });
                (changes > 0 || !same).then_some(OrganizationEvent::HarvestCompleted {
                    accounts_seen,
                    changes,
                })
            }
            HarvestOutcome::Failed { error } => {
                let same = matches!(&self.last_harvest, Some(LastHarvest::Failed { error: e }) if *e == error);
                (!same).then_some(OrganizationEvent::HarvestFailed { error })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::domain::organization::{
        ChangeFilters, RecordHarvest, RegisterOrganization, RenameOrganization, ReplaceCredentials,
        RoleAccount,
    };

    type OrgTest = TestFramework<Organization>;

    fn register() -> RegisterOrganization {
        RegisterOrganization {
            org_id: "o-abcdefghij".try_into().unwrap(),
            nickname: "prod".into(),
            management_account_id: "111122223333".try_into().unwrap(),
            credentials: Sealed::from_stored("siv1:00000000:AAAA".into()),
            org_role_account: RoleAccount::Management,
            filters: Filters::default(),
        }
    }

    fn registered() -> OrganizationEvent {
        let r = register();
        OrganizationEvent::OrganizationRegistered {
            org_id: r.org_id,
            nickname: r.nickname,
            management_account_id: r.management_account_id,
            credentials: r.credentials,
            filters: r.filters,
            org_role_account: r.org_role_account,
        }
    }

    fn completed(accounts_seen: usize, changes: usize) -> OrganizationCommand {
        OrganizationCommand::RecordHarvest(RecordHarvest {
            outcome: HarvestOutcome::Completed {
                accounts_seen,
                changes,
            },
        })
    }

    fn failed(error: &str) -> OrganizationCommand {
        OrganizationCommand::RecordHarvest(RecordHarvest {
            outcome: HarvestOutcome::Failed {
                error: error.into(),
            },
        })
    }

    #[tokio::test]
    async fn register_records_the_organization() {
        OrgTest::with(())
            .given_no_previous_events()
            .when_async(OrganizationCommand::Register(register()))
            .await
            .then_expect_events(vec![registered()]);
    }

    #[tokio::test]
    async fn r2_second_registration_is_refused() {
        OrgTest::with(())
            .given(vec![registered()])
            .when_async(OrganizationCommand::Register(register()))
            .await
            .then_expect_error(OrganizationError::AlreadyRegistered);
    }

    #[tokio::test]
    async fn harvest_of_unregistered_organization_is_refused() {
        OrgTest::with(())
            .given_no_previous_events()
            .when_async(completed(1, 1))
            .await
            .then_expect_error(OrganizationError::NotRegistered);
    }

    #[tokio::test]
    async fn first_harvest_is_recorded() {
        OrgTest::with(())
            .given(vec![registered()])
            .when_async(completed(3, 0))
            .await
            .then_expect_events(vec![OrganizationEvent::HarvestCompleted {
                accounts_seen: 3,
                changes: 0,
            }]);
    }

    #[tokio::test]
    async fn i3_harvest_that_saw_nothing_new_appends_nothing() {
        OrgTest::with(())
            .given(vec![
                registered(),
                OrganizationEvent::HarvestCompleted {
                    accounts_seen: 3,
                    changes: 3,
                },
            ])
            .when_async(completed(3, 0))
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn harvest_with_changes_is_recorded() {
        OrgTest::with(())
            .given(vec![
                registered(),
                OrganizationEvent::HarvestCompleted {
                    accounts_seen: 3,
                    changes: 3,
                },
            ])
            .when_async(completed(3, 1))
            .await
            .then_expect_events(vec![OrganizationEvent::HarvestCompleted {
                accounts_seen: 3,
                changes: 1,
            }]);
    }

    #[tokio::test]
    async fn failure_is_recorded_once_until_it_changes() {
        let failure = OrganizationEvent::HarvestFailed {
            error: "boom".into(),
        };
        OrgTest::with(())
            .given(vec![registered()])
            .when_async(failed("boom"))
            .await
            .then_expect_events(vec![failure.clone()]);
        OrgTest::with(())
            .given(vec![registered(), failure.clone()])
            .when_async(failed("boom"))
            .await
            .then_expect_events(vec![]);
        OrgTest::with(())
            .given(vec![registered(), failure])
            .when_async(completed(3, 0))
            .await
            .then_expect_events(vec![OrganizationEvent::HarvestCompleted {
                accounts_seen: 3,
                changes: 0,
            }]);
    }

    #[tokio::test]
    async fn filters_change_only_when_they_differ() {
        let filters = Filters {
            auto_remove_suspended: true,
            ..Filters::default()
        };
        OrgTest::with(())
            .given(vec![registered()])
            .when_async(OrganizationCommand::ChangeFilters(ChangeFilters {
                filters: filters.clone(),
            }))
            .await
            .then_expect_events(vec![OrganizationEvent::FiltersChanged { filters }]);
        OrgTest::with(())
            .given(vec![registered()])
            .when_async(OrganizationCommand::ChangeFilters(ChangeFilters {
                filters: Filters::default(),
            }))
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn rename_and_credentials() {
        OrgTest::with(())
            .given(vec![registered()])
            .when_async(OrganizationCommand::Rename(RenameOrganization {
                nickname: "production".into(),
            }))
            .await
            .then_expect_events(vec![OrganizationEvent::OrganizationRenamed {
                nickname: "production".into(),
            }]);
        OrgTest::with(())
            .given(vec![registered()])
            .when_async(OrganizationCommand::Rename(RenameOrganization {
                nickname: "prod".into(),
            }))
            .await
            .then_expect_events(vec![]);
        let credentials = Sealed::from_stored("siv1:00000000:BBBB".into());
        OrgTest::with(())
            .given(vec![registered()])
            .when_async(OrganizationCommand::ReplaceCredentials(
                ReplaceCredentials {
                    credentials: credentials.clone(),
                    org_role_account: RoleAccount::DelegatedAdministrator,
                },
            ))
            .await
            .then_expect_events(vec![OrganizationEvent::CredentialsReplaced {
                credentials,
                org_role_account: RoleAccount::DelegatedAdministrator,
            }]);
    }

    #[tokio::test]
    async fn removed_organization_refuses_commands_and_can_register_again() {
        let removed = vec![registered(), OrganizationEvent::OrganizationRemoved];
        OrgTest::with(())
            .given(removed.clone())
            .when_async(OrganizationCommand::Remove)
            .await
            .then_expect_error(OrganizationError::NotRegistered);
        OrgTest::with(())
            .given(removed)
            .when_async(OrganizationCommand::Register(register()))
            .await
            .then_expect_events(vec![registered()]);
    }
}
