//! What callers send, as REST bodies and GraphQL inputs alike (one type serves both), and how
//! it becomes validated domain values. Nothing past this module sees raw input.

use async_graphql::{InputObject, MaybeUndefined};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as CURSOR;
use base64::Engine;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::app::{AccountRole, AppError, FiltersPatch, OrganizationChange, Registration};
use crate::domain::account::{badges, AccessStatus};
use crate::domain::organization::{Credentials, Filters, MemberRole, OrgRole};
use crate::domain::{AccountId, AccountState, OrgId, ParentId, QueueUrl};
use crate::projections::accounts::AccountQuery;

/// A registration.
#[derive(Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "RegisterOrganizationInput")]
pub struct RegisterBody {
    /// The name operators know it by (1 to 64 characters).
    pub nickname: String,
    /// The role in the management account.
    pub org_role: OrgRoleBody,
    /// The role in every member account.
    pub member_role: MemberRoleBody,
    /// Scope and badge filters.
    #[serde(default)]
    #[graphql(default)]
    pub filters: FiltersBody,
    /// The SQS queue Organizations' events arrive on (R16), checked through the org role.
    pub events_queue_url: Option<String>,
}

/// The role in the management account.
#[derive(Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "OrgRoleInput")]
pub struct OrgRoleBody {
    /// `arn:<aws|aws-us-gov|aws-cn>:iam::<account>:role/<name>`.
    pub role_arn: String,
    /// `[\w+=,.@-]{2,64}`.
    pub session_name: String,
    /// 900 to 43200.
    pub duration_seconds: i64,
}

/// The role in every member account.
#[derive(Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "MemberRoleInput")]
pub struct MemberRoleBody {
    /// The role's name, the same in every account.
    pub role_name: String,
    /// `[\w+=,.@-]{2,64}`.
    pub session_name: String,
    /// 900 to 43200.
    pub duration_seconds: i64,
}

/// Scope and badge filters; keys left out take their defaults.
#[derive(Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "FiltersInput")]
pub struct FiltersBody {
    /// Accounts whose name starts with one of these are left out.
    #[serde(default)]
    #[graphql(default)]
    pub exclude_name_prefixes: Vec<String>,
    /// Only accounts nested below these OUs or roots are listed (all when empty).
    #[serde(default)]
    #[graphql(default)]
    pub limit_scope_ou_ids: Vec<String>,
    /// Suspended and closed accounts leave the listing.
    #[serde(default)]
    #[graphql(default)]
    pub auto_remove_suspended: bool,
    /// Badges mirror the accounts' tags.
    #[serde(default = "auto_badge_by_default")]
    #[graphql(default_with = "auto_badge_by_default()")]
    pub auto_badge: bool,
}

fn auto_badge_by_default() -> bool {
    Filters::default().auto_badge
}

/// The domain's defaults, as a body.
impl Default for FiltersBody {
    fn default() -> Self {
        let defaults = Filters::default();
        let ids = defaults.limit_scope_ou_ids.into_iter().map(String::from);
        Self {
            exclude_name_prefixes: defaults.exclude_name_prefixes,
            limit_scope_ou_ids: ids.collect(),
            auto_remove_suspended: defaults.auto_remove_suspended,
            auto_badge: defaults.auto_badge,
        }
    }
}

/// The org role again, every field optional: a full credential set or none (R13).
#[derive(Deserialize, Default, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "OrgRolePatch")]
pub struct OrgRolePatch {
    /// The role's ARN.
    pub role_arn: Option<String>,
    /// The session name.
    pub session_name: Option<String>,
    /// The session duration.
    pub duration_seconds: Option<i64>,
}

/// The member role again, every field optional: a full credential set or none (R13).
#[derive(Deserialize, Default, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "MemberRolePatch")]
pub struct MemberRolePatch {
    /// The role's name.
    pub role_name: Option<String>,
    /// The session name.
    pub session_name: Option<String>,
    /// The session duration.
    pub duration_seconds: Option<i64>,
}

/// Filters to change; keys left out keep their value.
#[derive(Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "FiltersPatch")]
pub struct FiltersPatchBody {
    /// New name prefixes to exclude.
    pub exclude_name_prefixes: Option<Vec<String>>,
    /// New OUs to limit the scope to.
    pub limit_scope_ou_ids: Option<Vec<String>>,
    /// Whether suspended accounts leave the listing.
    pub auto_remove_suspended: Option<bool>,
    /// Whether badges follow tags.
    pub auto_badge: Option<bool>,
}

