//! The daemon's own cost at scale, with an in-process organization behind the AWS trait (no
//! network, deterministic), each figure beside a floor measured in the same run:
//!
//! - first harvest and no-change harvest, against a batched INSERT of as many event rows into
//!   a fresh store of the same kind; peak RSS of the harvest;
//! - the listing endpoints under `wrk`, against `/healthz` of the same server;
//! - the `orgsync serve` binary's start-up to ready on the loaded store, and its idle RSS.
//!
//! Ignored by the suite: `scripts/bench` runs it in release mode and prints its tables
//! (`ORGSYNC_SCALE_ACCOUNTS`, default 10000; `ORGSYNC_SCALE_RUNS`, default 3).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use orgsync::aws::{
    AssumeRole, AwsApi, AwsError, ListedAccount, OrganizationInfo, RoleSession, SessionCredentials,
};
use orgsync::config::StoreSettings;
use orgsync::domain::account::Tags;
use orgsync::domain::{AccountId, AccountState, OrgPath, OrgUnit, RoleArn};
use orgsync::startup::Application;
use orgsync::store::Store;
use reqwest::StatusCode;

use crate::helpers::{
    daemon_settings, expect_json, first_admin_token, fresh_store, memory_mib, reset_peak_rss,
    Backend, Daemon, EventServer,
};

/// An organization of `n` accounts spread over three levels of OUs, four tags each.
pub struct InProcessOrganization {
    info: OrganizationInfo,
    accounts: Vec<ListedAccount>,
}

impl InProcessOrganization {
    fn new(n: usize) -> Self {
        Self::numbered("o-inprocess01", "111122223333", 100_000_000_000, n)
    }

