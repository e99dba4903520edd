use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::domain::{AccountState, OrgId, OrgPath};

use super::{AccountCommand, AccountError, AccountEvent, RecordAccountSeen, Tags};

/// An account's state, as far as deciding its commands needs it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Account {
    listed: Option<Listed>,
    tags: Tags,
}

/// The facts of an account while an organization lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Listed {
    organization_id: OrgId,
    name: String,
    email: String,
    state: AccountState,
    org_path: OrgPath,
}

impl Aggregate for Account {
    const TYPE: &'static str = "Account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            AccountEvent::AccountDiscovered {
                organization_id,
                name,
                email,
                state,
                org_path,
            } => {
                self.listed = Some(Listed {
                    organization_id,
                    name,
                    email,
                    state,
                    org_path,
                });
                // A listing starts without tags; the harvest's TagChanged brings them.
                self.tags.clear();
            }
            AccountEvent::AccountLeftOrganization { .. } => self.listed = None,
            AccountEvent::AccountTagsChanged { set, removed } => {
                for key in removed {
                    self.tags.remove(&key);
                }
                self.tags.extend(set);
            }
            AccountEvent::AccountRenamed { name } => self.listed_mut().name = name,
            AccountEvent::AccountEmailChanged { email } => self.listed_mut().email = email,
            AccountEvent::AccountMoved { org_path } => self.listed_mut().org_path = org_path,
            AccountEvent::AccountStateChanged { state } => self.listed_mut().state = state,
        }
    }
}

impl Account {
    fn listed_mut(&mut self) -> &mut Listed {
        self.listed
            .as_mut()
            .expect("events that change an account's facts follow its discovery")
    }