/// An edit: nickname, filters, both roles with every field, or the events queue.
#[derive(Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "UpdateOrganizationInput")]
pub struct UpdateBody {
    /// A new nickname.
    pub nickname: Option<String>,
    /// Filters to change.
    pub filters: Option<FiltersPatchBody>,
    /// The org role, every field.
    pub org_role: Option<OrgRolePatch>,
    /// The member role, every field.
    pub member_role: Option<MemberRolePatch>,
    /// A new events queue (R16), checked through the org role; null to stop following one.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub events_queue_url: MaybeUndefined<String>,
}

/// A manual badge.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BadgeBody {
    /// Its key; `system.` keys and `cloud_org_path` belong to orgsync.
    pub key: String,
    /// Its value (up to 256 characters).
    pub value: String,
}

fn invalid(message: String) -> AppError {
    AppError::Invalid {
        code: "invalid_field",
        message,
    }
}

/// Checks a free-text field: trimmed, `min` to `max` characters, no control characters.
pub fn text_field(field: &str, raw: String, min: usize, max: usize) -> Result<String, AppError> {
    let trimmed = raw.trim();
    let count = trimmed.chars().count();
    if count < min || count > max || trimmed.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{field}: expected {min} to {max} printable characters, got {raw:?}"
        )));
    }
    Ok(trimmed.to_owned())
}

/// A manual badge's key: never one orgsync owns.
pub fn badge_key(raw: String) -> Result<String, AppError> {
    let key = text_field("key", raw, 1, 128)?;
    if badges::is_reserved(&key) {
        return Err(AppError::Invalid {
            code: "reserved_badge",
            message: format!("key: {key:?} is reserved for orgsync's own badges"),
        });
    }
    Ok(key)
}

/// A manual badge's value.
pub fn badge_value(raw: String) -> Result<String, AppError> {
    text_field("value", raw, 0, 256)
}

fn prefixes(prefixes: Vec<String>) -> Result<Vec<String>, AppError> {
    if prefixes.iter().any(String::is_empty) {
        return Err(invalid(
            "exclude_name_prefixes: an empty prefix would exclude every account".into(),
        ));
    }
    Ok(prefixes)
}

fn scope(ids: Vec<String>) -> Result<Vec<ParentId>, AppError> {
    Ok(ids
        .into_iter()
        .map(ParentId::try_from)
        .collect::<Result<_, _>>()?)
}

impl TryFrom<FiltersBody> for Filters {
    type Error = AppError;
    fn try_from(body: FiltersBody) -> Result<Self, AppError> {
        Ok(Filters {
            exclude_name_prefixes: prefixes(body.exclude_name_prefixes)?,
            limit_scope_ou_ids: scope(body.limit_scope_ou_ids)?,
            auto_remove_suspended: body.auto_remove_suspended,
            auto_badge: body.auto_badge,
        })
    }
}

fn role_credentials(org: OrgRoleBody, member: MemberRoleBody) -> Result<Credentials, AppError> {
    Ok(Credentials {
        org_role: OrgRole {
            role_arn: org.role_arn.try_into()?,
            session_name: org.session_name.try_into()?,
            duration_seconds: org.duration_seconds.try_into()?,
        },
        member_role: MemberRole {
            role_name: member.role_name.try_into()?,
            session_name: member.session_name.try_into()?,
            duration_seconds: member.duration_seconds.try_into()?,
        },
    })
}

impl TryFrom<RegisterBody> for Registration {
    type Error = AppError;
    fn try_from(body: RegisterBody) -> Result<Self, AppError> {
        Ok(Registration {
            nickname: text_field("nickname", body.nickname, 1, 64)?,
            credentials: role_credentials(body.org_role, body.member_role)?,
            filters: body.filters.try_into()?,
            events_queue: body.events_queue_url.map(QueueUrl::try_from).transpose()?,
        })
    }
}

