//! What orgsync asks of AWS, as a trait: registration and the harvest call it, tests and
//! benchmarks can put an in-process organization behind it, and [`SdkAws`] is the one real
//! implementation, on the AWS SDK for Rust.

pub mod actions;
mod sdk;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::crypto::{debug_redacted, Secret};
use crate::domain::account::Tags;
use crate::domain::organization::OrgRole;
use crate::domain::{
    AccountId, AccountState, OrgId, OrgPath, ParentId, Partition, QueueUrl, RoleArn,
    SessionDuration, SessionName,
};

pub use sdk::SdkAws;

/// The temporary credentials of an assumed role.
pub type SessionCredentials = aws_sdk_sts::config::Credentials;

/// A role to assume; printed redacted.
pub struct AssumeRole<'a> {
    /// The role.
    pub role_arn: &'a RoleArn,
    /// The STS session name.
    pub session_name: &'a SessionName,
    /// How long the session lasts.
    pub duration: SessionDuration,
    /// The installation's external ID.
    pub external_id: &'a Secret<String>,
}

impl fmt::Debug for AssumeRole<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_redacted(f, "AssumeRole")
    }
}

/// An assumed role's session.
#[derive(Debug, Clone)]
pub struct RoleSession {
    /// Its temporary credentials.
    pub credentials: SessionCredentials,
    /// The partition of the role, whose endpoints its calls go to.
    pub partition: Partition,
}

/// What DescribeOrganization tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationInfo {
    /// The organization's id.
    pub id: OrgId,
    /// Its management account.
    pub management_account_id: AccountId,
}

/// One account as a complete listing of the organization shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedAccount {
    /// The account id.
    pub id: AccountId,
    /// Its name.
    pub name: String,
    /// Its root email address.
    pub email: String,
    /// Its state (R7).
    pub state: AccountState,
    /// Where it sits, root first.
    pub org_path: OrgPath,
    /// Its resource tags.
    pub tags: Tags,
}

/// One account as DescribeAccount tells it, for refreshing it alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedAccount {
    /// Its name.
    pub name: String,
    /// Its root email address.
    pub email: String,
    /// Its state (R7).
    pub state: AccountState,
    /// The roots and OUs above it, root first, when AWS says (`Paths`); its parents are
    /// walked otherwise.
    pub path: Option<Vec<ParentId>>,
}

/// A message read from an SQS queue, to delete once handled.
#[derive(Clone, PartialEq, Eq)]
pub struct QueueMessage {
    /// SQS's id of the message.
    pub id: String,
    /// What deletes it.
    pub receipt: String,
    /// Its body, as sent.
    pub body: String,
}

impl fmt::Debug for QueueMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A body is not logged: it may be anything.
        f.debug_struct("QueueMessage")
            .field("id", &self.id)
            .finish()
    }
}

/// An AWS call that failed, with the operation and AWS's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AwsError {
    /// The API operation, e.g. `sts:AssumeRole`.
    pub operation: &'static str,
    /// AWS's error code, when AWS answered with one.
    pub code: Option<String>,
    /// What AWS or the transport said.
    pub message: String,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} failed: {code}: {}", self.operation, self.message),
            None => write!(f, "{} failed: {}", self.operation, self.message),
        }
    }
}

impl AwsError {
    /// The call is not one this AWS serves.
    fn unsupported(operation: &'static str) -> Self {
        Self {
            operation,
            code: Some("Unsupported".into()),
            message: "not served by this AWS".into(),
        }
    }

    /// The error as text, through `redaction`.
    pub fn redacted(&self, redaction: &Redaction) -> String {
        redaction.apply(&self.to_string())
    }
}

/// What every error text that is stored or shown must not hold of the roles it concerns
/// (R14 keeps them sealed): each role's ARN, its assumed-role ARN, its name and its session
/// name, each replaced by what the role is called (`the org role`). AWS quotes all of them
/// in its messages.
#[derive(Debug, Clone, Default)]
pub struct Redaction {
    // (secret, label), longest secret first.
    secrets: Vec<(String, &'static str)>,
}

impl Redaction {
    /// The redaction of the role `role_arn`, assumed with `session_name`, called `label`.
    pub fn of(role_arn: &RoleArn, session_name: &SessionName, label: &'static str) -> Self {
        Self::default().and(role_arn, session_name, label)
    }

    /// This redaction and that of another role.
    pub fn and(
        mut self,
        role_arn: &RoleArn,
        session_name: &SessionName,
        label: &'static str,
    ) -> Self {
        let arn = role_arn.as_str();
        let name = arn.rsplit('/').next().unwrap_or(arn);
        let session = session_name.as_str();
        let assumed = format!("assumed-role/{name}/{session}");
        for secret in [arn.to_owned(), assumed, name.to_owned(), session.to_owned()] {
            self.secrets.push((secret, label));
        }
        self.secrets
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        self
    }

    /// `text` with every secret replaced by its label.
    pub fn apply(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_owned(), |text, (secret, label)| {
                text.replace(secret.as_str(), label)
            })
    }
}

