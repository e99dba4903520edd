//! The daemon as operators run it: the real binary, its configuration check, and a SIGTERM
//! in the middle of a harvest.

use std::time::{Duration, Instant};

use orgsync::store::Store;
use reqwest::StatusCode;
use sqlx::Row;

use crate::aws_stub::AwsStub;
use crate::helpers::{expect_json, Backend, TestApp};
use crate::moto::{moto_url, MotoOrg, Shape, NESTED};
use crate::on_both_stores;

const BINARY: &str = env!("CARGO_BIN_EXE_orgsync");

#[test]
fn check_config_rejects_a_broken_config_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orgsync.toml");
    let check = |toml: &str| {
        std::fs::write(&file, toml).unwrap();
        std::process::Command::new(BINARY)
            .args(["--config", file.to_str().unwrap(), "check-config"])
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut daemon = tokio::process::Command::new(BINARY)
        .arg("serve")
        .env("ORGSYNC__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("ORGSYNC__STATE__DIR", dir.path())
        .env("ORGSYNC__AWS__ENDPOINT_URL", &stub.url)
        .env("ORGSYNC__LOG__LEVEL", "warn")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/readyz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the daemon did not come up");
        tokio::task::yield_now().await;
    }
    let token = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();
    let registered = client
        .post(format!("{base}/api/v1/organizations"))
        .bearer_auth(token.trim())
        .json(&org.registration("prod"))
        .send()
        .await
        .unwrap();
    expect_json(registered, StatusCode::CREATED).await;

    // The harvest registration started is running: stop the daemon as systemd would.
    let started = Instant::now();
    let pid = daemon.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(10), daemon.wait())
        .await
        .expect("exits within 10 s")
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // All of the organization's accounts or none: never part of them.
    let url = format!("sqlite://{}", dir.path().join("orgsync.db").display());
    let store = Store::connect(&url, 2).await.unwrap();
    store.migrate().await.unwrap();
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

on_both_stores!(metrics_expose_harvests_aws_calls_appends_http_and_accounts_by_state);

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