/// Both roles with every field, or neither; anything between names what is missing.
fn credentials(
    org: Option<OrgRolePatch>,
    member: Option<MemberRolePatch>,
) -> Result<Option<Credentials>, AppError> {
    if org.is_none() && member.is_none() {
        return Ok(None);
    }
    let (org, member) = (org.unwrap_or_default(), member.unwrap_or_default());
    let missing: Vec<&str> = [
        ("org_role.role_arn", org.role_arn.is_none()),
        ("org_role.session_name", org.session_name.is_none()),
        ("org_role.duration_seconds", org.duration_seconds.is_none()),
        ("member_role.role_name", member.role_name.is_none()),
        ("member_role.session_name", member.session_name.is_none()),
        (
            "member_role.duration_seconds",
            member.duration_seconds.is_none(),
        ),
    ]
    .into_iter()
    .filter_map(|(name, absent)| absent.then_some(name))
    .collect();
    let (
        (Some(role_arn), Some(org_session), Some(org_duration)),
        (Some(role_name), Some(member_session), Some(member_duration)),
    ) = (
        (org.role_arn, org.session_name, org.duration_seconds),
        (
            member.role_name,
            member.session_name,
            member.duration_seconds,
        ),
    )
    else {
        return Err(AppError::Invalid {
            code: "incomplete_credentials",
            message: format!(
                "credentials are replaced whole, every field again; missing: {}",
                missing.join(", ")
            ),
        });
    };
    role_credentials(
        OrgRoleBody {
            role_arn,
            session_name: org_session,
            duration_seconds: org_duration,
        },
        MemberRoleBody {
            role_name,
            session_name: member_session,
            duration_seconds: member_duration,
        },
    )
    .map(Some)
}

impl TryFrom<UpdateBody> for OrganizationChange {
    type Error = AppError;
    fn try_from(body: UpdateBody) -> Result<Self, AppError> {
        let filters = body
            .filters
            .map(|f| -> Result<FiltersPatch, AppError> {
                Ok(FiltersPatch {
                    exclude_name_prefixes: f.exclude_name_prefixes.map(prefixes).transpose()?,
                    limit_scope_ou_ids: f.limit_scope_ou_ids.map(scope).transpose()?,
                    auto_remove_suspended: f.auto_remove_suspended,
                    auto_badge: f.auto_badge,
                })
            })
            .transpose()?;
        Ok(OrganizationChange {
            nickname: body
                .nickname
                .map(|n| text_field("nickname", n, 1, 64))
                .transpose()?,
            filters,
            credentials: credentials(body.org_role, body.member_role)?,
            events_queue: match body.events_queue_url {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(url) => Some(Some(QueueUrl::try_from(url)?)),
            },
        })
    }
}

/// A standalone account's role, which must be in the account itself.
#[derive(Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "AccountRoleInput")]
pub struct RoleBody {
    /// `arn:<partition>:iam::<the account>:role/<name>`.
    pub role_arn: String,
    /// `[\w+=,.@-]{2,64}`.
    pub session_name: String,
    /// 900 to 43200.
    pub duration_seconds: i64,
}

impl RoleBody {
    /// The role of account `id`, checked.
    pub fn parse(self, id: &AccountId) -> Result<AccountRole, AppError> {
        let role = AccountRole {
            role_arn: self.role_arn.try_into()?,
            session_name: self.session_name.try_into()?,
            duration_seconds: self.duration_seconds.try_into()?,
        };
        if role.role_arn.account_id() != id {
            return Err(invalid(format!(
                "role_arn: the role must be in account {id}, not {}",
                role.role_arn.account_id()
            )));
        }
        Ok(role)
    }
}

/// A standalone account and its role, which must be in the account itself.
#[derive(Deserialize, ToSchema, InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "AddAccountInput")]
pub struct AddBody {
    /// The 12-digit account id.
    pub account_id: String,
    /// The name operators know it by (1 to 64 characters).
    pub name: String,
    /// `arn:<partition>:iam::<the account>:role/<name>`.
    pub role_arn: String,
    /// `[\w+=,.@-]{2,64}`.
    pub session_name: String,
    /// 900 to 43200.
    pub duration_seconds: i64,
}

impl AddBody {
    /// The account, its name and its role, checked.
    pub fn parse(self) -> Result<(AccountId, String, AccountRole), AppError> {
        let id = AccountId::try_from(self.account_id)?;
        let name = text_field("name", self.name, 1, 64)?;
        let role = RoleBody {
            role_arn: self.role_arn,
            session_name: self.session_name,
            duration_seconds: self.duration_seconds,
        }
        .parse(&id)?;
        Ok((id, name, role))
    }
}

/// Most badge filters one listing takes: each is one more join for the database.
pub const MAX_BADGE_FILTERS: usize = 20;

/// Longest free-text search, in characters.
const MAX_SEARCH: usize = 256;

/// The listing's filters as REST's query string and GraphQL's arguments both give them, and
/// the one place they are checked: both faces accept and refuse the same, with the same codes.
#[derive(Debug, Default)]
pub struct ListingFilters {
    /// `organization`: an organization id.
    pub organization: Option<String>,
    /// `state`, parsed by the face (a string in REST, an enum in GraphQL).
    pub state: Option<AccountState>,
    /// `access`, parsed by the face as `state` is.
    pub access: Option<AccessStatus>,
    /// `ou`: a root or OU id; accounts nested anywhere below it.
    pub ou: Option<String>,
    /// `badge` (REST, repeatable) or `badges` (GraphQL): each `key:value`, all must match.
    pub badges: Vec<String>,
    /// `q`: text in the name, id or email.
    pub q: Option<String>,
}

