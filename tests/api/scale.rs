//! The daemon's own cost at scale, with an in-process organization behind the AWS trait (no
//! network, deterministic): first harvest and no-change harvest of thousands of accounts,
//! against the store's floor, a batched INSERT of as many event rows. Ignored by the suite:
//! `scripts/bench` runs it in release mode (`ORGSYNC_SCALE_ACCOUNTS`, default 10000).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use orgsync::aws::{
    AssumeRole, AwsApi, AwsError, ListedAccount, OrganizationInfo, RoleSession, SessionCredentials,
};
use orgsync::config::Settings;
use orgsync::domain::account::Tags;
use orgsync::domain::{AccountId, AccountState, OrgPath, OrgUnit, RoleArn};
use orgsync::startup::Application;
use orgsync::store::Store;
use reqwest::StatusCode;

use crate::helpers::{expect_json, fresh_store_url, Backend};

/// An organization of `n` accounts spread over three levels of OUs, four tags each.
struct InProcessOrganization {
    accounts: Vec<ListedAccount>,
}

impl InProcessOrganization {
    fn new(n: usize) -> Self {
        let unit = |id: String, name: String| OrgUnit {
            id: id.try_into().unwrap(),
            name,
        };
        let root = unit("r-ab12".into(), "Root".into());
        let paths: Vec<OrgPath> = (0..27)
            .map(|i| {
                vec![
                    root.clone(),
                    unit(
                        format!("ou-ab12-a{:07}", i / 9),
                        format!("Division{}", i / 9),
                    ),
                    unit(format!("ou-ab12-b{:07}", i / 3), format!("Team{}", i / 3)),
                    unit(format!("ou-ab12-c{i:07}"), format!("Env{i}")),
                ]
            })
            .collect();
        let accounts = (0..n)
            .map(|i| ListedAccount {
                id: AccountId::try_from(format!("{:012}", 100_000_000_000 + i)).unwrap(),
                name: format!("account-{i:06}"),
                email: format!("account-{i:06}@example.com"),
                state: AccountState::Active,
                org_path: paths[i % paths.len()].clone(),
                tags: Tags::from([
                    ("env".into(), ["prod", "dev", "test"][i % 3].into()),
                    ("team".into(), format!("team-{}", i % 17)),
                    ("cost-center".into(), format!("cc-{}", i % 7)),
                    ("owner".into(), format!("owner-{}", i % 11)),
                ]),
            })
            .collect();
        Self { accounts }
    }
}

#[async_trait]
impl AwsApi for InProcessOrganization {
    async fn assume_role(&self, _: AssumeRole<'_>) -> Result<RoleSession, AwsError> {
        Ok(RoleSession {
            credentials: SessionCredentials::new("AKIA", "secret", None, None, "in-process"),
        })
    }

    async fn describe_organization(&self, _: &RoleSession) -> Result<OrganizationInfo, AwsError> {
        Ok(OrganizationInfo {
            id: "o-inprocess01".try_into().unwrap(),
            management_account_id: "111122223333".try_into().unwrap(),
        })
    }

    async fn denied_actions(
        &self,
        _: &RoleSession,
        _: &RoleArn,
        _: &[&str],
    ) -> Result<Vec<String>, AwsError> {
        Ok(Vec::new())
    }

    async fn list_accounts(
        &self,
        _: &RoleSession,
        _: usize,
    ) -> Result<Vec<ListedAccount>, AwsError> {
        Ok(self.accounts.clone())
    }
}

async fn event_count(store: &Store) -> i64 {
    store.event_count().await.unwrap()
}

