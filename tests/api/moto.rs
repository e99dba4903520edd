//! Organizations built in moto through the real SDK, and the truth about them read back from
//! moto by a different route than orgsync's tree walk (ListAccounts and ListParents).

use std::collections::BTreeMap;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_organizations::types::Tag;
use aws_sdk_organizations::Client;
use rand::Rng;
use serde_json::{json, Value};

/// The member role's name in every fixture.
pub const MEMBER_ROLE: &str = "OrgSync-Member-Role";

/// The URL of the moto server the test script started.
pub fn moto_url() -> String {
    std::env::var("ORGSYNC_TEST_MOTO_URL")
        .expect("ORGSYNC_TEST_MOTO_URL is not set: run the suite with scripts/test")
}

/// The region moto keeps a partition's organizations in: it keeps each partition apart.
fn partition_region(partition: &str) -> &'static str {
    match partition {
        "aws-us-gov" => "us-gov-west-1",
        "aws-cn" => "cn-north-1",
        _ => "us-east-1",
    }
}

async fn region_config(endpoint: &str, region: &'static str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await
}

/// An organization in moto, managed by a fresh random account so tests never share one.
pub struct MotoOrg {
    /// The management account.
    pub management_account: String,
    /// The organization id.
    pub id: String,
    /// The root id.
    pub root: String,
    /// OUs by name (names are unique in these fixtures).
    pub ous: BTreeMap<String, String>,
    /// The member accounts created, in creation order.
    pub members: Vec<String>,
    client: Client,
    // SQS as the management account, where the events queue lives.
    sqs: aws_sdk_sqs::Client,
    // The management account's moto credentials: access key, session token.
    management_credentials: (String, String),
    // The partition it is in.
    partition: &'static str,
}

/// The shape of a fixture: OUs as `(name, parent name)` with `"Root"` the root, and how many
/// member accounts, spread round-robin over the root and every OU.
pub struct Shape {
    pub ous: &'static [(&'static str, &'static str)],
    pub accounts: usize,
}

/// Four levels below the root.
pub const NESTED: &[(&str, &str)] = &[
    ("Workloads", "Root"),
    ("Prod", "Workloads"),
    ("Payments", "Prod"),
    ("Ledger", "Payments"),
    ("Dev", "Workloads"),
    ("Sandbox", "Root"),
    ("Security", "Root"),
];

impl MotoOrg {
    /// Builds an organization of `shape` in moto: accounts get 0 to 3 tags.
    pub async fn create(shape: Shape) -> Self {
        Self::create_in("aws", shape).await
    }

