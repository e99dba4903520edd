//! The daemon as operators run it: the real binary, its configuration check, and a SIGTERM
//! in the middle of a harvest.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use orgsync::store::Store;
use reqwest::StatusCode;
use sqlx::Row;

use crate::aws_stub::AwsStub;
use crate::helpers::{expect_json, fresh_store, listing, new_database, Backend, Daemon, TestApp};
use crate::moto::{moto_url, MotoOrg, Shape, NESTED};
use crate::on_every_store;

const BINARY: &str = env!("CARGO_BIN_EXE_orgsync");

#[test]
fn check_config_rejects_a_broken_config_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orgsync.toml");
    let check = |toml: &str| {
        std::fs::write(&file, toml).unwrap();
        // The default state directory is relative: kept out of the checkout.
        std::process::Command::new(BINARY)
            .args(["--config", file.to_str().unwrap(), "check-config"])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let valid = check("[harvest]\ninterval = \"15m\"\n");
    assert!(valid.status.success());
    assert_eq!(
        String::from_utf8_lossy(&valid.stdout).trim(),
        "configuration is valid"
    );
    for (toml, named) in [
        ("[harvest]\ninterval = \"soon\"\n", "soon"),
        ("[server]\nlisten = \"everywhere\"\n", "server.listen"),
        ("[store]\nurl = \"mysql://db\"\n", "store.url"),
        ("[servre]\nlisten = \"127.0.0.1:1\"\n", "servre"),
        ("[harvest\n", "orgsync.toml"),
    ] {
        let broken = check(toml);
        assert_eq!(broken.status.code(), Some(2), "{toml}");
        let message = String::from_utf8_lossy(&broken.stderr);
        assert!(message.starts_with("orgsync: configuration"), "{message}");
        assert!(message.contains(named), "{toml}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_harvest_exits_cleanly_without_a_partial_membership_change() {
    let stub = AwsStub::start(&moto_url());
    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts: 150,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = fresh_store(Backend::Sqlite, &dir).await;
    let mut daemon = Daemon::start(dir.path(), &store.settings, &stub.url).await;
    let registered = daemon
        .post("/api/v1/organizations", &org.registration("prod"))
        .await;
    expect_json(registered, StatusCode::CREATED).await;

    // The harvest registration started is running: stop the daemon as systemd would, which
    // waits TimeoutStopSec (30 s in systemd/orgsync.service) before it kills.
    daemon.signal("-TERM");
    let status = tokio::time::timeout(Duration::from_secs(30), daemon.process.wait())
        .await
        .expect("exits within the unit's TimeoutStopSec")
        .unwrap();
    assert!(status.success(), "{status}");

    // All of the organization's accounts or none: never part of them.
    let store = store.connect().await;
    orgsync::projections::Projector::new(store.clone())
        .catch_up()
        .await
        .unwrap();
    let listed: i64 = sqlx::query("SELECT COUNT(*) AS n FROM accounts")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get("n");
    assert!(listed == 0 || listed == 151, "{listed} accounts listed");
    let outcome: Option<String> = sqlx::query("SELECT outcome FROM harvest_runs")
        .fetch_optional(store.pool())
        .await
        .unwrap()
        .map(|row| row.get("outcome"));
    let expected = if listed == 0 { "failed" } else { "completed" };
    assert_eq!(outcome.as_deref(), Some(expected), "{listed} listed");
    store.close().await;
}

/// Every account's events, as (type, data) in order, by account: what a harvest decided.
async fn account_logs(store: &Store) -> BTreeMap<String, Vec<(String, serde_json::Value)>> {
    let mut logs: BTreeMap<String, Vec<(String, serde_json::Value)>> = BTreeMap::new();
    for event in store.events_after(0, i64::MAX).await.unwrap() {
        if event.aggregate_type == "Account" {
            logs.entry(event.aggregate_id.clone())
                .or_default()
                .push((event.event_type.clone(), orgsync::api::event_data(&event)));
        }
    }
    logs
}

on_every_store!(twenty_sigkills_across_harvests_end_as_a_clean_run);

async fn twenty_sigkills_across_harvests_end_as_a_clean_run(backend: Backend) {
    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts: 150,
    })
    .await;
    let clean = TestApp::spawn(backend).await;
    // How long a harvest takes here spans the kill points, so that they fall anywhere from
    // registration to the last append, on a fast machine as on a slow one: registration's
    // harvest and the one asked for after it, two in all.
    let harvesting = Instant::now();
    let org_id = clean.register(&org).await;
    clean.harvest(&org_id).await;
    let span = harvesting.elapsed().as_millis() as u64 / 2;
    let clean_listing = clean.listing(&org_id).await;
    let clean_logs = account_logs(&clean.store).await;
    assert_eq!(clean_logs.len(), 151);
    let stub = clean.stub.clone();
    clean.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let killed = fresh_store(backend, &dir).await;
    let seed: u64 = rand::random();
    eprintln!("kill points from seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    for kill in 0..20 {
        let mut daemon = Daemon::start(dir.path(), &killed.settings, &stub.url).await;
        if kill == 0 {
            let registered = daemon
                .post("/api/v1/organizations", &org.registration("prod"))
                .await;
            expect_json(registered, StatusCode::CREATED).await;
        }
        // Registration, or the scheduler finding the last harvest abandoned, starts one.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..span))).await;
        daemon.signal("-KILL");
        daemon.process.wait().await.unwrap();
    }

    let mut daemon = Daemon::start(dir.path(), &killed.settings, &stub.url).await;
    let done = daemon
        .post(
            &format!("/api/v1/organizations/{org_id}/harvest?wait=true"),
            &serde_json::Value::Null,
        )
        .await;
    let done = expect_json(done, StatusCode::OK).await;
    assert_eq!(done["last_harvest"]["outcome"], "completed");
    assert_eq!(
        listing(&daemon.client, &daemon.base, &daemon.token, &org_id).await,
        clean_listing
    );
    daemon.signal("-TERM");
    assert!(daemon.process.wait().await.unwrap().success());

    let store = killed.connect().await;
    let logs = account_logs(&store).await;
    assert_eq!(logs.len(), clean_logs.len());
    for (account, log) in &clean_logs {
        assert_eq!(
            logs.get(account),
            Some(log),
            "account {account}: the same events, once each"
        );
    }
    store.close().await;
}