/// The store's floor: `rows` event rows in one transaction, 500 to a statement.
async fn batched_insert_seconds(url: &str, rows: i64) -> f64 {
    let store = Store::connect(url, 2).await.unwrap();
    store.migrate().await.unwrap();
    let payload = r#"{"AccountTagsChanged":{"set":{"env":"prod","team":"team-1","cost-center":"cc-1","owner":"owner-1"},"removed":[],"auto_badge":true}}"#;
    let metadata = r#"{"actor":"harvest:o-inprocess01","at":"2026-11-27T00:00:00.000Z"}"#;
    let cast = if url.starts_with("postgres") {
        "CAST($5 AS JSON)"
    } else {
        "$5"
    };
    let started = Instant::now();
    let mut tx = store.pool().begin().await.unwrap();
    for chunk in (0..rows).collect::<Vec<_>>().chunks(500) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| {
                format!(
                    "('Floor', 'a{i}', 1, 'AccountTagsChanged', '1', {}, {})",
                    cast.replace("$5", "$1"),
                    cast.replace("$5", "$2")
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES {}",
            values.join(", ")
        );
        sqlx::query(&sql)
            .bind(payload)
            .bind(metadata)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    store.close().await;
    seconds
}

async fn measure(backend: Backend) {
    let accounts: usize = std::env::var("ORGSYNC_SCALE_ACCOUNTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::TempDir::new().unwrap();
    let mut settings = Settings::load(None).unwrap();
    settings.server.listen = "127.0.0.1:0".into();
    settings.state.dir = dir.path().to_path_buf();
    settings.store.url = fresh_store_url(backend, &dir).await;
    settings.log.level = "warn".into();
    let application = Application::build_with(
        settings.clone(),
        Arc::new(InProcessOrganization::new(accounts)),
    )
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{}", application.port());
    let store = application.app().store().clone();
    let stop = application.stopper();
    let serving = tokio::spawn(application.run_until_stopped());
    let token = std::fs::read_to_string(dir.path().join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    let client = reqwest::Client::new();
    let body = serde_json::json!({
        "nickname": "scale",
        "org_role": {"role_arn": "arn:aws:iam::111122223333:role/OrgSync-Org-Role", "session_name": "orgsync", "duration_seconds": 3600},
        "member_role": {"role_name": "OrgSync-Member-Role", "session_name": "orgsync", "duration_seconds": 3600}
    });
    let registered = client
        .post(format!("{base}/api/v1/organizations"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let org = expect_json(registered, StatusCode::CREATED).await;
    let org_id = org["id"].as_str().unwrap().to_owned();
    // The registration's harvest, timed by the daemon's own stamps.
    let first = loop {
        let org = client
            .get(format!("{base}/api/v1/organizations/{org_id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let org = expect_json(org, StatusCode::OK).await;
        if org["last_harvest"]["finished_at"].is_string() {
            break org;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(first["last_harvest"]["outcome"], "completed");
    assert_eq!(first["account_count"], accounts as i64);
    let stamp = |key: &str| {
        chrono::DateTime::parse_from_rfc3339(first["last_harvest"][key].as_str().unwrap()).unwrap()
    };
    let first_seconds = (stamp("finished_at") - stamp("started_at")).as_seconds_f64();
    let events = event_count(&store).await;

    // A harvest with nothing new.
    let started = Instant::now();
    let again = client
        .post(format!(
            "{base}/api/v1/organizations/{org_id}/harvest?wait=true"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_json(again, StatusCode::OK).await;
    let again_seconds = started.elapsed().as_secs_f64();
    let again_events = event_count(&store).await - events;
    stop.cancel();
    serving.await.unwrap().unwrap();

    let floor_dir = tempfile::TempDir::new().unwrap();
    let floor_url = fresh_store_url(backend, &floor_dir).await;
    let floor = batched_insert_seconds(&floor_url, events).await;
    eprintln!(
        "| {backend:?} | {accounts} | {first_seconds:.2} s | {events} | {floor:.2} s | {:.1}x | {again_seconds:.2} s | {again_events} |",
        first_seconds / floor
    );
    assert_eq!(again_events, 0, "a no-change harvest appends nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench runs it"]
async fn scale_sqlite() {
    measure(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench runs it"]
async fn scale_postgres() {
    measure(Backend::Postgres).await
}