/// The AWS calls orgsync makes.
#[async_trait]
pub trait AwsApi: Send + Sync + 'static {
    /// Assumes a role with the daemon's own credentials and the external ID.
    async fn assume_role(&self, request: AssumeRole<'_>) -> Result<RoleSession, AwsError>;

    /// Describes the organization the session's account manages or belongs to.
    async fn describe_organization(
        &self,
        session: &RoleSession,
    ) -> Result<OrganizationInfo, AwsError>;

    /// Simulates `role_arn`'s policies for `actions`, with the session's own credentials;
    /// answers the actions they do not allow.
    async fn denied_actions(
        &self,
        session: &RoleSession,
        role_arn: &RoleArn,
        actions: &[&str],
    ) -> Result<Vec<String>, AwsError>;

    /// Walks the whole OU tree from the root and reads every account's tags, with at most
    /// `concurrency` calls at a time. Either every account or an error: never a partial list.
    async fn list_accounts(
        &self,
        session: &RoleSession,
        concurrency: usize,
    ) -> Result<Vec<ListedAccount>, AwsError>;

    // What refreshing one account or one OU after an Organizations event reads (R16), and the
    // queue those events arrive on. An AWS that serves no events need not implement them.

    /// ListRoots and the first page of ListAccounts: whether the session may list the
    /// organization, as a delegated administrator may when the delegation policy allows it.
    async fn list_first_page(&self, session: &RoleSession) -> Result<(), AwsError> {
        let _ = session;
        Err(AwsError::unsupported("organizations:ListRoots"))
    }

    /// DescribeAccount; none when the organization does not hold the account.
    async fn describe_account(
        &self,
        session: &RoleSession,
        account: &AccountId,
    ) -> Result<Option<DescribedAccount>, AwsError> {
        let _ = (session, account);
        Err(AwsError::unsupported("organizations:DescribeAccount"))
    }

    /// ListParents: the root or OU directly above an account or OU.
    async fn parent_of(&self, session: &RoleSession, child: &str) -> Result<ParentId, AwsError> {
        let _ = (session, child);
        Err(AwsError::unsupported("organizations:ListParents"))
    }

    /// DescribeOrganizationalUnit: an OU's name.
    async fn unit_name(&self, session: &RoleSession, unit: &ParentId) -> Result<String, AwsError> {
        let _ = (session, unit);
        Err(AwsError::unsupported(
            "organizations:DescribeOrganizationalUnit",
        ))
    }

    /// ListTagsForResource of an account.
    async fn account_tags(
        &self,
        session: &RoleSession,
        account: &AccountId,
    ) -> Result<Tags, AwsError> {
        let _ = (session, account);
        Err(AwsError::unsupported("organizations:ListTagsForResource"))
    }

    /// GetQueueAttributes: whether the session may read the queue.
    async fn check_queue(&self, session: &RoleSession, queue: &QueueUrl) -> Result<(), AwsError> {
        let _ = (session, queue);
        Err(AwsError::unsupported("sqs:GetQueueAttributes"))
    }

    /// ReceiveMessage: up to ten messages, waiting up to `wait` for the first.
    async fn receive_messages(
        &self,
        session: &RoleSession,
        queue: &QueueUrl,
        wait: Duration,
    ) -> Result<Vec<QueueMessage>, AwsError> {
        let _ = (session, queue, wait);
        Err(AwsError::unsupported("sqs:ReceiveMessage"))
    }

    /// DeleteMessage.
    async fn delete_message(
        &self,
        session: &RoleSession,
        queue: &QueueUrl,
        receipt: &str,
    ) -> Result<(), AwsError> {
        let _ = (session, queue, receipt);
        Err(AwsError::unsupported("sqs:DeleteMessage"))
    }
}

/// The AWS calls orgsync makes, with the installation's external ID (R1): every role is
/// assumed with the daemon's own credentials and that ID. Cheap to clone.
#[derive(Clone)]
pub struct Aws {
    api: Arc<dyn AwsApi>,
    external_id: Arc<Secret<String>>,
}

impl Aws {
    /// `api` with `external_id` for every role it assumes.
    pub fn new(api: Arc<dyn AwsApi>, external_id: Secret<String>) -> Self {
        Self {
            api,
            external_id: Arc::new(external_id),
        }
    }

    /// The calls themselves.
    pub fn api(&self) -> &dyn AwsApi {
        self.api.as_ref()
    }

    /// The installation's external ID, for admins only.
    pub fn external_id(&self) -> &Secret<String> {
        &self.external_id
    }

    /// Assumes a role with the external ID.
    pub async fn assume(
        &self,
        role_arn: &RoleArn,
        session_name: &SessionName,
        duration: SessionDuration,
    ) -> Result<RoleSession, AwsError> {
        self.api
            .assume_role(AssumeRole {
                role_arn,
                session_name,
                duration,
                external_id: &self.external_id,
            })
            .await
    }

    /// Assumes an organization's org role.
    pub async fn assume_org_role(&self, role: &OrgRole) -> Result<RoleSession, AwsError> {
        self.assume(&role.role_arn, &role.session_name, role.duration_seconds)
            .await
    }
}
