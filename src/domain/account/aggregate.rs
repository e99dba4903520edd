use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::domain::{AccountState, OrgId};

use super::badges::{self, Labels};
use super::{
    Access, AccountCommand, AccountError, AccountEvent, AddBadge, Listed, RecordAccountSeen,
    RemoveBadge, Tags,
};

/// An account's state, as far as deciding its commands needs it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Account {
    membership: Membership,
    labels: Labels,
    access: Option<Access>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
enum Membership {
    /// Not in the listing (never, or no more).
    #[default]
    Absent,
    /// In the listing with its own role.
    Standalone,
    /// In the listing through an organization.
    Managed(Listed),
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
        self.labels.apply(&event);
        match event {
            AccountEvent::AccountDiscovered(listed) => {
                self.membership = Membership::Managed(listed);
                // A listing starts without access; the harvest checks it.
                self.access = None;
            }
            AccountEvent::AccountLeftOrganization { .. }
            | AccountEvent::AccountRemoved { .. }
            | AccountEvent::AccountDeleted => *self = Self::default(),
            AccountEvent::AccountAdopted { .. } => self.membership = Membership::Absent,
            AccountEvent::StandaloneAccountAdded { .. } => self.membership = Membership::Standalone,
            AccountEvent::AccountAccessChanged { access } => self.access = Some(access),
            AccountEvent::AccountRenamed { name } => self.listed_mut().name = name,
            AccountEvent::AccountEmailChanged { email } => self.listed_mut().email = email,
            AccountEvent::AccountMoved { org_path } => self.listed_mut().org_path = org_path,
            AccountEvent::AccountStateChanged { state } => self.listed_mut().state = state,
            // Badges and tags only, applied above.
            AccountEvent::AccountTagsChanged { .. }
            | AccountEvent::AutoBadgeSwitched { .. }
            | AccountEvent::ManualBadgeAdded { .. }
            | AccountEvent::ManualBadgeRemoved { .. }
            | AccountEvent::AccountCredentialsReplaced { .. } => {}
        }
    }
}

impl Account {
    fn listed_mut(&mut self) -> &mut Listed {
        match &mut self.membership {
            Membership::Managed(listed) => listed,
            _ => unreachable!("events that change an account's facts follow its discovery"),
        }
    }

    fn managed(&self) -> Result<&Listed, AccountError> {
        match &self.membership {
            Membership::Managed(listed) => Ok(listed),
            _ => Err(AccountError::NotListed),
        }
    }

    fn managed_by(&self, org: &OrgId) -> bool {
        matches!(&self.membership, Membership::Managed(l) if l.organization_id == *org)
    }

    /// Standalone accounts only: managed ones use their organization's credentials (R12).
    fn standalone(&self) -> Result<(), AccountError> {
        match &self.membership {
            Membership::Standalone => Ok(()),
            Membership::Managed(listed) => Err(AccountError::ManagedByOrganization(
                listed.organization_id.clone(),
            )),
            Membership::Absent => Err(AccountError::NotListed),
        }
    }

