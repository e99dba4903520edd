//! Validated value types. Raw input becomes one of these at the edge (`TryFrom<String>`), so
//! nothing past the API layer has to wonder whether an id or an ARN is well formed.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Why a raw value was refused; the message is shown to the caller as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidValue {
    /// The name of the field, as the caller spelled it.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl InvalidValue {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

fn all(s: &str, allowed: impl Fn(char) -> bool) -> bool {
    s.chars().all(allowed)
}

fn lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Defines a string newtype whose constructor checks `$valid`.
macro_rules! string_value {
    ($(#[$doc:meta])* $name:ident, $field:literal, $expect:literal, $valid:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(value: String) -> Result<Self, InvalidValue> {
                let valid: fn(&str) -> bool = $valid;
                if valid(&value) {
                    Ok(Self(value))
                } else {
                    Err(InvalidValue::new($field, format!("expected {}, got {:?}", $expect, value)))
                }
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidValue;
            fn try_from(value: &str) -> Result<Self, InvalidValue> {
                Self::try_from(value.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_value!(
    /// An AWS Organizations id: `o-` and 10 to 32 lower-case letters or digits.
    OrgId,
    "organization_id",
    "o- followed by 10 to 32 lower-case letters or digits",
    |s| s
        .strip_prefix("o-")
        .is_some_and(|r| (10..=32).contains(&r.len()) && all(r, lower_alnum))
);

string_value!(
    /// A 12-digit AWS account id.
    AccountId,
    "account_id",
    "12 digits",
    |s| s.len() == 12 && all(s, |c| c.is_ascii_digit())
);

string_value!(
    /// The id of an organization root (`r-…`) or organizational unit (`ou-…`).
    ParentId,
    "ou_id",
    "an OU id (ou-xxxx-xxxxxxxx) or a root id (r-xxxx)",
    |s| {
        if let Some(r) = s.strip_prefix("r-") {
            (4..=32).contains(&r.len()) && all(r, lower_alnum)
        } else if let Some(r) = s.strip_prefix("ou-") {
            r.split_once('-').is_some_and(|(root, ou)| {
                (4..=32).contains(&root.len())
                    && all(root, lower_alnum)
                    && (8..=32).contains(&ou.len())
                    && all(ou, lower_alnum)
            })
        } else {
            false
        }
    }
);

fn session_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

string_value!(
    /// An STS role session name: `[\w+=,.@-]{2,64}`.
    SessionName,
    "session_name",
    "2 to 64 characters of letters, digits and _+=,.@-",
    |s| (2..=64).contains(&s.len()) && all(s, session_name_char)
);

string_value!(
    /// An IAM role name: `[\w+=,.@-]{1,64}`.
    RoleName,
    "role_name",
    "1 to 64 characters of letters, digits and _+=,.@-",
    |s| (1..=64).contains(&s.len()) && all(s, session_name_char)
);

string_value!(
    /// An SQS queue URL: `https://<host>/<12-digit account>/<name>`, the name 1 to 80
    /// letters, digits, `-` or `_` (a FIFO queue's ending in `.fifo`). Plain `http` only for
    /// a local endpoint (an emulator on 127.0.0.1 or localhost).
    QueueUrl,
    "events_queue_url",
    "https://sqs.<region>.amazonaws.com/<account id>/<queue name>",
    |s| {
        let rest = s.strip_prefix("https://").or_else(|| {
            s.strip_prefix("http://")
                .filter(|r| r.starts_with("127.0.0.1") || r.starts_with("localhost"))
        });
        rest.and_then(|r| r.split_once('/')).is_some_and(|(host, path)| {
            let queue_name = |name: &str| {
                let name = name.strip_suffix(".fifo").unwrap_or(name);
                (1..=80).contains(&name.len())
                    && all(name, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            };
            !host.is_empty()
                && all(host, |c| c.is_ascii_alphanumeric() || ".-:".contains(c))
                && path.split_once('/').is_some_and(|(account, name)| {
                    AccountId::try_from(account).is_ok() && queue_name(name)
                })
        })
    }
);

/// The AWS partitions orgsync can work in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Partition {
    /// Commercial regions.
    #[serde(rename = "aws")]
    Aws,
    /// AWS GovCloud (US).
    #[serde(rename = "aws-us-gov")]
    AwsUsGov,
    /// The China regions.
    #[serde(rename = "aws-cn")]
    AwsCn,
}

impl Partition {
    /// The partition as it appears in an ARN.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::AwsUsGov => "aws-us-gov",
            Self::AwsCn => "aws-cn",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Aws, Self::AwsUsGov, Self::AwsCn]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// The ARN of an IAM role: `arn:<partition>:iam::<account>:role/<path/><name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoleArn {
    arn: String,
    partition: Partition,
    account_id: AccountId,
}

impl RoleArn {
    /// The role in `account_id` named `name`, in `partition`.
    pub fn new(partition: Partition, account_id: &AccountId, name: &RoleName) -> Self {
        Self {
            arn: format!("arn:{}:iam::{account_id}:role/{name}", partition.as_str()),
            partition,
            account_id: account_id.clone(),
        }
    }

    /// The ARN as text.
    pub fn as_str(&self) -> &str {
        &self.arn
    }

    /// The partition the role lives in.
    pub fn partition(&self) -> Partition {
        self.partition
    }

    /// The account that owns the role.
    pub fn account_id(&self) -> &AccountId {
        &self.account_id
    }
}

impl TryFrom<String> for RoleArn {
    type Error = InvalidValue;
    fn try_from(arn: String) -> Result<Self, InvalidValue> {
        let bad = |why: &str| InvalidValue::new("role_arn", format!("{why}, got {arn:?}"));
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = parts[..] else {
            return Err(bad("expected arn:<partition>:iam::<account>:role/<name>"));
        };
        if prefix != "arn" || service != "iam" || !region.is_empty() {
            return Err(bad("expected arn:<partition>:iam::<account>:role/<name>"));
        }
        let partition = Partition::parse(partition)
            .ok_or_else(|| bad("partition must be aws, aws-us-gov or aws-cn"))?;
        let account_id =
            AccountId::try_from(account).map_err(|_| bad("account must be 12 digits"))?;
        let name = resource
            .strip_prefix("role/")
            .ok_or_else(|| bad("resource must be role/<name>"))?;
        let (path, name) = name.rsplit_once('/').unwrap_or(("", name));
        let path_ok = path
            .split('/')
            .all(|p| p.is_empty() || all(p, |c| c.is_ascii_graphic()));
        if !path_ok || RoleName::try_from(name).is_err() {
            return Err(bad(
                "role name must be 1 to 64 characters of letters, digits and _+=,.@-",
            ));
        }
        Ok(Self {
            arn,
            partition,
            account_id,
        })
    }
}

impl From<RoleArn> for String {
    fn from(value: RoleArn) -> String {
        value.arn
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

/// How long an assumed-role session lasts: 900 to 43200 seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct SessionDuration(i32);

impl SessionDuration {
    /// The duration in seconds.
    pub fn seconds(self) -> i32 {
        self.0
    }
}

impl TryFrom<i64> for SessionDuration {
    type Error = InvalidValue;
    fn try_from(seconds: i64) -> Result<Self, InvalidValue> {
        match i32::try_from(seconds) {
            Ok(s) if (900..=43200).contains(&s) => Ok(Self(s)),
            _ => Err(InvalidValue::new(
                "duration_seconds",
                format!("expected 900 to 43200 seconds, got {seconds}"),
            )),
        }
    }
}

impl From<SessionDuration> for i64 {
    fn from(value: SessionDuration) -> i64 {
        value.0.into()
    }
}

/// The account's life-cycle state as AWS reports it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    async_graphql::Enum,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccountState {
    /// Being created.
    PendingActivation,
    /// In use.
    Active,
    /// Suspended by AWS or closed and within the post-closure period.
    Suspended,
    /// Closure requested, not yet done.
    PendingClosure,
    /// Closed for good.
    Closed,
}

impl AccountState {
    /// The state as AWS spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingActivation => "PENDING_ACTIVATION",
            Self::Active => "ACTIVE",
            Self::Suspended => "SUSPENDED",
            Self::PendingClosure => "PENDING_CLOSURE",
            Self::Closed => "CLOSED",
        }
    }

    /// Parses AWS's spelling of a state.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::PendingActivation,
            Self::Active,
            Self::Suspended,
            Self::PendingClosure,
            Self::Closed,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }
}

/// One step of an account's place in the OU tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrgUnit {
    /// The root or OU id.
    #[schema(value_type = String, example = "ou-ab12-abcdefgh")]
    pub id: ParentId,
    /// Its name.
    pub name: String,
}

/// The path from the root down to the OU holding an account, root first; shared by the
/// accounts of one OU, which a listing of the largest organizations holds by the thousand.
pub type OrgPath = Arc<[OrgUnit]>;

/// Who caused an event: a token name, the scheduler, a harvest, or an AWS call recorded by
/// CloudTrail (R16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    name: String,
    trail: Option<Trail>,
}

