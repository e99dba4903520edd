//! Nothing unbounded, nothing forever: what a caller, a lost file or a log line cannot make
//! the daemon do.

use std::time::{Duration, Instant};

use orgsync::app::{AccountRole, OrganizationChange, Registration};
use orgsync::aws::AssumeRole;
use orgsync::crypto::Secret;
use orgsync::domain::organization::{Credentials, MemberRole, OrgRole};
use orgsync::domain::{RoleArn, SessionDuration, SessionName};
use orgsync::startup::Application;
use reqwest::StatusCode;
use serde_json::json;
use tempfile::TempDir;

use crate::helpers::{
    daemon_settings, expect_json, fresh_store, memory_mib, orgsync_command, reset_peak_rss,
    Backend, Daemon, TestApp,
};
use crate::moto::{MotoOrg, Shape, MEMBER_ROLE, NESTED};
use crate::on_every_store;

/// A GraphQL body is limited as a REST one is: ten megabytes announced by Content-Length are
/// answered 413 before any of them is sent, and the daemon does not grow when they are sent
/// all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_megabyte_graphql_body_is_answered_413_without_the_daemon_growing() {
    let dir = TempDir::new().unwrap();
    let store = fresh_store(Backend::Sqlite, &dir).await;
    let daemon = Daemon::start(dir.path(), &store.settings, "http://127.0.0.1:9").await;
    let pid = daemon.process.id().unwrap().to_string();
    // Each worker's first requests grow its allocator's heap: they come before the baseline.
    for _ in 0..16 {
        let healthz = daemon.client.get(format!("{}/healthz", daemon.base)).send();
        assert_eq!(healthz.await.unwrap().status(), StatusCode::OK);
    }
    // And so does the first refusal of such a body sent all the same on each worker (its
    // socket's reads grow that worker's heap by 4 to 6 MiB, once; connections go to the
    // workers in turn, one worker per core): the refusals measured below find their buffers made.
    let address = daemon.base.trim_start_matches("http://");
    let workers = std::thread::available_parallelism().unwrap().get();
    for _ in 0..2 * workers {
        refuse_an_oversized_graphql_body(address, 10 << 20).await;
    }
    reset_peak_rss(&pid);
    let before = memory_mib(&pid, "VmRSS");

    // Without a token, as the observed 200 MB was sent; three times, each kept would be 10 MiB.
    for _ in 0..3 {
        refuse_an_oversized_graphql_body(address, 10 << 20).await;
    }
    let grown = memory_mib(&pid, "VmHWM") - before;
    // Keeping the body would take 10 MiB at least.
    assert!(grown < 6.0, "the daemon grew by {grown:.1} MiB");

    // A body within the limit is read and executed as before.
    let small = daemon
        .client
        .post(format!("{}/graphql", daemon.base))
        .bearer_auth(&daemon.token)
        .json(&json!({ "query": "{ accounts(first: 1) { nodes { accountId } } }" }))
        .send()
        .await
        .unwrap();
    let small = expect_json(small, StatusCode::OK).await;
    assert_eq!(small["data"]["accounts"]["nodes"], json!([]), "{small}");
    let malformed = daemon
        .client
        .post(format!("{}/graphql", daemon.base))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let malformed = expect_json(malformed, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        malformed["errors"][0]["extensions"]["code"], "invalid_request",
        "{malformed}"
    );
}