on_every_store!(metrics_expose_harvests_aws_calls_appends_http_and_accounts_by_state);

async fn metrics_expose_harvests_aws_calls_appends_http_and_accounts_by_state(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create(Shape {
        ous: &[],
        accounts: 3,
    })
    .await;
    org.close(&org.members[0]).await;
    let org_id = app.register(&org).await;
    app.stub.organizations_faults(30, 0);
    app.harvest(&org_id).await;
    app.stub.organizations_faults(0, 0);

    let answered = app.get("/api/v1/organizations").await;
    assert!(
        answered.headers().contains_key("x-request-id"),
        "every answer names its request"
    );
    // No token needed, as Prometheus scrapes.
    let text = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series =
        |prefix: &str| -> Vec<&str> { text.lines().filter(|l| l.starts_with(prefix)).collect() };
    let value = |line: &str| -> f64 { line.rsplit(' ').next().unwrap().parse().unwrap() };
    let has = |prefix: &str| !series(prefix).is_empty();

    assert!(
        has(&format!(
            "orgsync_harvest_duration_seconds_bucket{{organization=\"{org_id}\""
        )),
        "{text}"
    );
    let completed = series(&format!(
        "orgsync_harvests_total{{organization=\"{org_id}\",outcome=\"completed\"}}"
    ));
    assert_eq!(
        completed.iter().map(|l| value(l)).sum::<f64>(),
        2.0,
        "the registration's and ours"
    );
    assert_eq!(
        series("orgsync_accounts{state=\"ACTIVE\"}")
            .iter()
            .map(|l| value(l))
            .sum::<f64>(),
        3.0
    );
    assert_eq!(
        series("orgsync_accounts{state=\"SUSPENDED\"}")
            .iter()
            .map(|l| value(l))
            .sum::<f64>(),
        1.0
    );
    assert!(has("orgsync_aws_calls_total{operation=\"organizations:ListAccountsForParent\",outcome=\"ok\"}"), "{text}");
    assert!(
        has("orgsync_aws_calls_total{operation=\"organizations:"),
        "{text}"
    );
    let throttled = series("orgsync_aws_calls_total{operation=\"organizations:")
        .into_iter()
        .filter(|l| l.contains("outcome=\"TooManyRequestsException\""))
        .count();
    assert!(throttled > 0, "throttles are counted: {text}");
    assert!(
        has("orgsync_aws_calls_total{operation=\"sts:AssumeRole\",outcome=\"ok\"}"),
        "{text}"
    );
    assert!(
        series("orgsync_event_append_seconds_count")
            .iter()
            .any(|l| value(l) > 0.0),
        "{text}"
    );
    assert!(has("orgsync_http_requests_total{method=\"POST\",route=\"/api/v1/organizations/{id}/harvest\",status=\"200\"}"), "{text}");
    app.stop().await;
}

