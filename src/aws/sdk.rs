use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_iam::types::PolicyEvaluationDecisionType;
use aws_sdk_organizations::error::{DisplayErrorContext, ProvideErrorMetadata};
use futures::stream::FuturesUnordered;
use futures::StreamExt;

use crate::domain::account::Tags;
use crate::domain::{
    AccountId, AccountState, OrgPath, OrgUnit, ParentId, Partition, QueueUrl, RoleArn,
};
use crate::metrics::AwsCallMetrics;

use super::{
    AssumeRole, AwsApi, AwsError, DescribedAccount, ListedAccount, OrganizationInfo, QueueMessage,
    RoleSession, SessionCredentials,
};

type Organizations = aws_sdk_organizations::Client;

/// The AWS SDK for Rust behind [`AwsApi`]; the daemon's own credentials come from the SDK's
/// default chain (instance role, environment, profile).
#[derive(Debug, Clone)]
pub struct SdkAws {
    config: SdkConfig,
    sts: aws_sdk_sts::Client,
    // One attempt: the simulation is advisory, and a failed one is tried again later rather
    // than held up in retries now.
    iam: aws_sdk_iam::Client,
}

impl SdkAws {
    /// Loads the default credential chain for `region`, sending every call to `endpoint_url`
    /// when one is given. Throttled and failed calls are retried up to `max_attempts` times
    /// with exponential backoff and jitter. (The SDK's adaptive mode, which also rate-limits
    /// the client, tripled harvest times under 30% throttling in the tests without making
    /// them more reliable.) A call gives up after `operation_timeout`, attempts included.
    pub async fn new(
        region: &str,
        endpoint_url: Option<&str>,
        max_attempts: u32,
        operation_timeout: Duration,
    ) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .retry_config(RetryConfig::standard().with_max_attempts(max_attempts))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .operation_timeout(operation_timeout)
                    .build(),
            );
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let config = loader.load().await;
        let iam = aws_sdk_iam::config::Builder::from(&config)
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .interceptor(AwsCallMetrics)
            .build();
        let sts = aws_sdk_sts::config::Builder::from(&config)
            .interceptor(AwsCallMetrics)
            .build();
        Self {
            sts: aws_sdk_sts::Client::from_conf(sts),
            iam: aws_sdk_iam::Client::from_conf(iam),
            config,
        }
    }

    /// SQS with the session's credentials, in the queue's region (its host names it; the
    /// configured region otherwise, as for an emulator).
    fn sqs(&self, session: &RoleSession, queue: &QueueUrl) -> aws_sdk_sqs::Client {
        let mut config = aws_sdk_sqs::config::Builder::from(&self.config)
            .credentials_provider(session.credentials.clone())
            .interceptor(AwsCallMetrics);
        if let Some(region) = queue_region(queue) {
            config = config.region(Region::new(region.to_owned()));
        }
        aws_sdk_sqs::Client::from_conf(config.build())
    }

    fn organizations(&self, session: &RoleSession) -> Organizations {
        let config = aws_sdk_organizations::config::Builder::from(&self.config)
            .credentials_provider(session.credentials.clone())
            .region(self.region_of(session.partition))
            .interceptor(AwsCallMetrics)
            .build();
        Organizations::from_conf(config)
    }

    /// Where calls in `partition` go: the configured region when it is in that partition,
    /// else the region AWS serves the partition's global services from (STS, IAM and
    /// Organizations live in us-gov-west-1 for GovCloud, cn-north-1 and cn-northwest-1 for
    /// China).
    fn region_of(&self, partition: Partition) -> Region {
        let configured = self.config.region().map(|r| r.as_ref()).unwrap_or_default();
        let region = match partition {
            Partition::Aws
                if !configured.starts_with("us-gov-") && !configured.starts_with("cn-") =>
            {
                configured
            }
            Partition::Aws => "us-east-1",
            Partition::AwsUsGov if configured.starts_with("us-gov-") => configured,
            Partition::AwsUsGov => "us-gov-west-1",
            Partition::AwsCn if configured.starts_with("cn-") => configured,
            Partition::AwsCn => "cn-north-1",
        };
        Region::new(region.to_owned())
    }
}

/// The region of `sqs.<region>.amazonaws.com[.cn]/…`.
fn queue_region(queue: &QueueUrl) -> Option<&str> {
    let host = queue.as_str().split("://").nth(1)?.split('/').next()?;
    let region = host.strip_prefix("sqs.")?.split('.').next()?;
    host.contains(".amazonaws.com").then_some(region)
}