    /// Organization `id` of management account `management`, its `n` accounts numbered
    /// from `first`.
    pub fn numbered(id: &str, management: &str, first: u64, n: usize) -> Self {
        let unit = |id: String, name: String| OrgUnit {
            id: id.try_into().unwrap(),
            name,
        };
        let root = unit("r-ab12".into(), "Root".into());
        let paths: Vec<OrgPath> = (0..27)
            .map(|i| {
                OrgPath::from([
                    root.clone(),
                    unit(
                        format!("ou-ab12-a{:07}", i / 9),
                        format!("Division{}", i / 9),
                    ),
                    unit(format!("ou-ab12-b{:07}", i / 3), format!("Team{}", i / 3)),
                    unit(format!("ou-ab12-c{i:07}"), format!("Env{i}")),
                ])
            })
            .collect();
        let accounts = (0..n)
            .map(|i| ListedAccount {
                id: AccountId::try_from(format!("{:012}", first + i as u64)).unwrap(),
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
        Self {
            info: OrganizationInfo {
                id: id.try_into().unwrap(),
                management_account_id: management.try_into().unwrap(),
            },
            accounts,
        }
    }
}

#[async_trait]
impl AwsApi for InProcessOrganization {
    async fn assume_role(&self, _: AssumeRole<'_>) -> Result<RoleSession, AwsError> {
        Ok(RoleSession {
            credentials: SessionCredentials::new("AKIA", "secret", None, None, "in-process"),
            partition: orgsync::domain::Partition::Aws,
        })
    }

    async fn describe_organization(&self, _: &RoleSession) -> Result<OrganizationInfo, AwsError> {
        Ok(self.info.clone())
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

/// A daemon in this process, serving an in-process organization, with a fresh store.
struct Loaded {
    base: String,
    token: String,
    client: reqwest::Client,
    store: Store,
    store_settings: StoreSettings,
    // Keeps a KurrentDB store's event server up.
    events: Option<Arc<EventServer>>,
    stop: tokio_util::sync::CancellationToken,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
    dir: tempfile::TempDir,
}

impl Loaded {
    async fn start(backend: Backend, organization: Arc<InProcessOrganization>) -> Self {
        let dir = tempfile::TempDir::new().unwrap();
        let (mut settings, events) = daemon_settings(backend, &dir).await;
        settings.log.level = "warn".into();
        let application = Application::build_with(settings.clone(), organization)
            .await
            .unwrap();
        let base = format!("http://127.0.0.1:{}", application.port());
        let store = application.app().store().clone();
        let stop = application.stopper();
        let serving = tokio::spawn(application.run_until_stopped());
        Self {
            base,
            token: first_admin_token(dir.path()),
            client: reqwest::Client::new(),
            store,
            store_settings: settings.store,
            events,
            stop,
            serving,
            dir,
        }
    }

    /// GET `path`, expecting 200, as JSON.
    async fn get(&self, path: &str) -> serde_json::Value {
        serde_json::from_slice(&self.get_bytes(path, false).await).unwrap()
    }

    /// GET `path`, expecting 200: the body as sent, gzip-encoded if `gzip` (asked for, and
    /// expected).
    async fn get_bytes(&self, path: &str, gzip: bool) -> actix_web::web::Bytes {
        let mut request = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if gzip {
            request = request.header("Accept-Encoding", "gzip");
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let encoding = response.headers().get("Content-Encoding").cloned();
        let body = response.bytes().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{path}: {body:?}");
        assert_eq!(encoding.is_some_and(|e| e == "gzip"), gzip, "{path}");
        body
    }

    /// Registers the organization and waits for the harvest registration starts; answers
    /// its id and the harvest's seconds, by the daemon's own stamps.
    async fn register(&self, accounts: usize) -> (String, f64) {
        let body = serde_json::json!({
            "nickname": "scale",
            "org_role": {"role_arn": "arn:aws:iam::111122223333:role/OrgSync-Org-Role", "session_name": "orgsync", "duration_seconds": 3600},
            "member_role": {"role_name": "OrgSync-Member-Role", "session_name": "orgsync", "duration_seconds": 3600}
        });
        let registered = self
            .client
            .post(format!("{}/api/v1/organizations", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let org = expect_json(registered, StatusCode::CREATED).await;
        let org_id = org["id"].as_str().unwrap().to_owned();
        let org = loop {
            let org = self.get(&format!("/api/v1/organizations/{org_id}")).await;
            if org["last_harvest"]["finished_at"].is_string() {
                break org;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(org["last_harvest"]["outcome"], "completed");
        assert_eq!(org["account_count"], accounts as i64);
        let stamp = |key: &str| {
            chrono::DateTime::parse_from_rfc3339(org["last_harvest"][key].as_str().unwrap())
                .unwrap()
        };
        let seconds = (stamp("finished_at") - stamp("started_at")).as_seconds_f64();
        (org_id, seconds)
    }

    /// Runs a harvest and waits for its end; answers its seconds.
    async fn harvest(&self, org_id: &str) -> f64 {
        let started = Instant::now();
        let response = self
            .client
            .post(format!(
                "{}/api/v1/organizations/{org_id}/harvest?wait=true",
                self.base
            ))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        expect_json(response, StatusCode::OK).await;
        started.elapsed().as_secs_f64()
    }

    /// Stops the daemon; answers its state directory and store.
    async fn stop(self) -> (tempfile::TempDir, StoreSettings, Option<Arc<EventServer>>) {
        self.stop.cancel();
        self.serving.await.unwrap().unwrap();
        self.store.close().await;
        (self.dir, self.store_settings, self.events)
    }
}

/// The store's floor: `rows` event rows into a fresh store of the kind of `backend`, in one
/// transaction, 500 to a statement; for KurrentDB, `rows` events appended through the same
/// client to the same kind of server, three to a stream, as many streams at once as orgsync
/// appends to. Answers its seconds.
async fn batched_insert_seconds(backend: Backend, rows: i64) -> f64 {
    #[cfg(feature = "kurrentdb")]
    if backend == Backend::Kurrent {
        return appended_to_kurrent_seconds(rows).await;
    }
    let dir = tempfile::TempDir::new().unwrap();
    let url = fresh_store(backend, &dir).await.settings.url;
    let store = Store::connect(&url, 4, Duration::from_secs(30))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let payload = r#"{"AccountTagsChanged":{"set":{"env":"prod","team":"team-1","cost-center":"cc-1","owner":"owner-1"},"removed":[],"auto_badge":true}}"#;
    let metadata = r#"{"actor":"harvest:o-inprocess01","at":"2026-11-27T00:00:00.000Z"}"#;
    let json = |n: usize| match backend {
        Backend::Sqlite => format!("${n}"),
        Backend::Postgres | Backend::Kurrent => format!("CAST(${n} AS JSON)"),
    };
    let started = Instant::now();
    let mut tx = store.pool().begin().await.unwrap();
    for chunk in (0..rows).collect::<Vec<_>>().chunks(500) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| {
                format!(
                    "('Floor', 'a{i}', 1, 'AccountTagsChanged', '1', {}, {})",
                    json(1),
                    json(2)
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

/// KurrentDB's floor of [`batched_insert_seconds`].
#[cfg(feature = "kurrentdb")]
async fn appended_to_kurrent_seconds(rows: i64) -> f64 {
    use futures::{StreamExt, TryStreamExt};
    let server = EventServer::start().await;
    let client = eventstore::Client::new(server.url.parse().unwrap()).unwrap();
    let payload: serde_json::Value = serde_json::from_str(
        r#"{"AccountTagsChanged":{"set":{"env":"prod","team":"team-1","cost-center":"cc-1","owner":"owner-1"},"removed":[],"auto_badge":true}}"#,
    )
    .unwrap();
    let metadata = serde_json::json!({"version": "1", "actor": "harvest:o-inprocess01", "at": "2026-11-27T00:00:00.000Z"});
    let started = Instant::now();
    let appends = (0..rows / 3).map(|i| {
        let events: Vec<eventstore::EventData> = (0..3)
            .map(|_| {
                eventstore::EventData::json("AccountTagsChanged", &payload)
                    .unwrap()
                    .id(uuid::Uuid::new_v4())
                    .metadata_as_json(&metadata)
                    .unwrap()
            })
            .collect();
        let options = eventstore::AppendToStreamOptions::default()
            .expected_revision(eventstore::ExpectedRevision::NoStream);
        let (client, prefix) = (&client, &server.prefix);
        async move {
            let stream = format!("{prefix}-account-{i}");
            client.append_to_stream(stream, &options, events).await
        }
    });
    let written: Vec<_> = futures::stream::iter(appends)
        .buffer_unordered(64)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(written.len() as i64, rows / 3);
    started.elapsed().as_secs_f64()
}

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// What `wrk` measured of one endpoint: requests per second and p99 latency in ms.
#[derive(Clone, Copy)]
struct Load {
    requests_per_second: f64,
    p99_ms: f64,
}

/// One endpoint loaded with `wrk`: what the table calls it, the server, the path, a script
/// (Lua) that changes the request, and whether the request accepts gzip.
struct Endpoint<'a> {
    name: &'a str,
    base: &'a str,
    path: &'a str,
    script: Option<&'a Path>,
    gzip: bool,
}

/// Loads `endpoint` with `wrk` for `seconds`, two threads and 32 connections.
fn wrk(endpoint: &Endpoint, token: &str, seconds: usize) -> Load {
    let Endpoint {
        base,
        path,
        script,
        gzip,
        ..
    } = endpoint;
    let mut command = std::process::Command::new("wrk");
    command.args(["-t2", "-c32", &format!("-d{seconds}s"), "--latency"]);
    command.args(["-H", &format!("Authorization: Bearer {token}")]);
    if *gzip {
        command.args(["-H", "Accept-Encoding: gzip"]);
    }
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let output = command
        .arg(format!("{base}{path}"))
        .output()
        .expect("wrk runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "wrk: {report}");
    assert!(
        !report.contains("Non-2xx"),
        "{path} answered errors under load: {report}"
    );
    let field = |prefix: &str| {
        report
            .lines()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {report}"))
            .trim()
            .to_owned()
    };
    let p99 = field("99%");
    let (number, unit) = p99.split_at(p99.find(|c: char| c.is_alphabetic()).unwrap());
    let scale = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        other => panic!("wrk latency unit {other:?}"),
    };
    Load {
        requests_per_second: field("Requests/sec:").parse().unwrap(),
        p99_ms: number.parse::<f64>().unwrap() * scale,
    }
}

/// A bare actix-web server, with the daemon's number of workers, that answers every request
/// with `body`, gzip-encoded as it is if `gzip`: what serving a page of that size costs,
/// whatever computes it. Answers its address and the handle that stops it.
fn serve_bytes(body: actix_web::web::Bytes, gzip: bool) -> (String, actix_web::dev::ServerHandle) {
    use actix_web::http::header::ContentEncoding;
    use actix_web::{web, HttpResponse};
    let server = actix_web::HttpServer::new(move || {
        let body = body.clone();
        actix_web::App::new().default_service(web::to(move || {
            let body = body.clone();
            async move {
                let mut response = HttpResponse::Ok();
                response.content_type("application/json");
                if gzip {
                    response.insert_header(ContentEncoding::Gzip);
                }
                response.body(body)
            }
        }))
    })
    .bind("127.0.0.1:0")
    .expect("bind the bytes server");
    let address = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (address, handle)
}

/// The harvest table's figures of one run.
struct Harvests {
    first: f64,
    events: i64,
    floor: f64,
    again: f64,
    again_events: i64,
    peak_rss: f64,
}

async fn measure(backend: Backend) {
    let accounts = setting("ORGSYNC_SCALE_ACCOUNTS", 10_000);
    let runs = setting("ORGSYNC_SCALE_RUNS", 3);
    let wrk_seconds = setting("ORGSYNC_SCALE_WRK_SECONDS", 5);
    let before = memory_mib("self", "VmRSS");
    let organization = Arc::new(InProcessOrganization::new(accounts));
    // The fixture's own memory is not the daemon's.
    let fixture = memory_mib("self", "VmRSS") - before;

    let mut harvests = Vec::new();
    let mut loaded = None;
    for run in 1..=runs {
        let daemon = Loaded::start(backend, organization.clone()).await;
        reset_peak_rss("self");
        let (org_id, first) = daemon.register(accounts).await;
        let events = daemon.store.event_count().await.unwrap();
        let again = daemon.harvest(&org_id).await;
        let again_events = daemon.store.event_count().await.unwrap() - events;
        let peak_rss = memory_mib("self", "VmHWM") - fixture;
        assert_eq!(again_events, 0, "a no-change harvest appends nothing");
        harvests.push(Harvests {
            first,
            events,
            floor: batched_insert_seconds(backend, events).await,
            again,
            again_events,
            peak_rss,
        });
        if run == runs {
            loaded = Some(daemon);
        } else {
            daemon.stop().await;
        }
    }
    let daemon = loaded.expect("at least one run");

    // The API under load, against the same server's trivial endpoint.
    let account = format!(
        "/api/v1/accounts/{:012}",
        100_000_000_000u64 + accounts as u64 / 2
    );
    daemon.get(&account).await;
    let listing = "/api/v1/accounts?badge=env:prod&limit=100";
    let page = daemon.get_bytes(listing, false).await;
    let listed: serde_json::Value = serde_json::from_slice(&page).unwrap();
    assert_eq!(listed["accounts"].as_array().unwrap().len(), 100);
    let gzip_page = daemon.get_bytes(listing, true).await;
    let graphql = daemon.dir.path().join("graphql.lua");
    let query = "{ accounts(badges: [\"env:prod\"], first: 100) { nodes { accountId name \
        email state organizationId managed orgPath { id name } tags { key value } \
        badges { key value autogenerated } \
        access { status message warnings permissionsChecked } firstSeen lastSeen } } }";
    let body = serde_json::json!({ "query": query }).to_string();
    std::fs::write(
        &graphql,
        format!(
            "wrk.method = \"POST\"\n\
             wrk.headers[\"Content-Type\"] = \"application/json\"\n\
             wrk.body = [==[{body}]==]\n"
        ),
    )
    .unwrap();
    let nodes = daemon
        .client
        .post(format!("{}/graphql", daemon.base))
        .bearer_auth(&daemon.token)
        .body(body)
        .header("Content-Type", "application/json")
        .send()
        .await
        .unwrap();
    let nodes = expect_json(nodes, StatusCode::OK).await;
    assert_eq!(
        nodes["data"]["accounts"]["nodes"].as_array().unwrap().len(),
        100,
        "{nodes}"
    );
    let page_size = page.len();
    let gzip_page_size = gzip_page.len();
    let (bytes_base, bytes_server) = serve_bytes(page, false);
    let (gzip_bytes_base, gzip_bytes_server) = serve_bytes(gzip_page, true);
    let endpoint = |name, base, path, script, gzip| Endpoint {
        name,
        base,
        path,
        script,
        gzip,
    };
    let base = daemon.base.clone();
    let rest = "GET /api/v1/accounts?badge=env:prod&limit=100";
    let graphql_name = "POST /graphql accounts(badges: [\"env:prod\"], first: 100)";
    let endpoints = [
        endpoint("GET /healthz (floor)", &base, "/healthz", None, false),
        endpoint("GET /api/v1/accounts/{id}", &base, &account, None, false),
        endpoint(rest, &base, listing, None, false),
        endpoint(graphql_name, &base, "/graphql", Some(&graphql), false),
        endpoint(
            "the same listing's bytes from a bare actix-web server (floor for the page's size)",
            &bytes_base,
            "/",
            None,
            false,
        ),
        endpoint(rest, &base, listing, None, true),
        endpoint(graphql_name, &base, "/graphql", Some(&graphql), true),
        endpoint(
            "the same listing's gzip bytes from a bare actix-web server",
            &gzip_bytes_base,
            "/",
            None,
            true,
        ),
    ];
    let mut loads: Vec<Vec<Load>> = vec![Vec::new(); endpoints.len()];
    for _ in 0..runs {
        for (endpoint, loads) in endpoints.iter().zip(&mut loads) {
            loads.push(wrk(endpoint, &daemon.token, wrk_seconds));
        }
    }
    gzip_bytes_server.stop(true).await;
    bytes_server.stop(true).await;
    let past = past_listing_latencies(&daemon, runs).await;
    let (dir, loaded_store, _events) = daemon.stop().await;

    // Start-up to ready of the binary on the loaded store, against an empty one.
    let empty_dir = tempfile::TempDir::new().unwrap();
    let empty = fresh_store(backend, &empty_dir).await;
    let mut startups: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..runs {
        for ((state, store), startups) in [
            (dir.path(), &loaded_store),
            (empty_dir.path(), &empty.settings),
        ]
        .into_iter()
        .zip(&mut startups)
        {
            let started = Instant::now();
            let mut binary = Daemon::start(state, store, "http://127.0.0.1:9").await;
            let ready = started.elapsed().as_secs_f64();
            // Idle: ready, and nothing asked of it for a second.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let pid = binary.process.id().unwrap().to_string();
            let idle_rss = memory_mib(&pid, "VmRSS");
            binary.signal("-TERM");
            assert!(binary.process.wait().await.unwrap().success());
            startups.push((ready, idle_rss));
        }
    }

    let store = format!("{backend:?}");
    let m = |f: &dyn Fn(&Harvests) -> f64| median(harvests.iter().map(f).collect());
    let (first, floor) = (m(&|h| h.first), m(&|h| h.floor));
    println!("#### {store}, {accounts} accounts: harvest (medians of {runs} runs)\n");
    println!("| first harvest | events appended | batched-insert floor | ratio | no-change harvest | events appended | peak RSS |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {first:.2} s | {:.0} | {floor:.2} s | {:.2}× | {:.2} s | {:.0} | {:.0} MiB |\n",
        m(&|h| h.events as f64),
        first / floor,
        m(&|h| h.again),
        m(&|h| h.again_events as f64),
        m(&|h| h.peak_rss),
    );
    println!("#### {store}, {accounts} accounts: API under wrk, 2 threads, 32 connections, {wrk_seconds} s (medians of {runs} runs); the listing page is {} KB, {} KB gzip-encoded\n", page_size / 1000, gzip_page_size / 1000);
    println!("| endpoint | Accept-Encoding | requests/s | ratio to /healthz | p99 latency |");
    println!("|---|---|---:|---:|---:|");
    let floor_rps = median(loads[0].iter().map(|l| l.requests_per_second).collect());
    for (endpoint, loads) in endpoints.iter().zip(&loads) {
        let rps = median(loads.iter().map(|l| l.requests_per_second).collect());
        let p99 = median(loads.iter().map(|l| l.p99_ms).collect());
        println!(
            "| `{}` | {} | {rps:.0} | {:.2}× | {p99:.1} ms |",
            endpoint.name,
            if endpoint.gzip { "gzip" } else { "none" },
            rps / floor_rps
        );
    }
    println!("\n#### {store}, {accounts} accounts: the listing now and at a past instant, one client, each query a new one (medians of {} requests)\n", past.len() / 4);
    println!("| query | now (not kept) | `asOf` | ratio |");
    println!("|---|---:|---:|---:|");
    for (i, filter) in PAST_FILTERS.iter().enumerate() {
        let of = |column: usize| {
            median(
                past.iter()
                    .filter(|p| p.0 == i && p.1 == column)
                    .map(|p| p.2)
                    .collect(),
            )
        };
        let (now, then) = (of(0), of(1));
        println!(
            "| `accounts({filter}first: 100)` | {now:.1} ms | {then:.1} ms | {:.2}× |",
            then / now
        );
    }
    println!("\n#### {store}: `orgsync serve` start-up to ready (medians of {runs} runs)\n");
    println!("| store holds | start-up to ready | idle RSS |");
    println!("|---|---:|---:|");
    for (name, startups) in [
        (format!("{accounts} accounts"), &startups[0]),
        ("nothing (floor)".into(), &startups[1]),
    ] {
        println!(
            "| {name} | {:.2} s | {:.0} MiB |",
            median(startups.iter().map(|s| s.0).collect()),
            median(startups.iter().map(|s| s.1).collect())
        );
    }
    println!();
}

/// The listings the past-instant row asks for: all accounts, and a third of them by badge.
const PAST_FILTERS: [&str; 2] = ["", "badges: [\"env:prod\"], "];

/// Latencies of a page of 100 of the listing now and at an instant after the harvest, one
/// request at a time, alternated, each a query the answer cache has not seen (a new alias):
/// `(filter, 0 now or 1 asOf, ms)`, `5 * runs` of each.
async fn past_listing_latencies(daemon: &Loaded, runs: usize) -> Vec<(usize, usize, f64)> {
    let at = chrono::Utc::now().to_rfc3339();
    let fields = "nodes { accountId name email state organizationId managed orgPath { id name } \
        tags { key value } badges { key value autogenerated } \
        access { status message warnings permissionsChecked } firstSeen lastSeen }";
    let mut latencies = Vec::new();
    for round in 0..5 * runs {
        for (i, filter) in PAST_FILTERS.iter().enumerate() {
            for (column, as_of) in ["", &format!("asOf: \"{at}\", ")].iter().enumerate() {
                let query =
                    format!("{{ a{round}: accounts({filter}{as_of}first: 100) {{ {fields} }} }}");
                let started = Instant::now();
                let answer = daemon
                    .client
                    .post(format!("{}/graphql", daemon.base))
                    .bearer_auth(&daemon.token)
                    .json(&serde_json::json!({ "query": query }))
                    .send()
                    .await
                    .unwrap();
                let answer = expect_json(answer, StatusCode::OK).await;
                latencies.push((i, column, started.elapsed().as_secs_f64() * 1000.0));
                let nodes = answer["data"][format!("a{round}")]["nodes"]
                    .as_array()
                    .map(Vec::len);
                assert_eq!(nodes, Some(100), "{answer}");
            }
        }
    }
    latencies
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

#[cfg(feature = "kurrentdb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench runs it"]
async fn scale_kurrentdb() {
    measure(Backend::Kurrent).await
}