impl ListingFilters {
    /// The query for at most `limit` accounts after `after` that these filters select.
    pub fn query(self, after: Option<AccountId>, limit: i64) -> Result<AccountQuery, AppError> {
        if self.badges.len() > MAX_BADGE_FILTERS {
            return Err(invalid_query(
                "badge",
                format!(
                    "at most {MAX_BADGE_FILTERS} badge filters, got {}",
                    self.badges.len()
                ),
            ));
        }
        let badges = self
            .badges
            .into_iter()
            .map(|badge| {
                let (key, value) = badge.split_once(':').ok_or_else(|| {
                    invalid_query("badge", format!("expected key:value, got {badge:?}"))
                })?;
                let key = text_field("badge key", key.to_owned(), 1, 128).map_err(as_query)?;
                let value =
                    text_field("badge value", value.to_owned(), 0, 256).map_err(as_query)?;
                Ok((key, value))
            })
            .collect::<Result<_, AppError>>()?;
        let organization = self
            .organization
            .map(|id| OrgId::try_from(id).map_err(|e| invalid_query("organization", e)))
            .transpose()?;
        let text = match self.q.filter(|q| !q.is_empty()) {
            Some(q) if q.chars().count() > MAX_SEARCH || q.chars().any(char::is_control) => {
                return Err(invalid_query(
                    "q",
                    format!("expected at most {MAX_SEARCH} printable characters"),
                ))
            }
            q => q,
        };
        let below = self
            .ou
            .map(|id| ParentId::try_from(id).map_err(|e| invalid_query("ou", e)))
            .transpose()?;
        Ok(AccountQuery {
            organization,
            state: self.state,
            access: self.access,
            below,
            badges,
            text,
            after,
            limit,
        })
    }
}

/// The cursor of the page after `account`.
pub fn cursor_after(account: &AccountId) -> String {
    CURSOR.encode(account.as_str())
}

/// The account a cursor given out by [`cursor_after`] continues after; `field` names the
/// parameter it came in.
pub fn cursor(field: &str, raw: &str) -> Result<AccountId, AppError> {
    CURSOR
        .decode(raw)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|id| AccountId::try_from(id).ok())
        .ok_or_else(|| invalid_query(field, "not a cursor this API gave out"))
}

/// Events on one page of the change feed or of a history when the caller does not say.
pub const DEFAULT_EVENTS: i64 = 100;
/// Most events on one page.
pub const MAX_EVENTS: i64 = 1000;

/// The position a page of events continues after (a cursor this API gave out: a position in
/// the log or in one history; from the start when absent) and how many it holds at most.
pub fn event_page(after: Option<&str>, limit: Option<i64>) -> Result<(i64, i64), AppError> {
    let after = match after {
        None => 0,
        Some(cursor) => cursor
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| invalid_query("after", "not a cursor this API gave out"))?,
    };
    let limit = limit.unwrap_or(DEFAULT_EVENTS);
    if !(1..=MAX_EVENTS).contains(&limit) {
        let message = format!("expected 1 to {MAX_EVENTS}, got {limit}");
        return Err(invalid_query("limit", message));
    }
    Ok((after, limit))
}

/// A token's lifetime from its `expires_in_seconds`: whole seconds, more than 0; `None` for a
/// token that never expires. The upper bound is the use case's.
pub fn token_lifetime(seconds: Option<i64>) -> Result<Option<std::time::Duration>, AppError> {
    seconds
        .map(|s| match u64::try_from(s) {
            Ok(s) if s > 0 => Ok(std::time::Duration::from_secs(s)),
            _ => Err(AppError::Invalid {
                code: "invalid_field",
                message: format!("expires_in_seconds: expected a positive number, got {s}"),
            }),
        })
        .transpose()
}

/// A listing parameter that is not as it should be.
pub fn invalid_query(field: &str, message: impl std::fmt::Display) -> AppError {
    AppError::Invalid {
        code: "invalid_query",
        message: format!("{field}: {message}"),
    }
}

/// A checked field's error, as a listing parameter's.
fn as_query(e: AppError) -> AppError {
    AppError::Invalid {
        code: "invalid_query",
        message: e.to_string(),
    }
}