fn aws_error<E>(operation: &'static str, err: E) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error,
{
    AwsError {
        operation,
        code: err.code().map(str::to_owned),
        message: err
            .message()
            .map(str::to_owned)
            .unwrap_or_else(|| DisplayErrorContext(&err).to_string()),
    }
}

fn malformed(operation: &'static str, message: String) -> AwsError {
    AwsError {
        operation,
        code: None,
        message,
    }
}

#[async_trait]
impl AwsApi for SdkAws {
    async fn assume_role(&self, request: AssumeRole<'_>) -> Result<RoleSession, AwsError> {
        const OP: &str = "sts:AssumeRole";
        // STS of the role's own partition: another partition's does not know the role.
        let partition = request.role_arn.partition();
        let out = self
            .sts
            .assume_role()
            .role_arn(request.role_arn.as_str())
            .role_session_name(request.session_name.as_str())
            .duration_seconds(request.duration.seconds())
            .external_id(request.external_id.expose())
            .customize()
            .config_override(
                aws_sdk_sts::config::Builder::default().region(self.region_of(partition)),
            )
            .send()
            .await
            .map_err(|e| aws_error(OP, e))?;
        let creds = out
            .credentials()
            .ok_or_else(|| malformed(OP, "the answer holds no credentials".into()))?;
        let expiry = std::time::SystemTime::try_from(*creds.expiration()).ok();
        Ok(RoleSession {
            credentials: SessionCredentials::new(
                creds.access_key_id(),
                creds.secret_access_key(),
                Some(creds.session_token().to_owned()),
                expiry,
                "orgsync-assumed-role",
            ),
            partition,
        })
    }

    async fn describe_organization(
        &self,
        session: &RoleSession,
    ) -> Result<OrganizationInfo, AwsError> {
        const OP: &str = "organizations:DescribeOrganization";
        let out = self
            .organizations(session)
            .describe_organization()
            .send()
            .await
            .map_err(|e| aws_error(OP, e))?;
        let org = out
            .organization()
            .ok_or_else(|| malformed(OP, "the answer holds no organization".into()))?;
        let id = org.id().unwrap_or_default().to_owned();
        let management = org.master_account_id().unwrap_or_default().to_owned();
        Ok(OrganizationInfo {
            id: id.try_into().map_err(|e| malformed(OP, format!("{e}")))?,
            management_account_id: management
                .try_into()
                .map_err(|e| malformed(OP, format!("{e}")))?,
        })
    }

    async fn denied_actions(
        &self,
        session: &RoleSession,
        role_arn: &RoleArn,
        actions: &[&str],
    ) -> Result<Vec<String>, AwsError> {
        const OP: &str = "iam:SimulatePrincipalPolicy";
        let mut denied = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .iam
                .simulate_principal_policy()
                .policy_source_arn(role_arn.as_str())
                .set_action_names(Some(actions.iter().map(|a| (*a).to_owned()).collect()))
                .set_marker(marker)
                .customize()
                .config_override(
                    aws_sdk_iam::config::Builder::default()
                        .credentials_provider(session.credentials.clone())
                        .region(self.region_of(session.partition)),
                )
                .send()
                .await
                .map_err(|e| aws_error(OP, e))?;
            denied.extend(
                page.evaluation_results()
                    .iter()
                    .filter(|r| r.eval_decision() != &PolicyEvaluationDecisionType::Allowed)
                    .map(|r| r.eval_action_name().to_owned()),
            );
            marker = page
                .marker()
                .filter(|_| page.is_truncated())
                .map(str::to_owned);
            if marker.is_none() {
                return Ok(denied);
            }
        }
    }

    async fn list_accounts(
        &self,
        session: &RoleSession,
        concurrency: usize,
    ) -> Result<Vec<ListedAccount>, AwsError> {
        let client = self.organizations(session);
        let mut pending: VecDeque<Task> = list_roots(&client)
            .await?
            .into_iter()
            .flat_map(|root| {
                let path = OrgPath::from([root]);
                [Task::Units(path.clone()), Task::Accounts(path)]
            })
            .collect();
        let mut running = FuturesUnordered::new();
        let mut accounts = Vec::new();
        loop {
            while running.len() < concurrency.max(1) {
                let Some(task) = pending.pop_front() else {
                    break;
                };
                running.push(task.run(&client));
            }
            let Some(done) = running.next().await else {
                break;
            };
            match done? {
                Found::Units(units) => {
                    pending.extend(
                        units
                            .into_iter()
                            .flat_map(|path| [Task::Units(path.clone()), Task::Accounts(path)]),
                    );
                }
                Found::Accounts(listed) => {
                    pending.extend(listed.into_iter().map(|a| Task::Tags(Box::new(a))));
                }
                Found::Tagged(account) => accounts.push(*account),
            }
        }
        accounts.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(accounts)
    }

    async fn list_first_page(&self, session: &RoleSession) -> Result<(), AwsError> {
        let client = self.organizations(session);
        list_roots(&client).await?;
        client
            .list_accounts()
            .max_results(1)
            .send()
            .await
            .map_err(|e| aws_error("organizations:ListAccounts", e))?;
        Ok(())
    }

    async fn describe_account(
        &self,
        session: &RoleSession,
        account: &AccountId,
    ) -> Result<Option<DescribedAccount>, AwsError> {
        const OP: &str = "organizations:DescribeAccount";
        let out = match self
            .organizations(session)
            .describe_account()
            .account_id(account.as_str())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_account_not_found_exception()) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(aws_error(OP, e)),
        };
        let described = out
            .account()
            .ok_or_else(|| malformed(OP, "the answer holds no account".into()))?;
        let state = account_state(
            OP,
            account,
            described.state().map(|s| s.as_str()),
            described.status().map(|s| s.as_str()),
        )?;
        // `Paths` are `o-…/r-…/ou-…/…/<account>/`: the units between the organization and
        // the account, root first.
        let path = described
            .paths()
            .first()
            .map(|path| {
                path.split('/')
                    .filter(|part| part.starts_with("r-") || part.starts_with("ou-"))
                    .map(|part| ParentId::try_from(part).map_err(|e| malformed(OP, e.to_string())))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(Some(DescribedAccount {
            name: described.name().unwrap_or_default().to_owned(),
            email: described.email().unwrap_or_default().to_owned(),
            state,
            path,
        }))
    }

    async fn parent_of(&self, session: &RoleSession, child: &str) -> Result<ParentId, AwsError> {
        const OP: &str = "organizations:ListParents";
        let out = self
            .organizations(session)
            .list_parents()
            .child_id(child)
            .send()
            .await
            .map_err(|e| aws_error(OP, e))?;
        let parent = out
            .parents()
            .first()
            .and_then(|p| p.id())
            .ok_or_else(|| malformed(OP, format!("{child} has no parent")))?;
        ParentId::try_from(parent).map_err(|e| malformed(OP, e.to_string()))
    }

    async fn unit_name(&self, session: &RoleSession, unit: &ParentId) -> Result<String, AwsError> {
        const OP: &str = "organizations:DescribeOrganizationalUnit";
        let out = self
            .organizations(session)
            .describe_organizational_unit()
            .organizational_unit_id(unit.as_str())
            .send()
            .await
            .map_err(|e| aws_error(OP, e))?;
        out.organizational_unit()
            .and_then(|ou| ou.name())
            .map(str::to_owned)
            .ok_or_else(|| malformed(OP, format!("{unit} has no name")))
    }

    async fn account_tags(
        &self,
        session: &RoleSession,
        account: &AccountId,
    ) -> Result<Tags, AwsError> {
        list_tags(&self.organizations(session), account).await
    }

    async fn check_queue(&self, session: &RoleSession, queue: &QueueUrl) -> Result<(), AwsError> {
        const OP: &str = "sqs:GetQueueAttributes";
        self.sqs(session, queue)
            .get_queue_attributes()
            .queue_url(queue.as_str())
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| aws_error(OP, e))?;
        Ok(())
    }

    async fn receive_messages(
        &self,
        session: &RoleSession,
        queue: &QueueUrl,
        wait: Duration,
    ) -> Result<Vec<QueueMessage>, AwsError> {
        const OP: &str = "sqs:ReceiveMessage";
        let out = self
            .sqs(session, queue)
            .receive_message()
            .queue_url(queue.as_str())
            .max_number_of_messages(10)
            .wait_time_seconds(i32::try_from(wait.as_secs().min(20)).unwrap_or(20))
            .send()
            .await
            .map_err(|e| aws_error(OP, e))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                Some(QueueMessage {
                    id: m.message_id()?.to_owned(),
                    receipt: m.receipt_handle()?.to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                })
            })
            .collect())
    }

    async fn delete_message(
        &self,
        session: &RoleSession,
        queue: &QueueUrl,
        receipt: &str,
    ) -> Result<(), AwsError> {
        const OP: &str = "sqs:DeleteMessage";
        self.sqs(session, queue)
            .delete_message()
            .queue_url(queue.as_str())
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| aws_error(OP, e))?;
        Ok(())
    }
}