/// Announces a GraphQL body of `length` bytes without a token, expects the 413 before sending
/// any of it, then sends it all the same (the daemon may stop reading it and close).
async fn refuse_an_oversized_graphql_body(address: &str, length: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = async {
        let mut buffer = [0; 4096];
        while !String::from_utf8_lossy(&answer).contains("payload_too_large") {
            let n = socket.read(&mut buffer).await.unwrap();
            assert!(n > 0, "closed without an answer");
            answer.extend_from_slice(&buffer[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("answered before the body was sent");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let chunk = vec![b' '; 64 << 10];
    for _ in 0..length / chunk.len() {
        if socket.write_all(&chunk).await.is_err() {
            break;
        }
    }
    // Done with it once the daemon closes the connection: what it read is measured after.
    let _ = socket.shutdown().await;
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(30), socket.read_to_end(&mut rest));
    assert!(closed.await.is_ok(), "the daemon kept the connection open");
}

on_every_store!(a_store_with_sealed_values_and_no_key_file_refuses_to_start_and_makes_no_key);

/// A key file lost while the store holds values sealed under it is not replaced by a new key
/// that could not open them: start-up fails naming the file and the key the store needs, and
/// leaves no stray key behind that would fail every later start.
async fn a_store_with_sealed_values_and_no_key_file_refuses_to_start_and_makes_no_key(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let settings = app.settings.clone();
    let key_file = settings.key_file();
    let sealed = app
        .store
        .external_id()
        .await
        .unwrap()
        .expect("sealed at start");
    let needed = sealed.key_id().unwrap().to_owned();
    let _kept = app.stop().await;
    std::fs::remove_file(&key_file).unwrap();

    let error = match Application::build(settings).await {
        Ok(_) => panic!("the daemon started without the key its store needs"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains(&key_file.display().to_string()) && error.contains(&needed),
        "{error}"
    );
    assert!(!key_file.exists(), "no new key file was made");
}

/// Outside systemd the process umask would give the state directory and the SQLite files,
/// which hold token hashes and sealed credentials, 0755 and 0644: they are made private.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_directory_and_its_files_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let parent = TempDir::new().unwrap();
    let state = parent.path().join("state");
    let mut store = fresh_store(Backend::Sqlite, &parent).await.settings;
    // The default: SQLite in the state directory, which does not exist yet.
    store.url = String::new();
    let daemon = Daemon::start(&state, &store, "http://127.0.0.1:9").await;
    let mode = |name: &str| {
        let path = state.join(name);
        let metadata = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        metadata.permissions().mode() & 0o777
    };
    assert_eq!(mode(""), 0o700, "the state directory");
    for file in [
        "orgsync.db",
        "orgsync.db-wal",
        "orgsync.db-shm",
        "orgsync.key",
        "admin.token",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    drop(daemon);
}

/// Requests that hold role ARNs or session names print `[redacted]` instead, wherever a log
/// line or an error formats them with `{:?}`.
#[test]
fn requests_that_hold_credentials_print_redacted() {
    let arn = RoleArn::try_from("arn:aws:iam::111122223333:role/SecretOrgRole".to_owned()).unwrap();
    let session = SessionName::try_from("secret-session").unwrap();
    let duration = SessionDuration::try_from(3600_i64).unwrap();
    let credentials = Credentials {
        org_role: OrgRole {
            role_arn: arn.clone(),
            session_name: session.clone(),
            duration_seconds: duration,
        },
        member_role: MemberRole {
            role_name: "SecretMemberRole".try_into().unwrap(),
            session_name: session.clone(),
            duration_seconds: duration,
        },
    };
    let registration = Registration {
        nickname: "prod".into(),
        credentials: credentials.clone(),
        filters: Default::default(),
        events_queue: None,
    };
    let change = OrganizationChange {
        credentials: Some(credentials),
        ..Default::default()
    };
    let account_role = AccountRole {
        role_arn: arn.clone(),
        session_name: session.clone(),
        duration_seconds: duration,
    };
    let external_id = Secret::new("secret-external-id".to_owned());
    let assume = AssumeRole {
        role_arn: &arn,
        session_name: &session,
        duration,
        external_id: &external_id,
    };
    for printed in [
        format!("{registration:?}"),
        format!("{change:?}"),
        format!("{account_role:?}"),
        format!("{assume:?}"),
    ] {
        assert!(printed.contains("[redacted]"), "{printed}");
        assert!(!printed.contains("Secret"), "{printed}");
        assert!(!printed.contains("secret"), "{printed}");
    }
}

/// A listing at a past instant replays the log, so a query may hold only a few: 1,500
/// aliases of one, with a viewer's token, are refused before any of them runs. Four still
/// run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_of_fifteen_hundred_past_listings_is_refused_before_it_runs() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let viewer = app.token(orgsync::app::Role::Viewer).await;
    let aliases = |n: usize| {
        let fields: String = (0..n)
            .map(|i| format!("a{i}:accounts(asOf:$t,first:1){{__typename}}"))
            .collect();
        format!("query($t:DateTime){{{fields}}}")
    };
    let ask = |query: String| {
        let body = json!({ "query": query, "variables": { "t": "2026-01-01T00:00:00Z" } });
        let body = serde_json::to_vec(&body).unwrap();
        assert!(
            body.len() < app.settings.server.max_body_bytes,
            "within the body limit"
        );
        app.client
            .post(format!("{}/graphql", app.address))
            .bearer_auth(&viewer)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    let many = expect_json(ask(aliases(1500)).await.unwrap(), StatusCode::OK).await;
    assert!(many["data"].is_null(), "nothing ran: {many}");
    let message = many["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("too complex"), "{many}");

    let four = expect_json(ask(aliases(4)).await.unwrap(), StatusCode::OK).await;
    assert!(four.get("errors").is_none(), "{four}");
    assert_eq!(
        four["data"]["a3"]["__typename"], "AccountConnection",
        "{four}"
    );
}

on_every_store!(check_config_fails_where_serve_would_for_want_of_the_right_key);

/// Run as `ExecStartPre`, `check-config` fails where `serve` would for its key file: empty,
/// garbage, truncated, another installation's or gone while the store holds sealed values.
/// It changes nothing: a store never started is neither made nor migrated, and no key file
/// is made.
async fn check_config_fails_where_serve_would_for_want_of_the_right_key(backend: Backend) {
    let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();
    let dir = TempDir::new().unwrap();
    let (fresh, _events) = daemon_settings(backend, &dir).await;
    let never_started = orgsync_command(&fresh, "check-config").output().unwrap();
    assert!(never_started.status.success(), "{}", stderr(&never_started));
    assert!(stderr(&never_started).contains("absent; the first start makes it"));
    assert!(!fresh.key_file().exists(), "no key file was made");
    assert!(!dir.path().join("orgsync.db").exists(), "no store was made");

    let app = TestApp::spawn(backend).await;
    let settings = app.settings.clone();
    let key_file = settings.key_file();
    let _kept = app.stop().await;
    let check = || orgsync_command(&settings, "check-config").output().unwrap();
    let good = check();
    assert!(good.status.success(), "{}", stderr(&good));
    assert!(stderr(&good).contains("opens the store's sealed values"));
    assert_eq!(
        String::from_utf8_lossy(&good.stdout).trim(),
        "configuration is valid"
    );

    let key = std::fs::read(&key_file).unwrap();
    let other_dir = TempDir::new().unwrap();
    let other = other_dir.path().join("orgsync.key");
    orgsync::crypto::KeyRing::create(&other).unwrap();
    let other = std::fs::read(&other).unwrap();
    for (contents, named) in [
        (&b""[..], "expected one base64-encoded 64-byte key per line"),
        (
            b"not a key\n",
            "expected one base64-encoded 64-byte key per line",
        ),
        (
            &key[..key.len() / 2],
            "expected one base64-encoded 64-byte key per line",
        ),
        (&other[..], "which is not in the key file"),
    ] {
        std::fs::write(&key_file, contents).unwrap();
        let refused = check();
        assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
        assert!(stderr(&refused).contains(named), "{}", stderr(&refused));
        assert!(refused.stdout.is_empty());
    }
    std::fs::remove_file(&key_file).unwrap();
    let missing = check();
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains(&key_file.display().to_string()));
    assert!(!key_file.exists(), "no key file was made");
}

on_every_store!(a_client_that_stops_waiting_for_a_harvest_leaves_it_to_complete);

/// `?wait=true` waits for a harvest that runs on its own task: a client that gives up in the
/// middle of it leaves it to complete, rather than dropping it between two AWS calls.
async fn a_client_that_stops_waiting_for_a_harvest_leaves_it_to_complete(backend: Backend) {
    let shape = Shape {
        ous: NESTED,
        accounts: 8,
    };
    let (app, _org, org_id) = TestApp::harvested(backend, shape).await;
    let before = app
        .get_json(&format!("/api/v1/organizations/{org_id}"))
        .await;
    app.stub.latency(Duration::from_millis(100));
    let gave_up = app
        .client
        .post(format!(
            "{}/api/v1/organizations/{org_id}/harvest?wait=true",
            app.address
        ))
        .bearer_auth(&app.admin_token)
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(gave_up.is_err_and(|e| e.is_timeout()));
    let left = app
        .get_json(&format!("/api/v1/organizations/{org_id}"))
        .await;
    assert_eq!(left["last_harvest"]["outcome"], "running", "{left}");
    assert_ne!(
        left["last_harvest"]["started_at"],
        before["last_harvest"]["started_at"]
    );

    app.stub.latency(Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(60);
    let finished = loop {
        let org = app
            .get_json(&format!("/api/v1/organizations/{org_id}"))
            .await;
        if org["last_harvest"]["outcome"] != "running" {
            break org;
        }
        assert!(Instant::now() < deadline, "the harvest did not end: {org}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        finished["last_harvest"]["outcome"], "completed",
        "{finished}"
    );
    assert_eq!(
        finished["last_harvest"]["started_at"], left["last_harvest"]["started_at"],
        "the harvest the client left is the one that completed"
    );
}

on_every_store!(a_hung_aws_fails_the_harvest_at_its_deadline_and_frees_the_organization);

/// An AWS endpoint that stops answering fails a harvest at the harvest's deadline, or at one
/// call's, long before it would answer; the organization's lock is free again, so the next
/// harvest runs.
async fn a_hung_aws_fails_the_harvest_at_its_deadline_and_frees_the_organization(backend: Backend) {
    let secs = Duration::from_secs;
    let hang = secs(120);
    // harvest.deadline, aws.operation_timeout, and what the harvest's error then says.
    let deadlines = [
        (secs(10), secs(180), "deadline of 10 s (harvest.deadline)"),
        (secs(1800), secs(5), "timeout"),
    ];
    for (deadline, operation_timeout, says) in deadlines {
        let app = TestApp::spawn_tuned(backend, |s| {
            s.harvest.deadline = deadline;
            s.aws.operation_timeout = operation_timeout;
        })
        .await;
        let org = MotoOrg::create(Shape {
            ous: &[],
            accounts: 2,
        })
        .await;
        let org_id = app.register(&org).await;
        app.harvest(&org_id).await;
        app.stub.latency(hang);
        let started = Instant::now();
        let failed = app.harvest(&org_id).await;
        assert!(started.elapsed() < hang, "the harvest waited for AWS");
        assert_eq!(failed["last_harvest"]["outcome"], "failed", "{failed}");
        let error = failed["last_harvest"]["error"].as_str().unwrap_or_default();
        assert!(error.to_lowercase().contains(says), "{failed}");

        app.stub.latency(Duration::ZERO);
        let next = app.harvest(&org_id).await;
        assert_eq!(next["last_harvest"]["outcome"], "completed", "{next}");
    }
}

on_every_store!(a_history_comes_a_page_at_a_time_on_both_faces);

/// An account's history is paged like the change feed: REST pages of `limit` events joined by
/// `next_cursor` (null on the last) and GraphQL's `history(first:, after:)` give the whole of
/// it, each event once, in order; a page larger than 1000 is refused.
async fn a_history_comes_a_page_at_a_time_on_both_faces(backend: Backend) {
    let (app, org, _org_id) = TestApp::harvested(
        backend,
        Shape {
            ous: &[],
            accounts: 1,
        },
    )
    .await;
    let account = &org.members[0];
    for (key, value) in [("ticket", "a"), ("ticket", "b"), ("reviewer", "c")] {
        let added = app
            .post(
                &format!("/api/v1/accounts/{account}/badges"),
                &json!({ "key": key, "value": value }),
            )
            .await;
        assert!(added.status().is_success(), "{}", added.status());
    }
    let whole = app
        .get_json(&format!("/api/v1/accounts/{account}/events"))
        .await;
    let whole: Vec<i64> = whole["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert!(whole.len() >= 4, "{whole:?}");

    // Pages of 2, and pages that divide the history exactly: no empty page at its end.
    for limit in [2, whole.len()] {
        let mut rest = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let after = cursor
                .as_ref()
                .map_or(String::new(), |c| format!("&after={c}"));
            let page = app
                .get_json(&format!(
                    "/api/v1/accounts/{account}/events?limit={limit}{after}"
                ))
                .await;
            let events = page["events"].as_array().unwrap();
            assert!(!events.is_empty() && events.len() <= limit, "{page}");
            rest.extend(events.iter().map(|e| e["sequence"].as_i64().unwrap()));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(rest, whole);
    }

    let mut graphql = Vec::new();
    let mut after = serde_json::Value::Null;
    loop {
        let page = crate::graphql::data(
            &app,
            "query($id: ID!, $after: String) { account(id: $id) { history(first: 2, after: $after) \
             { nodes { sequence } pageInfo { hasNextPage endCursor } } } }",
            json!({ "id": account, "after": after }),
        )
        .await;
        let history = &page["account"]["history"];
        graphql.extend(
            history["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["sequence"].as_i64().unwrap()),
        );
        if history["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = history["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(graphql, whole);

    for limit in ["0", "1001", "ten"] {
        let refused = app
            .get(&format!("/api/v1/accounts/{account}/events?limit={limit}"))
            .await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "limit={limit}");
    }
    let refused = app
        .get(&format!("/api/v1/accounts/{account}/events?after=-1"))
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
}

on_every_store!(a_harvest_stores_and_shows_aws_errors_without_the_sealed_roles);

/// AWS quotes the caller's assumed-role ARN (the role's name and the session name, which R14
/// keeps sealed) in its refusals: what the harvest stores and the API shows of them names
/// the role instead.
async fn a_harvest_stores_and_shows_aws_errors_without_the_sealed_roles(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts: 2,
    })
    .await;
    let mut registration = org.registration("sealed");
    registration["org_role"]["session_name"] = json!("org-session-7f3a");
    registration["member_role"]["session_name"] = json!("member-session-9c1e");
    let created = app.post("/api/v1/organizations", &registration).await;
    let org_id = expect_json(created, StatusCode::CREATED).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.harvest(&org_id).await;
    let role_arn = org.org_role_arn();
    let role_name = role_arn.rsplit('/').next().unwrap().to_owned();
    let assumed = format!(
        "arn:aws:sts::{}:assumed-role/{role_name}/org-session-7f3a",
        org.management_account
    );
    app.stub.deny_organizations(Some(&format!(
        "User: {assumed} is not authorized to perform: organizations:ListRoots on resource: \
         {role_arn} with an explicit deny in a service control policy"
    )));
    let failed = app.harvest(&org_id).await;
    app.stub.deny_organizations(None);
    assert_eq!(failed["last_harvest"]["outcome"], "failed", "{failed}");
    let error = failed["last_harvest"]["error"].as_str().unwrap();
    assert!(error.contains("AccessDeniedException"), "{error}");
    assert!(error.contains("User: arn:aws:sts::"), "{error}");
    assert!(error.contains("the org role"), "{error}");
    let history = app
        .get("/api/v1/events?limit=1000")
        .await
        .text()
        .await
        .unwrap();
    assert!(history.contains("HarvestFailed"), "{history}");
    let shown = app
        .get(&format!("/api/v1/organizations/{org_id}"))
        .await
        .text()
        .await
        .unwrap();
    for text in [&shown, &history] {
        for secret in [
            role_name.as_str(),
            "org-session-7f3a",
            MEMBER_ROLE,
            "member-session-9c1e",
        ] {
            assert!(!text.contains(secret), "{secret} shown in {text}");
        }
    }
}

/// The connections the daemon has open to its test database now, as PostgreSQL counts them.
async fn connections_to(admin: &sqlx::PgPool, url: &str) -> i64 {
    let database = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1")
        .bind(database)
        .fetch_one(admin)
        .await
        .unwrap()
}

/// `store.max_connections` is the whole budget: pools, the change listener, the scheduler's
/// lock and every organization's harvest lock, however many harvests run at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_keeps_to_one_connection_budget_on_postgres() {
    let app = TestApp::spawn_tuned(Backend::Postgres, |settings| {
        settings.store.max_connections = 4;
    })
    .await;
    let admin = sqlx::PgPool::connect(&std::env::var("ORGSYNC_TEST_DATABASE_URL").unwrap())
        .await
        .unwrap();
    let mut orgs = Vec::new();
    for _ in 0..3 {
        let org = MotoOrg::create(Shape {
            ous: NESTED,
            accounts: 3,
        })
        .await;
        let org_id = app.register(&org).await;
        // The registration's harvest and any rerun end before the measured ones start.
        app.harvest(&org_id).await;
        orgs.push(org_id);
    }
    let started_at = |org: &serde_json::Value| org["last_harvest"]["started_at"].clone();
    let before: Vec<_> = app.get_json("/api/v1/organizations").await["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(started_at)
        .collect();
    app.stub.latency(Duration::from_millis(50));
    for org_id in &orgs {
        let started = app
            .post(
                &format!("/api/v1/organizations/{org_id}/harvest"),
                &json!(null),
            )
            .await;
        assert_eq!(started.status(), StatusCode::ACCEPTED);
    }
    let mut most = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        most = most.max(connections_to(&admin, &app.settings.store.url).await);
        let listed = app.get("/api/v1/accounts?limit=10").await;
        assert_eq!(listed.status(), StatusCode::OK);
        let unfinished = app.get_json("/api/v1/organizations").await["organizations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|org| {
                before.contains(&started_at(org)) || org["last_harvest"]["outcome"] == "running"
            })
            .count();
        if unfinished == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the harvests did not end");
    }
    app.stub.latency(Duration::ZERO);
    assert!(most <= 4, "{most} connections open, 4 allowed");
    for org_id in &orgs {
        let org = app
            .get_json(&format!("/api/v1/organizations/{org_id}"))
            .await;
        assert_eq!(org["last_harvest"]["outcome"], "completed", "{org}");
    }
    app.stop().await;
}

/// A statement that runs past `store.statement_timeout` is cancelled; waiting for the harvest
/// lock another instance holds is not a statement, and outlasts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_statements_time_out_but_waiting_for_a_lock_does_not() {
    let app = TestApp::spawn_tuned(Backend::Postgres, |settings| {
        settings.store.statement_timeout = Duration::from_secs(1);
    })
    .await;
    let started = Instant::now();
    let slow = sqlx::query("SELECT pg_sleep(5)")
        .execute(app.store.pool())
        .await;
    let error = slow
        .expect_err("a 5 s statement outlived a 1 s timeout")
        .to_string();
    assert!(error.contains("statement timeout"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(4));

    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts: 2,
    })
    .await;
    let org_id = app.register(&org).await;
    app.harvest(&org_id).await;
    let beside = app.spawn_beside().await;
    let id = orgsync::domain::OrgId::try_from(org_id.clone()).unwrap();
    let held = beside
        .store
        .lock_harvest(&id, false)
        .await
        .unwrap()
        .expect("the lock is free");
    let waiting = {
        let (client, url, token) = (
            app.client.clone(),
            format!(
                "{}/api/v1/organizations/{org_id}/harvest?wait=true",
                app.address
            ),
            app.admin_token.clone(),
        );
        tokio::spawn(async move { client.post(url).bearer_auth(token).send().await })
    };
    // Twice the statement timeout, while the harvest waits for the lock.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !waiting.is_finished(),
        "the harvest did not wait for the lock"
    );
    let released = chrono::Utc::now();
    drop(held);
    let answer = waiting.await.unwrap().unwrap();
    let harvested = expect_json(answer, StatusCode::OK).await;
    assert_eq!(
        harvested["last_harvest"]["outcome"], "completed",
        "{harvested}"
    );
    let started_at = chrono::DateTime::parse_from_rfc3339(
        harvested["last_harvest"]["started_at"].as_str().unwrap(),
    )
    .unwrap();
    assert!(
        started_at >= released,
        "{started_at} before the lock was released"
    );
    beside.stop().await;
    app.stop().await;
}

on_every_store!(a_thousand_badge_filters_and_a_nul_in_the_text_are_refused_on_both_faces);

/// The listing's filters are checked at the edge, alike on both faces: at most 20 badges
/// (each is one more join), and free text without control characters.
async fn a_thousand_badge_filters_and_a_nul_in_the_text_are_refused_on_both_faces(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let badges: Vec<String> = (0..1000).map(|i| format!("k{i}:v")).collect();
    let query: Vec<String> = badges.iter().map(|b| format!("badge={b}")).collect();
    let rest = app
        .get(&format!("/api/v1/accounts?{}", query.join("&")))
        .await;
    let refused = expect_json(rest, StatusCode::BAD_REQUEST).await;
    assert_eq!(refused["error"]["code"], "invalid_query", "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 20"),
        "{refused}"
    );
    let twenty = app
        .get(&format!("/api/v1/accounts?{}", query[..20].join("&")))
        .await;
    assert_eq!(twenty.status(), StatusCode::OK);
    let nul = app.get("/api/v1/accounts?q=%00").await;
    let refused = expect_json(nul, StatusCode::BAD_REQUEST).await;
    assert_eq!(refused["error"]["code"], "invalid_query", "{refused}");

    let face = &app;
    let graphql = move |query: &str, variables: serde_json::Value| {
        let body = json!({ "query": query, "variables": variables });
        async move {
            let answer = face.post("/graphql", &body).await;
            expect_json(answer, StatusCode::OK).await
        }
    };
    let listing = "query($b: [String!]! = [], $q: String) { accounts(badges: $b, q: $q) { nodes { accountId } } }";
    for variables in [json!({"b": badges}), json!({"q": "a\u{0}b"})] {
        let refused = graphql(listing, variables).await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "invalid_query",
            "{refused}"
        );
    }
    let fine = graphql(listing, json!({"b": &badges[..20], "q": "acme"})).await;
    assert!(fine.get("errors").is_none(), "{fine}");
    app.stop().await;
}