    fn decide(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        Ok(match command {
            AccountCommand::RecordAccountSeen(seen) => self.seen(seen),
            AccountCommand::SuspendAccount => {
                let listed = self.listed.as_ref().ok_or(AccountError::NotListed)?;
                (listed.state != AccountState::Suspended)
                    .then_some(AccountEvent::AccountStateChanged {
                        state: AccountState::Suspended,
                    })
                    .into_iter()
                    .collect()
            }
            AccountCommand::TagChanged(changed) => {
                if self.listed.is_none() {
                    return Err(AccountError::NotListed);
                }
                let set: Tags = changed
                    .tags
                    .iter()
                    .filter(|(k, v)| self.tags.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let removed: Vec<String> = self
                    .tags
                    .keys()
                    .filter(|k| !changed.tags.contains_key(*k))
                    .cloned()
                    .collect();
                if set.is_empty() && removed.is_empty() {
                    vec![]
                } else {
                    vec![AccountEvent::AccountTagsChanged { set, removed }]
                }
            }
            AccountCommand::RecordAccountGone(gone) => match &self.listed {
                Some(listed) if listed.organization_id == gone.organization_id => {
                    vec![AccountEvent::AccountLeftOrganization {
                        organization_id: gone.organization_id,
                    }]
                }
                _ => vec![],
            },
        })
    }

    /// Only what changed (I3); an account listed by another organization first leaves it.
    fn seen(&self, seen: RecordAccountSeen) -> Vec<AccountEvent> {
        let mut events = Vec::new();
        let current = match &self.listed {
            Some(listed) if listed.organization_id == seen.organization_id => listed,
            other => {
                if let Some(listed) = other {
                    events.push(AccountEvent::AccountLeftOrganization {
                        organization_id: listed.organization_id.clone(),
                    });
                }
                events.push(AccountEvent::AccountDiscovered {
                    organization_id: seen.organization_id,
                    name: seen.name,
                    email: seen.email,
                    state: seen.state,
                    org_path: seen.org_path,
                });
                return events;
            }
        };
        if current.name != seen.name {
            events.push(AccountEvent::AccountRenamed { name: seen.name });
        }
        if current.email != seen.email {
            events.push(AccountEvent::AccountEmailChanged { email: seen.email });
        }
        if current.org_path != seen.org_path {
            events.push(AccountEvent::AccountMoved {
                org_path: seen.org_path,
            });
        }
        if current.state != seen.state {
            events.push(AccountEvent::AccountStateChanged { state: seen.state });
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::domain::account::{RecordAccountGone, TagChanged};
    use crate::domain::OrgUnit;

    type AccountTest = TestFramework<Account>;

    fn org() -> OrgId {
        "o-abcdefghij".try_into().unwrap()
    }

    fn path(names: &[&str]) -> OrgPath {
        let mut path = vec![OrgUnit {
            id: "r-ab12".try_into().unwrap(),
            name: "Root".into(),
        }];
        for (i, name) in names.iter().enumerate() {
            path.push(OrgUnit {
                id: format!("ou-ab12-0000000{i}").try_into().unwrap(),
                name: (*name).into(),
            });
        }
        path
    }

    fn seen(name: &str, state: AccountState, org_path: OrgPath) -> AccountCommand {
        AccountCommand::RecordAccountSeen(RecordAccountSeen {
            organization_id: org(),
            name: name.into(),
            email: "a@example.com".into(),
            state,
            org_path,
        })
    }

    fn discovered() -> AccountEvent {
        AccountEvent::AccountDiscovered {
            organization_id: org(),
            name: "alpha".into(),
            email: "a@example.com".into(),
            state: AccountState::Active,
            org_path: path(&["Workloads"]),
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn tag_changed(pairs: &[(&str, &str)]) -> AccountCommand {
        AccountCommand::TagChanged(TagChanged { tags: tags(pairs) })
    }

    #[tokio::test]
    async fn first_sighting_discovers_the_account() {
        AccountTest::with(())
            .given_no_previous_events()
            .when_async(seen("alpha", AccountState::Active, path(&["Workloads"])))
            .await
            .then_expect_events(vec![discovered()]);
    }

    #[tokio::test]
    async fn i3_sighting_with_nothing_changed_appends_nothing() {
        AccountTest::with(())
            .given(vec![discovered()])
            .when_async(seen("alpha", AccountState::Active, path(&["Workloads"])))
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn sighting_reports_only_what_changed() {
        AccountTest::with(())
            .given(vec![discovered()])
            .when_async(seen("beta", AccountState::Suspended, path(&["Workloads"])))
            .await
            .then_expect_events(vec![
                AccountEvent::AccountRenamed {
                    name: "beta".into(),
                },
                AccountEvent::AccountStateChanged {
                    state: AccountState::Suspended,
                },
            ]);
        AccountTest::with(())
            .given(vec![discovered()])
            .when_async(seen("alpha", AccountState::Active, path(&["Sandbox"])))
            .await
            .then_expect_events(vec![AccountEvent::AccountMoved {
                org_path: path(&["Sandbox"]),
            }]);
    }

    #[tokio::test]
    async fn account_that_left_is_discovered_again() {
        AccountTest::with(())
            .given(vec![
                discovered(),
                AccountEvent::AccountLeftOrganization {
                    organization_id: org(),
                },
            ])
            .when_async(seen("alpha", AccountState::Active, path(&["Workloads"])))
            .await
            .then_expect_events(vec![discovered()]);
    }

    #[tokio::test]
    async fn account_listed_by_another_organization_moves_over() {
        let other: OrgId = "o-zzzzzzzzzz".try_into().unwrap();
        AccountTest::with(())
            .given(vec![AccountEvent::AccountDiscovered {
                organization_id: other.clone(),
                name: "alpha".into(),
                email: "a@example.com".into(),
                state: AccountState::Active,
                org_path: path(&["Workloads"]),
            }])
            .when_async(seen("alpha", AccountState::Active, path(&["Workloads"])))
            .await
            .then_expect_events(vec![
                AccountEvent::AccountLeftOrganization {
                    organization_id: other,
                },
                discovered(),
            ]);
    }

    #[tokio::test]
    async fn suspend_changes_state_once() {
        AccountTest::with(())
            .given(vec![discovered()])
            .when_async(AccountCommand::SuspendAccount)
            .await
            .then_expect_events(vec![AccountEvent::AccountStateChanged {
                state: AccountState::Suspended,
            }]);
        AccountTest::with(())
            .given(vec![
                discovered(),
                AccountEvent::AccountStateChanged {
                    state: AccountState::Suspended,
                },
            ])
            .when_async(AccountCommand::SuspendAccount)
            .await
            .then_expect_events(vec![]);
        AccountTest::with(())
            .given_no_previous_events()
            .when_async(AccountCommand::SuspendAccount)
            .await
            .then_expect_error(AccountError::NotListed);
    }

    #[tokio::test]
    async fn tag_changes_carry_set_and_removed_keys() {
        AccountTest::with(())
            .given(vec![
                discovered(),
                AccountEvent::AccountTagsChanged {
                    set: tags(&[("env", "dev"), ("team", "red"), ("keep", "1")]),
                    removed: vec![],
                },
            ])
            .when_async(tag_changed(&[("env", "prod"), ("keep", "1"), ("new", "x")]))
            .await
            .then_expect_events(vec![AccountEvent::AccountTagsChanged {
                set: tags(&[("env", "prod"), ("new", "x")]),
                removed: vec!["team".into()],
            }]);
    }

    #[tokio::test]
    async fn i3_unchanged_tags_append_nothing() {
        AccountTest::with(())
            .given(vec![
                discovered(),
                AccountEvent::AccountTagsChanged {
                    set: tags(&[("env", "dev")]),
                    removed: vec![],
                },
            ])
            .when_async(tag_changed(&[("env", "dev")]))
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn tags_of_an_unlisted_account_are_refused() {
        AccountTest::with(())
            .given_no_previous_events()
            .when_async(tag_changed(&[("env", "dev")]))
            .await
            .then_expect_error(AccountError::NotListed);
    }

    #[tokio::test]
    async fn rediscovered_account_gets_its_tags_again() {
        AccountTest::with(())
            .given(vec![
                discovered(),
                AccountEvent::AccountTagsChanged {
                    set: tags(&[("env", "dev")]),
                    removed: vec![],
                },
                AccountEvent::AccountLeftOrganization {
                    organization_id: org(),
                },
                discovered(),
            ])
            .when_async(tag_changed(&[("env", "dev")]))
            .await
            .then_expect_events(vec![AccountEvent::AccountTagsChanged {
                set: tags(&[("env", "dev")]),
                removed: vec![],
            }]);
    }

    #[tokio::test]
    async fn gone_account_leaves_once() {
        let gone = || {
            AccountCommand::RecordAccountGone(RecordAccountGone {
                organization_id: org(),
            })
        };
        AccountTest::with(())
            .given(vec![discovered()])
            .when_async(gone())
            .await
            .then_expect_events(vec![AccountEvent::AccountLeftOrganization {
                organization_id: org(),
            }]);
        AccountTest::with(())
            .given(vec![
                discovered(),
                AccountEvent::AccountLeftOrganization {
                    organization_id: org(),
                },
            ])
            .when_async(gone())
            .await
            .then_expect_events(vec![]);
    }
}