    fn decide(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        let events = match command {
            AccountCommand::RecordAccountSeen(seen) => return Ok(self.seen(seen)),
            AccountCommand::SuspendAccount(suspend) => {
                let listed = self.managed()?;
                (listed.organization_id == suspend.organization_id
                    && listed.state != AccountState::Suspended)
                    .then_some(AccountEvent::AccountStateChanged {
                        state: AccountState::Suspended,
                    })
                    .into_iter()
                    .collect()
            }
            AccountCommand::SwitchAutoBadge(auto_badge) => {
                self.managed()?;
                let switched = AccountEvent::AutoBadgeSwitched { auto_badge };
                let mut after = self.labels.clone();
                after.apply(&switched);
                if after == self.labels {
                    vec![]
                } else {
                    vec![switched]
                }
            }
            AccountCommand::TagChanged(changed) => {
                self.managed()?;
                let tags = &self.labels.tags;
                let set: Tags = changed
                    .tags
                    .iter()
                    .filter(|(k, v)| tags.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let removed: Vec<String> = tags
                    .keys()
                    .filter(|k| !changed.tags.contains_key(*k))
                    .cloned()
                    .collect();
                if set.is_empty() && removed.is_empty() {
                    vec![]
                } else {
                    vec![AccountEvent::AccountTagsChanged {
                        set,
                        removed,
                        auto_badge: changed.auto_badge,
                    }]
                }
            }
            AccountCommand::RecordAccountGone(gone) => {
                if self.managed_by(&gone.organization_id) {
                    vec![AccountEvent::AccountLeftOrganization {
                        organization_id: gone.organization_id,
                    }]
                } else {
                    vec![]
                }
            }
            AccountCommand::RemoveAccount(remove) => {
                if self.managed_by(&remove.organization_id) {
                    vec![AccountEvent::AccountRemoved {
                        organization_id: remove.organization_id,
                        reason: remove.reason,
                    }]
                } else {
                    vec![]
                }
            }
            AccountCommand::RecordAccessCheck(access) => {
                if matches!(self.membership, Membership::Absent) {
                    return Err(AccountError::NotListed);
                }
                (self.access.as_ref() != Some(&access))
                    .then_some(AccountEvent::AccountAccessChanged { access })
                    .into_iter()
                    .collect()
            }
            AccountCommand::AddBadge(add) => self.add_badge(add)?,
            AccountCommand::RemoveBadge(remove) => self.remove_badge(remove)?,
            AccountCommand::AddStandaloneAccount(add) => match &self.membership {
                Membership::Absent => vec![AccountEvent::StandaloneAccountAdded {
                    name: add.name,
                    credentials: add.credentials,
                }],
                Membership::Standalone => return Err(AccountError::AlreadyExists),
                Membership::Managed(listed) => {
                    return Err(AccountError::ManagedByOrganization(
                        listed.organization_id.clone(),
                    ))
                }
            },
            AccountCommand::ReplaceAccountCredentials(credentials) => {
                self.standalone()?;
                vec![AccountEvent::AccountCredentialsReplaced { credentials }]
            }
            AccountCommand::DeleteAccount => {
                self.standalone()?;
                vec![AccountEvent::AccountDeleted]
            }
        };
        Ok(events)
    }

    fn add_badge(&self, add: AddBadge) -> Result<Vec<AccountEvent>, AccountError> {
        if matches!(self.membership, Membership::Absent) {
            return Err(AccountError::NotListed);
        }
        debug_assert!(
            !badges::is_reserved(&add.key),
            "the edge refuses reserved keys"
        );
        if add.auto_badge && self.labels.tags.contains_key(&add.key) {
            return Err(AccountError::BadgeMirrorsTag(add.key));
        }
        if self.labels.manual(&add.key) == Some(add.value.as_str()) {
            return Ok(vec![]);
        }
        Ok(vec![AccountEvent::ManualBadgeAdded {
            key: add.key,
            value: add.value,
        }])
    }

    fn remove_badge(&self, remove: RemoveBadge) -> Result<Vec<AccountEvent>, AccountError> {
        if matches!(self.membership, Membership::Absent) {
            return Err(AccountError::NotListed);
        }
        if remove.auto_badge && self.labels.tags.contains_key(&remove.key) {
            return Err(AccountError::BadgeMirrorsTag(remove.key));
        }
        if self.labels.manual(&remove.key).is_none() {
            return Err(AccountError::NoSuchBadge(remove.key));
        }
        Ok(vec![AccountEvent::ManualBadgeRemoved { key: remove.key }])
    }

    /// Only what changed (I3). A standalone account is adopted first (R12); an account
    /// listed by another organization leaves it first.
    fn seen(&self, seen: RecordAccountSeen) -> Vec<AccountEvent> {
        let mut events = Vec::new();
        match &self.membership {
            Membership::Managed(current) if current.organization_id == seen.organization_id => {
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
                return events;
            }
            Membership::Managed(other) => events.push(AccountEvent::AccountLeftOrganization {
                organization_id: other.organization_id.clone(),
            }),
            Membership::Standalone => events.push(AccountEvent::AccountAdopted {
                organization_id: seen.organization_id.clone(),
            }),
            Membership::Absent => {}
        }
        events.push(AccountEvent::AccountDiscovered(Listed {
            organization_id: seen.organization_id,
            name: seen.name,
            email: seen.email,
            state: seen.state,
            org_path: seen.org_path,
        }));
        events
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::crypto::Sealed;
    use crate::domain::account::{
        AccessStatus, AddStandaloneAccount, RecordAccountGone, RemovalReason, RemoveAccount,
        SuspendAccount, TagChanged,
    };
    use crate::domain::{OrgPath, OrgUnit};

    type AccountTest = TestFramework<Account>;

    fn org() -> OrgId {
        "o-abcdefghij".try_into().unwrap()
    }

    fn other_org() -> OrgId {
        "o-zzzzzzzzzz".try_into().unwrap()
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
        path.into()
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

    fn discovered_in(organization_id: OrgId) -> AccountEvent {
        AccountEvent::AccountDiscovered(Listed {
            organization_id,
            name: "alpha".into(),
            email: "a@example.com".into(),
            state: AccountState::Active,
            org_path: path(&["Workloads"]),
        })
    }

    fn discovered() -> AccountEvent {
        discovered_in(org())
    }

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn tag_changed(pairs: &[(&str, &str)]) -> AccountCommand {
        AccountCommand::TagChanged(TagChanged {
            tags: tags(pairs),
            auto_badge: true,
        })
    }

    fn tags_set(pairs: &[(&str, &str)]) -> AccountEvent {
        AccountEvent::AccountTagsChanged {
            set: tags(pairs),
            removed: vec![],
            auto_badge: true,
        }
    }

    fn suspend() -> AccountCommand {
        AccountCommand::SuspendAccount(SuspendAccount {
            organization_id: org(),
        })
    }

    fn sealed(s: &str) -> Sealed {
        Sealed::from_stored(format!("siv1:00000000:{s}"))
    }

    fn standalone() -> AccountEvent {
        AccountEvent::StandaloneAccountAdded {
            name: "solo".into(),
            credentials: sealed("AAAA"),
        }
    }

    fn badge(key: &str, value: &str, auto_badge: bool) -> AccountCommand {
        AccountCommand::AddBadge(AddBadge {
            key: key.into(),
            value: value.into(),
            auto_badge,
        })
    }

    fn remove_badge(key: &str, auto_badge: bool) -> AccountCommand {
        AccountCommand::RemoveBadge(RemoveBadge {
            key: key.into(),
            auto_badge,
        })
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
    async fn account_that_left_or_was_removed_is_discovered_again() {
        for gone in [
            AccountEvent::AccountLeftOrganization {
                organization_id: org(),
            },
            AccountEvent::AccountRemoved {
                organization_id: org(),
                reason: RemovalReason::Excluded,
            },
        ] {
            AccountTest::with(())
                .given(vec![discovered(), gone])
                .when_async(seen("alpha", AccountState::Active, path(&["Workloads"])))
                .await
                .then_expect_events(vec![discovered()]);
        }
    }

    #[tokio::test]
    async fn account_listed_by_another_organization_moves_over() {
        AccountTest::with(())
            .given(vec![discovered_in(other_org())])
            .when_async(seen("alpha", AccountState::Active, path(&["Workloads"])))
            .await
            .then_expect_events(vec![
                AccountEvent::AccountLeftOrganization {
                    organization_id: other_org(),
                },
                discovered(),
            ]);
    }

    #[tokio::test]
    async fn r12_standalone_account_is_adopted_by_its_organization() {
        AccountTest::with(())
            .given(vec![standalone()])
            .when_async(seen("alpha", AccountState::Active, path(&["Workloads"])))
            .await
            .then_expect_events(vec![
                AccountEvent::AccountAdopted {
                    organization_id: org(),
                },
                discovered(),
            ]);
    }

    #[tokio::test]
    async fn r12_managed_account_credentials_cannot_be_edited_or_deleted() {
        let managed = AccountError::ManagedByOrganization(org());
        AccountTest::with(())
            .given(vec![discovered()])
            .when_async(AccountCommand::ReplaceAccountCredentials(sealed("B")))
            .await
            .then_expect_error(managed.clone());
        AccountTest::with(())
            .given(vec![discovered()])
            .when_async(AccountCommand::DeleteAccount)
            .await
            .then_expect_error(managed.clone());
        AccountTest::with(())
            .given(vec![discovered()])
            .when_async(AccountCommand::AddStandaloneAccount(AddStandaloneAccount {
                name: "solo".into(),
                credentials: sealed("C"),
            }))
            .await
            .then_expect_error(managed);
    }

    #[tokio::test]
    async fn standalone_account_life_cycle() {
        AccountTest::with(())
            .given_no_previous_events()
            .when_async(AccountCommand::AddStandaloneAccount(AddStandaloneAccount {
                name: "solo".into(),
                credentials: sealed("AAAA"),
            }))
            .await
            .then_expect_events(vec![standalone()]);
        AccountTest::with(())
            .given(vec![standalone()])
            .when_async(AccountCommand::AddStandaloneAccount(AddStandaloneAccount {
                name: "solo".into(),
                credentials: sealed("AAAA"),
            }))
            .await
            .then_expect_error(AccountError::AlreadyExists);
        AccountTest::with(())
            .given(vec![standalone()])
            .when_async(AccountCommand::ReplaceAccountCredentials(sealed("B")))
            .await
            .then_expect_events(vec![AccountEvent::AccountCredentialsReplaced {
                credentials: sealed("B"),
            }]);
        AccountTest::with(())
            .given(vec![standalone()])
            .when_async(AccountCommand::DeleteAccount)
            .await
            .then_expect_events(vec![AccountEvent::AccountDeleted]);
        AccountTest::with(())
            .given_no_previous_events()
            .when_async(AccountCommand::DeleteAccount)
            .await
            .then_expect_error(AccountError::NotListed);
    }

    #[tokio::test]
    async fn suspend_changes_state_once() {
        AccountTest::with(())
            .given(vec![discovered()])
            .when_async(suspend())
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
            .when_async(suspend())
            .await
            .then_expect_events(vec![]);
        AccountTest::with(())
            .given_no_previous_events()
            .when_async(suspend())
            .await
            .then_expect_error(AccountError::NotListed);
    }

    #[tokio::test]
    async fn tag_changes_carry_set_and_removed_keys() {
        AccountTest::with(())
            .given(vec![
                discovered(),
                tags_set(&[("env", "dev"), ("team", "red"), ("keep", "1")]),
            ])
            .when_async(tag_changed(&[("env", "prod"), ("keep", "1"), ("new", "x")]))
            .await
            .then_expect_events(vec![AccountEvent::AccountTagsChanged {
                set: tags(&[("env", "prod"), ("new", "x")]),
                removed: vec!["team".into()],
                auto_badge: true,
            }]);
    }

    #[tokio::test]
    async fn i3_unchanged_tags_append_nothing() {
        AccountTest::with(())
            .given(vec![discovered(), tags_set(&[("env", "dev")])])
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
                tags_set(&[("env", "dev")]),
                AccountEvent::AccountLeftOrganization {
                    organization_id: org(),
                },
                discovered(),
            ])
            .when_async(tag_changed(&[("env", "dev")]))
            .await
            .then_expect_events(vec![tags_set(&[("env", "dev")])]);
    }

    #[tokio::test]
    async fn gone_and_removed_accounts_leave_once() {
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
        let remove = AccountCommand::RemoveAccount(RemoveAccount {
            organization_id: org(),
            reason: RemovalReason::Suspended,
        });
        AccountTest::with(())
            .given(vec![discovered()])
            .when_async(remove.clone())
            .await
            .then_expect_events(vec![AccountEvent::AccountRemoved {
                organization_id: org(),
                reason: RemovalReason::Suspended,
            }]);
        AccountTest::with(())
            .given(vec![discovered_in(other_org())])
            .when_async(remove)
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn r4_access_changes_are_recorded_only_when_the_outcome_changes() {
        let failed = Access {
            status: AccessStatus::AssumeRoleFailed,
            message: Some("AccessDenied: not authorized".into()),
            warnings: vec![],
            permissions_checked: false,
        };
        AccountTest::with(())
            .given(vec![discovered()])
            .when_async(AccountCommand::RecordAccessCheck(failed.clone()))
            .await
            .then_expect_events(vec![AccountEvent::AccountAccessChanged {
                access: failed.clone(),
            }]);
        AccountTest::with(())
            .given(vec![
                discovered(),
                AccountEvent::AccountAccessChanged {
                    access: failed.clone(),
                },
            ])
            .when_async(AccountCommand::RecordAccessCheck(failed))
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn manual_badges_are_idempotent_and_removable() {
        AccountTest::with(())
            .given(vec![discovered()])
            .when_async(badge("owner", "ann", true))
            .await
            .then_expect_events(vec![AccountEvent::ManualBadgeAdded {
                key: "owner".into(),
                value: "ann".into(),
            }]);
        let with_badge = vec![
            discovered(),
            AccountEvent::ManualBadgeAdded {
                key: "owner".into(),
                value: "ann".into(),
            },
        ];
        AccountTest::with(())
            .given(with_badge.clone())
            .when_async(badge("owner", "ann", true))
            .await
            .then_expect_events(vec![]);
        AccountTest::with(())
            .given(with_badge)
            .when_async(remove_badge("owner", true))
            .await
            .then_expect_events(vec![AccountEvent::ManualBadgeRemoved {
                key: "owner".into(),
            }]);
        AccountTest::with(())
            .given(vec![discovered()])
            .when_async(remove_badge("owner", true))
            .await
            .then_expect_error(AccountError::NoSuchBadge("owner".into()));
    }

    #[tokio::test]
    async fn r10_tag_badges_cannot_be_edited_by_hand_while_auto_badging() {
        let tagged = vec![discovered(), tags_set(&[("env", "prod")])];
        AccountTest::with(())
            .given(tagged.clone())
            .when_async(badge("env", "dev", true))
            .await
            .then_expect_error(AccountError::BadgeMirrorsTag("env".into()));
        AccountTest::with(())
            .given(tagged.clone())
            .when_async(remove_badge("env", true))
            .await
            .then_expect_error(AccountError::BadgeMirrorsTag("env".into()));
        AccountTest::with(())
            .given(tagged)
            .when_async(badge("env", "dev", false))
            .await
            .then_expect_events(vec![AccountEvent::ManualBadgeAdded {
                key: "env".into(),
                value: "dev".into(),
            }]);
    }

    #[tokio::test]
    async fn r10_tag_takes_over_a_manual_badge_of_its_key() {
        // The tag badge replaced the manual one; when the tag goes, so does the badge, and
        // adding it by hand again is a new event.
        AccountTest::with(())
            .given(vec![
                discovered(),
                AccountEvent::ManualBadgeAdded {
                    key: "env".into(),
                    value: "dev".into(),
                },
                tags_set(&[("env", "prod")]),
                AccountEvent::AccountTagsChanged {
                    set: Tags::new(),
                    removed: vec!["env".into()],
                    auto_badge: true,
                },
            ])
            .when_async(badge("env", "dev", true))
            .await
            .then_expect_events(vec![AccountEvent::ManualBadgeAdded {
                key: "env".into(),
                value: "dev".into(),
            }]);
    }
}