/// Waits for `condition` up to `limit`, checking every few milliseconds.
async fn eventually(limit: Duration, condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !condition() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_postgres_schedule_from_one_and_hand_over_when_it_stops() {
    let tick = |s: &mut orgsync::config::Settings| s.harvest.tick = Duration::from_millis(100);
    let a = TestApp::spawn_tuned(Backend::Postgres, tick).await;
    let b = a.spawn_beside().await;
    let leads = || (a.app.is_scheduling(), b.app.is_scheduling());
    assert!(
        eventually(Duration::from_secs(10), || leads().0 || leads().1).await,
        "nobody schedules"
    );
    // Over twenty ticks, never both.
    for _ in 0..100 {
        assert_ne!(leads(), (true, true), "two schedulers at once");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let held: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(a.store.pool())
    .await
    .unwrap()
    .get("n");
    assert_eq!(held, 1, "one session holds the scheduler lock");
    // Both serve the API.
    for app in [&a, &b] {
        assert_eq!(
            app.get("/api/v1/organizations").await.status(),
            StatusCode::OK
        );
    }

    let (leader, follower) = if a.app.is_scheduling() {
        (a, b)
    } else {
        (b, a)
    };
    leader.stop().await;
    assert!(
        eventually(Duration::from_secs(5), || follower.app.is_scheduling()).await,
        "the other instance takes over within a few ticks"
    );
    follower.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_daemon_on_sqlite_schedules() {
    let tick = |s: &mut orgsync::config::Settings| s.harvest.tick = Duration::from_millis(100);
    let app = TestApp::spawn_tuned(Backend::Sqlite, tick).await;
    assert!(eventually(Duration::from_secs(5), || app.app.is_scheduling()).await);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_harvest_is_survived_without_losing_or_doubling_an_event() {
    let admin = std::env::var("ORGSYNC_TEST_RESTARTABLE_PG_URL")
        .expect("ORGSYNC_TEST_RESTARTABLE_PG_URL is not set: run the suite with scripts/test");
    let restart =
        std::env::var("ORGSYNC_TEST_RESTART_PG").expect("ORGSYNC_TEST_RESTART_PG is not set");
    let url = new_database(&admin).await;
    let app = TestApp::spawn_tuned(Backend::Postgres, |s| s.store.url = url.clone()).await;
    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts: 300,
    })
    .await;
    let org_id = app.register(&org).await;

    // The harvest registration started is under way: restart the database under it.
    let restarted = tokio::process::Command::new(&restart)
        .status()
        .await
        .unwrap();
    assert!(restarted.success(), "pg_ctl restart");

    // The daemon reconnects; the next harvest completes whatever the first one managed.
    let done = app.harvest(&org_id).await;
    assert_eq!(done["last_harvest"]["outcome"], "completed", "{done}");
    assert_eq!(app.listing(&org_id).await, org.truth().await);
    let logs = account_logs(&app.store).await;
    assert_eq!(logs.len(), 301);
    for (account, log) in &logs {
        let mut types: Vec<&str> = log.iter().map(|(t, _)| t.as_str()).collect();
        types.sort_unstable();
        let before = types.len();
        types.dedup();
        assert_eq!(
            types.len(),
            before,
            "account {account} got an event twice: {log:?}"
        );
        assert_eq!(log[0].0, "AccountDiscovered");
    }
    app.stop().await;
}

/// Two instances on one PostgreSQL harvest an organization once per interval: neither
/// scheduler starts one within the interval after the last start, and when both find it due
/// at the same instant, one harvest runs. The schedulers are driven through `tick` at instants
/// the test chooses, so nothing depends on how fast the machine is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_harvest_each_organization_once_per_interval() {
    let a = TestApp::spawn(Backend::Postgres).await;
    let b = a.spawn_beside().await;
    let org = MotoOrg::create(Shape {
        ous: &[],
        accounts: 2,
    })
    .await;
    let org_id = a.register(&org).await;
    let completed = || {
        // Both daemons run in this process and count into the same metrics.
        orgsync::metrics::METRICS
            .harvests
            .with_label_values(&[&org_id, "completed"])
            .get()
    };
    // One on demand waits for the harvest registration started, and runs after it.
    a.harvest(&org_id).await;
    let interval = chrono::Duration::from_std(a.settings.harvest.interval).unwrap();
    let (scheduler_a, scheduler_b) = (a.app.scheduler(), b.app.scheduler());
    for round in 0..3 {
        let organization = a.get_json(&format!("/api/v1/organizations/{org_id}")).await;
        let last: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(organization["last_harvest"]["started_at"].clone()).unwrap();
        let before = completed();

        // Within the interval (its jitter is at most a tenth of it), neither starts one.
        let early = last + interval * 9 / 10;
        assert!(scheduler_a.tick(early).await.unwrap().is_empty());
        assert!(scheduler_b.tick(early).await.unwrap().is_empty());

        // Past it, both look at the same instant; whichever finds it due starts one, and of
        // two started, one runs and the other sees it and stops.
        let due = last + interval * 11 / 10;
        let (from_a, from_b) = tokio::join!(scheduler_a.tick(due), scheduler_b.tick(due));
        let started = from_a.unwrap().len() + from_b.unwrap().len();
        assert!(started >= 1, "round {round}: due, yet not started");
        // A harvest on demand waits for whichever scheduled one runs, then runs itself.
        let done = b.harvest(&org_id).await;
        assert_eq!(done["last_harvest"]["outcome"], "completed");
        assert_eq!(
            completed(),
            before + 2,
            "round {round}: one scheduled harvest and the one on demand"
        );
    }
    a.stop().await;
    b.stop().await;
}

/// The accounts of `org_id`'s first listing page, by id, as `app` serves it over REST.
async fn rest_page(app: &TestApp, org_id: &str) -> BTreeMap<String, serde_json::Value> {
    let page = app
        .get_json(&format!("/api/v1/accounts?organization={org_id}"))
        .await;
    page["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| (a["account_id"].as_str().unwrap().to_owned(), a.clone()))
        .collect()
}

/// [`rest_page`], after checking that GraphQL serves the same `last_seen` and badges.
async fn page(app: &TestApp, org_id: &str) -> BTreeMap<String, serde_json::Value> {
    let page = rest_page(app, org_id).await;
    let nodes = crate::graphql::data(
        app,
        "query Page($org: ID) { accounts(organization: $org) { nodes { accountId lastSeen \
         badges { key value autogenerated } } } }",
        serde_json::json!({ "org": org_id }),
    )
    .await;
    let nodes = nodes["accounts"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), page.len());
    for node in nodes {
        let account = &page[node["accountId"].as_str().unwrap()];
        assert_eq!(node["badges"], account["badges"]);
        let seen = |v: &serde_json::Value| {
            chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap()
        };
        assert_eq!(seen(&node["lastSeen"]), seen(&account["last_seen"]));
    }
    page
}

/// Adds the manual badge `team:blue` to `account` through `app`.
async fn add_team_badge(app: &TestApp, account: &str) {
    let response = app
        .post(
            &format!("/api/v1/accounts/{account}/badges"),
            &serde_json::json!({"key": "team", "value": "blue"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

fn has_team_badge(account: &serde_json::Value) -> bool {
    let badge = serde_json::json!({"key": "team", "value": "blue", "autogenerated": false});
    account["badges"].as_array().unwrap().contains(&badge)
}

on_every_store!(a_page_read_again_shows_every_change_made_since);

async fn a_page_read_again_shows_every_change_made_since(backend: Backend) {
    let (app, _org, org_id) = TestApp::harvested(
        backend,
        Shape {
            ous: &[],
            accounts: 2,
        },
    )
    .await;
    let before = page(&app, &org_id).await;
    assert_eq!(page(&app, &org_id).await, before, "nothing changed");
    // A harvest that finds nothing new appends no event, but its accounts were seen later.
    let events = app.event_count().await;
    app.harvest(&org_id).await;
    assert_eq!(app.event_count().await, events);
    let after = page(&app, &org_id).await;
    for (id, account) in &before {
        assert!(
            after[id]["last_seen"].as_str() > account["last_seen"].as_str(),
            "{id} was seen again: {} then {}",
            account["last_seen"],
            after[id]["last_seen"]
        );
    }
    // An event changes the page too.
    let account = before.keys().next().unwrap();
    add_team_badge(&app, account).await;
    let badged = page(&app, &org_id).await;
    assert!(has_team_badge(&badged[account]), "{}", badged[account]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_another_daemon_serves_shows_the_changes_this_one_makes() {
    let (a, _org, org_id) = TestApp::harvested(
        Backend::Postgres,
        Shape {
            ous: &[],
            accounts: 2,
        },
    )
    .await;
    let b = a.spawn_beside().await;
    let before = page(&b, &org_id).await;
    assert_eq!(page(&b, &org_id).await, before);
    let account = before.keys().next().unwrap();
    add_team_badge(&a, account).await;
    // b hears of the change when a's projection commits; it has until the deadline.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let page = rest_page(&b, &org_id).await;
        if has_team_badge(&page[account]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "b still serves {}",
            page[account]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // b has heard: GraphQL answers anew too.
    let page = page(&b, &org_id).await;
    assert!(has_team_badge(&page[account]), "{}", page[account]);
    a.stop().await;
    b.stop().await;
}

/// The daemon as operators run it, on a KurrentDB server of its own with its log on disk (the
/// read tables in SQLite): registered, killed with SIGKILL in the middle of its first harvest,
/// the server restarted under it, then started again, it lists what the same daemon on SQLite
/// alone lists.
#[cfg(feature = "kurrentdb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_on_kurrentdb_survives_sigkill_and_a_server_restart_and_lists_as_on_sqlite() {
    use crate::helpers::connect;
    let stub = AwsStub::start(&moto_url());
    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts: 60,
    })
    .await;
    let sqlite_dir = tempfile::tempdir().unwrap();
    let sqlite = fresh_store(Backend::Sqlite, &sqlite_dir).await;
    let mut on_sqlite = Daemon::start(sqlite_dir.path(), &sqlite.settings, &stub.url).await;
    let registered = on_sqlite
        .post("/api/v1/organizations", &org.registration("prod"))
        .await;
    let org_id = expect_json(registered, StatusCode::CREATED).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let harvested = on_sqlite
        .post(
            &format!("/api/v1/organizations/{org_id}/harvest?wait=true"),
            &serde_json::Value::Null,
        )
        .await;
    expect_json(harvested, StatusCode::OK).await;
    let expected = listing(
        &on_sqlite.client,
        &on_sqlite.base,
        &on_sqlite.token,
        &org_id,
    )
    .await;
    on_sqlite.signal("-TERM");
    assert!(on_sqlite.process.wait().await.unwrap().success());

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("kurrentdb");
    let server = kurrentdb_test_server::TestServer::start(0, Some(data.clone()))
        .await
        .unwrap();
    let port = server.port();
    let mut store = fresh_store(Backend::Sqlite, &dir).await.settings;
    store.events_url = server.url();
    let mut daemon = Daemon::start(dir.path(), &store, &stub.url).await;
    let registered = daemon
        .post("/api/v1/organizations", &org.registration("prod"))
        .await;
    expect_json(registered, StatusCode::CREATED).await;
    // Killed while registration's harvest appends, as a crash would.
    let appended = || async { connect(&store).await.event_count().await.unwrap() > 1 };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !appended().await {
        assert!(Instant::now() < deadline, "the harvest appended nothing");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    daemon.signal("-KILL");
    daemon.process.wait().await.unwrap();

    // The server restarts with its log, under a daemon that starts again.
    server.stop().await;
    let server = kurrentdb_test_server::TestServer::start(port, Some(data))
        .await
        .unwrap();
    let mut daemon = Daemon::start(dir.path(), &store, &stub.url).await;
    let done = daemon
        .post(
            &format!("/api/v1/organizations/{org_id}/harvest?wait=true"),
            &serde_json::Value::Null,
        )
        .await;
    let done = expect_json(done, StatusCode::OK).await;
    assert_eq!(done["last_harvest"]["outcome"], "completed", "{done}");
    assert_eq!(
        listing(&daemon.client, &daemon.base, &daemon.token, &org_id).await,
        expected
    );
    // Every event once: each account's log holds each event type at most once.
    let logs = account_logs(&connect(&store).await).await;
    assert_eq!(logs.len(), expected.len());
    for (account, log) in &logs {
        let mut types: Vec<&str> = log.iter().map(|(t, _)| t.as_str()).collect();
        let all = types.len();
        types.sort_unstable();
        types.dedup();
        assert_eq!(
            types.len(),
            all,
            "account {account}: an event twice: {log:?}"
        );
    }
    daemon.signal("-TERM");
    assert!(daemon.process.wait().await.unwrap().success());
    server.stop().await;
}