/// The CloudTrail record of the AWS call an event follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trail {
    /// CloudTrail's `eventID`.
    pub event_id: String,
    /// The ARN of who made the call, when CloudTrail names one.
    pub caller_arn: Option<String>,
}

impl Actor {
    fn named(name: String) -> Self {
        Self { name, trail: None }
    }

    /// A person or program identified by its API token's name.
    pub fn token(name: &str) -> Self {
        Self::named(format!("token:{name}"))
    }

    /// The scheduler, acting on its own.
    pub fn scheduler() -> Self {
        Self::named("scheduler".into())
    }

    /// A harvest of the given organization.
    pub fn harvest(org: &OrgId) -> Self {
        Self::named(format!("harvest:{org}"))
    }

    /// The AWS call `event_name` (`event:MoveAccount`), as CloudTrail recorded it.
    pub fn aws_call(event_name: &str, trail: Trail) -> Self {
        Self {
            name: format!("event:{event_name}"),
            trail: Some(trail),
        }
    }

    /// The actor as recorded in event metadata.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The CloudTrail record of the call, for an AWS call.
    pub fn trail(&self) -> Option<&Trail> {
        self.trail.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arn_accepts_every_partition_and_paths() {
        for arn in [
            "arn:aws:iam::111122223333:role/OrgSync-Org-Role",
            "arn:aws-us-gov:iam::111122223333:role/path/to/Role",
            "arn:aws-cn:iam::111122223333:role/r",
        ] {
            let parsed = RoleArn::try_from(arn.to_owned()).unwrap();
            assert_eq!(parsed.as_str(), arn);
            assert_eq!(parsed.account_id().as_str(), "111122223333");
        }
    }

    #[test]
    fn role_arn_rejects_malformed_values() {
        for arn in [
            "",
            "arn:aws:iam::111122223333:user/bob",
            "arn:aws-iso:iam::111122223333:role/r",
            "arn:aws:s3::111122223333:role/r",
            "arn:aws:iam:us-east-1:111122223333:role/r",
            "arn:aws:iam::11112222333:role/r",
            "arn:aws:iam::111122223333:role/",
            "arn:aws:iam::111122223333:role/has space",
        ] {
            assert!(
                RoleArn::try_from(arn.to_owned()).is_err(),
                "{arn} was accepted"
            );
        }
    }

    #[test]
    fn duration_bounds_are_inclusive() {
        assert!(SessionDuration::try_from(899).is_err());
        assert!(SessionDuration::try_from(900).is_ok());
        assert!(SessionDuration::try_from(43200).is_ok());
        assert!(SessionDuration::try_from(43201).is_err());
        assert!(SessionDuration::try_from(i64::MAX).is_err());
    }

    #[test]
    fn ids_are_checked() {
        assert!(OrgId::try_from("o-abcdef1234").is_ok());
        assert!(OrgId::try_from("o-ABCDEF1234").is_err());
        assert!(OrgId::try_from("o-abc").is_err());
        assert!(AccountId::try_from("123456789012").is_ok());
        assert!(AccountId::try_from("12345678901a").is_err());
        assert!(ParentId::try_from("r-ab12").is_ok());
        assert!(ParentId::try_from("ou-ab12-abcdefgh").is_ok());
        assert!(ParentId::try_from("ou-ab12").is_err());
        assert!(SessionName::try_from("orgsync").is_ok());
        assert!(SessionName::try_from("o").is_err());
        assert!(SessionName::try_from("a b").is_err());
    }
}