/// One call, or one paginated series of calls, of the tree walk.
enum Task {
    /// The OUs directly below the last unit of the path.
    Units(OrgPath),
    /// The accounts directly below the last unit of the path.
    Accounts(OrgPath),
    /// The tags of an account.
    Tags(Box<ListedAccount>),
}

enum Found {
    Units(Vec<OrgPath>),
    Accounts(Vec<ListedAccount>),
    Tagged(Box<ListedAccount>),
}

impl Task {
    async fn run(self, client: &Organizations) -> Result<Found, AwsError> {
        match self {
            Task::Units(path) => list_units(client, path).await.map(Found::Units),
            Task::Accounts(path) => list_accounts(client, path).await.map(Found::Accounts),
            Task::Tags(mut account) => {
                account.tags = list_tags(client, &account.id).await?;
                Ok(Found::Tagged(account))
            }
        }
    }
}

fn parent_of(path: &OrgPath) -> &str {
    path.last()
        .expect("a path holds at least the root")
        .id
        .as_str()
}

async fn list_roots(client: &Organizations) -> Result<Vec<OrgUnit>, AwsError> {
    const OP: &str = "organizations:ListRoots";
    let pages = client
        .list_roots()
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| aws_error(OP, e))?;
    pages
        .iter()
        .flat_map(|page| page.roots())
        .map(|root| unit(OP, root.id(), root.name()))
        .collect()
}