    /// [`Self::create`], in `partition` (`aws`, `aws-us-gov`, `aws-cn`).
    pub async fn create_in(partition: &'static str, shape: Shape) -> Self {
        let endpoint = moto_url();
        let config = region_config(&endpoint, partition_region(partition)).await;
        let management_account = format!(
            "{:012}",
            rand::thread_rng().gen_range(100_000_000_000u64..999_999_999_999)
        );
        let creds = aws_sdk_sts::Client::new(&config)
            .assume_role()
            .role_arn(format!(
                "arn:{partition}:iam::{management_account}:role/fixture-admin"
            ))
            .role_session_name("fixture")
            .send()
            .await
            .expect("moto assumes the fixture role")
            .credentials
            .expect("credentials");
        let management_credentials = (
            creds.access_key_id().to_owned(),
            creds.session_token().to_owned(),
        );
        let management = aws_sdk_sts::config::Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token().to_owned()),
            None,
            "fixture",
        );
        let client = Client::from_conf(
            aws_sdk_organizations::config::Builder::from(&config)
                .credentials_provider(management.clone())
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&config)
                .credentials_provider(management)
                .build(),
        );
        let org = client
            .create_organization()
            .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
            .send()
            .await
            .expect("create organization")
            .organization
            .expect("organization");
        let root = client
            .list_roots()
            .send()
            .await
            .expect("list roots")
            .roots()[0]
            .id()
            .expect("root id")
            .to_owned();
        let mut ous: BTreeMap<String, String> = BTreeMap::new();
        for (name, parent) in shape.ous {
            let parent_id = if *parent == "Root" {
                root.clone()
            } else {
                ous[*parent].clone()
            };
            let ou = client
                .create_organizational_unit()
                .parent_id(parent_id)
                .name(*name)
                .send()
                .await
                .expect("create OU")
                .organizational_unit
                .expect("OU");
            ous.insert((*name).to_owned(), ou.id().expect("OU id").to_owned());
        }
        let mut this = Self {
            management_account,
            id: org.id().expect("org id").to_owned(),
            root: root.clone(),
            ous,
            members: Vec::new(),
            client,
            sqs,
            management_credentials,
            partition,
        };
        let parents: Vec<String> = std::iter::once(root)
            .chain(this.ous.values().cloned())
            .collect();
        for i in 0..shape.accounts {
            let tags: Vec<Tag> = [
                ("env", ["prod", "dev", "test"][i % 3]),
                ("team", ["red", "blue"][i % 2]),
                ("cost-center", "cc-42"),
            ]
            .iter()
            .take(i % 4)
            .map(|(k, v)| Tag::builder().key(*k).value(*v).build().expect("tag"))
            .collect();
            let id = this.create_account(&format!("account-{i:04}"), tags).await;
            this.move_account(&id, &parents[i % parents.len()]).await;
            this.members.push(id);
        }
        this
    }

    /// Creates an account with `tags`, below the root; answers its id.
    pub async fn create_account(&self, name: &str, tags: Vec<Tag>) -> String {
        self.client
            .create_account()
            .account_name(name)
            .email(format!("{name}@example.com"))
            .set_tags(Some(tags))
            .send()
            .await
            .expect("create account")
            .create_account_status
            .expect("status")
            .account_id()
            .expect("moto creates accounts at once")
            .to_owned()
    }

    /// Moves an account below `parent`.
    pub async fn move_account(&self, account: &str, parent: &str) {
        let from = self
            .client
            .list_parents()
            .child_id(account)
            .send()
            .await
            .expect("list parents")
            .parents()[0]
            .id()
            .expect("parent id")
            .to_owned();
        if from != parent {
            self.client
                .move_account()
                .account_id(account)
                .source_parent_id(from)
                .destination_parent_id(parent)
                .send()
                .await
                .expect("move account");
        }
    }

    /// The management account's moto credentials (access key, session token).
    pub fn management_credentials(&self) -> (String, String) {
        self.management_credentials.clone()
    }

    /// Creates an OU below `parent`; answers its id.
    pub async fn create_ou(&self, name: &str, parent: &str) -> String {
        self.client
            .create_organizational_unit()
            .parent_id(parent)
            .name(name)
            .send()
            .await
            .expect("create OU")
            .organizational_unit
            .and_then(|ou| ou.id)
            .expect("OU id")
    }

    /// Renames an OU.
    pub async fn rename_ou(&self, ou: &str, name: &str) {
        self.client
            .update_organizational_unit()
            .organizational_unit_id(ou)
            .name(name)
            .send()
            .await
            .expect("rename OU");
    }

    /// Creates an SQS queue in the management account whose messages come back after
    /// `visibility` seconds unless deleted; answers its URL.
    pub async fn create_queue(&self, name: &str, visibility: u32) -> String {
        self.sqs
            .create_queue()
            .queue_name(name)
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                visibility.to_string(),
            )
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue url")
    }

    /// Puts a message on a queue, as EventBridge would.
    pub async fn send(&self, queue: &str, body: &str) {
        self.sqs
            .send_message()
            .queue_url(queue)
            .message_body(body)
            .send()
            .await
            .expect("send message");
    }

    /// Messages on a queue, in flight (received, not deleted) included.
    pub async fn queued(&self, queue: &str) -> u64 {
        use aws_sdk_sqs::types::QueueAttributeName::{
            ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible,
        };
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(ApproximateNumberOfMessages)
            .attribute_names(ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .unwrap_or_default();
        attributes
            .values()
            .map(|n| n.parse::<u64>().expect("a count"))
            .sum()
    }

    /// Deletes a queue.
    pub async fn delete_queue(&self, queue: &str) {
        self.sqs
            .delete_queue()
            .queue_url(queue)
            .send()
            .await
            .expect("delete queue");
    }

    /// Sets a tag on an account.
    pub async fn tag(&self, account: &str, key: &str, value: &str) {
        self.client
            .tag_resource()
            .resource_id(account)
            .tags(Tag::builder().key(key).value(value).build().expect("tag"))
            .send()
            .await
            .expect("tag resource");
    }

    /// Removes a tag from an account.
    pub async fn untag(&self, account: &str, key: &str) {
        self.client
            .untag_resource()
            .resource_id(account)
            .tag_keys(key)
            .send()
            .await
            .expect("untag resource");
    }

    /// Closes an account (moto makes it SUSPENDED).
    pub async fn close(&self, account: &str) {
        self.client
            .close_account()
            .account_id(account)
            .send()
            .await
            .expect("close account");
    }

    /// Removes an account from the organization.
    pub async fn remove(&self, account: &str) {
        self.client
            .remove_account_from_organization()
            .account_id(account)
            .send()
            .await
            .expect("remove account");
    }

    /// The ARN of the role orgsync is told to assume in the management account.
    pub fn org_role_arn(&self) -> String {
        format!(
            "arn:{}:iam::{}:role/OrgSync-Org-Role",
            self.partition, self.management_account
        )
    }

    /// A registration body for this organization.
    pub fn registration(&self, nickname: &str) -> Value {
        self.registration_with(
            nickname,
            json!({"exclude_name_prefixes": [], "limit_scope_ou_ids": [], "auto_remove_suspended": false, "auto_badge": true}),
        )
    }

    /// A registration body with `filters`.
    pub fn registration_with(&self, nickname: &str, filters: Value) -> Value {
        json!({
            "nickname": nickname,
            "org_role": {"role_arn": self.org_role_arn(), "session_name": "orgsync", "duration_seconds": 3600},
            "member_role": {"role_name": MEMBER_ROLE, "session_name": "orgsync", "duration_seconds": 3600},
            "filters": filters
        })
    }

    /// The ARN of the member role orgsync assumes in `account`.
    pub fn member_role_arn(account: &str) -> String {
        format!("arn:aws:iam::{account}:role/{MEMBER_ROLE}")
    }

    /// Every account of the organization as the API should list it, by account id: read
    /// from ListAccounts, ListParents, DescribeOrganizationalUnit and ListTagsForResource.
    pub async fn truth(&self) -> BTreeMap<String, Value> {
        let mut truth = BTreeMap::new();
        let pages: Vec<_> = self
            .client
            .list_accounts()
            .into_paginator()
            .send()
            .try_collect()
            .await
            .expect("list accounts");
        for account in pages.iter().flat_map(|p| p.accounts()) {
            let id = account.id().expect("id").to_owned();
            let mut path = Vec::new();
            let mut child = id.clone();
            loop {
                let parent = self
                    .client
                    .list_parents()
                    .child_id(&child)
                    .send()
                    .await
                    .expect("list parents")
                    .parents()[0]
                    .clone();
                let parent_id = parent.id().expect("parent id").to_owned();
                if parent_id.starts_with("r-") {
                    path.push(json!({"id": parent_id, "name": "Root"}));
                    break;
                }
                let ou = self
                    .client
                    .describe_organizational_unit()
                    .organizational_unit_id(&parent_id)
                    .send()
                    .await
                    .expect("describe OU");
                path.push(json!({"id": parent_id, "name": ou.organizational_unit().and_then(|o| o.name()).expect("OU name")}));
                child = parent_id;
            }
            path.reverse();
            let tags: BTreeMap<String, String> = self
                .client
                .list_tags_for_resource()
                .resource_id(&id)
                .send()
                .await
                .expect("list tags")
                .tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect();
            let state = account
                .state()
                .map(|s| s.as_str().to_owned())
                .expect("moto reports State");
            truth.insert(
                id.clone(),
                json!({
                    "account_id": id,
                    "name": account.name(),
                    "email": account.email(),
                    "state": state,
                    "organization_id": self.id,
                    "org_path": path,
                    "tags": tags,
                }),
            );
        }
        truth
    }
}