async fn list_units(client: &Organizations, path: OrgPath) -> Result<Vec<OrgPath>, AwsError> {
    const OP: &str = "organizations:ListOrganizationalUnitsForParent";
    let pages = client
        .list_organizational_units_for_parent()
        .parent_id(parent_of(&path))
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| aws_error(OP, e))?;
    pages
        .iter()
        .flat_map(|page| page.organizational_units())
        .map(|ou| {
            let child = unit(OP, ou.id(), ou.name())?;
            Ok(path.iter().cloned().chain([child]).collect())
        })
        .collect()
}

fn unit(op: &'static str, id: Option<&str>, name: Option<&str>) -> Result<OrgUnit, AwsError> {
    Ok(OrgUnit {
        id: ParentId::try_from(id.unwrap_or_default()).map_err(|e| malformed(op, e.to_string()))?,
        name: name.unwrap_or_default().to_owned(),
    })
}

async fn list_accounts(
    client: &Organizations,
    path: OrgPath,
) -> Result<Vec<ListedAccount>, AwsError> {
    const OP: &str = "organizations:ListAccountsForParent";
    let pages = client
        .list_accounts_for_parent()
        .parent_id(parent_of(&path))
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| aws_error(OP, e))?;
    pages
        .iter()
        .flat_map(|page| page.accounts())
        .map(|account| {
            let id = AccountId::try_from(account.id().unwrap_or_default())
                .map_err(|e| malformed(OP, e.to_string()))?;
            let state = account_state(
                OP,
                &id,
                account.state().map(|s| s.as_str()),
                account.status().map(|s| s.as_str()),
            )?;
            Ok(ListedAccount {
                id,
                name: account.name().unwrap_or_default().to_owned(),
                email: account.email().unwrap_or_default().to_owned(),
                state,
                org_path: path.clone(),
                tags: Tags::new(),
            })
        })
        .collect()
}

/// An account's state as `operation` answered it. R7: `State` is the truth; the retired
/// `Status` only where `State` is absent.
fn account_state(
    operation: &'static str,
    id: &AccountId,
    state: Option<&str>,
    status: Option<&str>,
) -> Result<AccountState, AwsError> {
    let raw = state.or(status).unwrap_or_default();
    AccountState::parse(raw)
        .ok_or_else(|| malformed(operation, format!("account {id} has unknown state {raw:?}")))
}

async fn list_tags(client: &Organizations, id: &AccountId) -> Result<Tags, AwsError> {
    const OP: &str = "organizations:ListTagsForResource";
    let pages = client
        .list_tags_for_resource()
        .resource_id(id.as_str())
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| aws_error(OP, e))?;
    Ok(pages
        .iter()
        .flat_map(|page| page.tags())
        .map(|tag| (tag.key().to_owned(), tag.value().to_owned()))
        .collect())
}
