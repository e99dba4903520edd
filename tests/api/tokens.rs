//! Token lifecycle: listed without secrets, revoked and expired tokens refused at once, by
//! every instance sharing the store, and the first admin token's file retired.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{expect_error, expect_json, orgsync_command, Backend, TestApp};
use crate::on_every_store;

/// Polls `refused` until it holds, for at most `limit`; answers how long it took.
async fn refused_within(limit: Duration, mut refused: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if refused().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "still accepted after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn status_as(app: &TestApp, token: &str) -> StatusCode {
    app.get_as("/api/v1/organizations", token).await.status()
}

fn listed<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed in {list}"))
}

on_every_store!(a_revoked_token_is_refused_at_once_here_and_within_a_second_beside);

async fn a_revoked_token_is_refused_at_once_here_and_within_a_second_beside(backend: Backend) {
    let here = TestApp::spawn(backend).await;
    let beside = here.spawn_beside().await;
    let made = expect_json(
        here.post(
            "/api/v1/tokens",
            &json!({"name": "ci-reader", "role": "viewer", "expires_in_seconds": 3600}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let secret = made["token"].as_str().expect("token").to_owned();
    assert_eq!(made["info"]["role"], "viewer");
    assert_eq!(status_as(&here, &secret).await, StatusCode::OK);
    assert_eq!(status_as(&beside, &secret).await, StatusCode::OK);

    let response = here.get("/api/v1/tokens").await;
    let text = response.text().await.expect("body");
    assert!(!text.contains(&secret), "a secret is listed: {text}");
    let list: Value = serde_json::from_str(&text).expect("JSON");
    let reader = listed(&list, "ci-reader");
    assert_eq!(reader["valid"], true);
    assert!(reader["last_used_at"].is_string(), "{reader}");
    let at = |field: &str| {
        DateTime::parse_from_rfc3339(reader[field].as_str().expect(field))
            .expect("timestamp")
            .with_timezone(&Utc)
    };
    assert_eq!((at("expires_at") - at("created_at")).num_seconds(), 3600);
    // A viewer lists no tokens.
    expect_error(
        here.get_as("/api/v1/tokens", &secret).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    assert_eq!(
        here.delete("/api/v1/tokens/ci-reader").await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(status_as(&here, &secret).await, StatusCode::UNAUTHORIZED);
    refused_within(Duration::from_secs(1), async || {
        status_as(&beside, &secret).await == StatusCode::UNAUTHORIZED
    })
    .await;

    // Revoked for good: listed as such, its name never given again.
    let list = here.get_json("/api/v1/tokens").await;
    assert_eq!(listed(&list, "ci-reader")["valid"], false);
    assert!(listed(&list, "ci-reader")["revoked_at"].is_string());
    assert_eq!(
        here.delete("/api/v1/tokens/ci-reader").await.status(),
        StatusCode::NO_CONTENT
    );
    expect_error(
        here.post(
            "/api/v1/tokens",
            &json!({"name": "ci-reader", "role": "viewer"}),
        )
        .await,
        StatusCode::CONFLICT,
        "token_name_taken",
    )
    .await;
    expect_error(
        here.delete("/api/v1/tokens/nobody").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    for expires in [json!(0), json!(-5), json!(400_000_000)] {
        expect_error(
            here.post(
                "/api/v1/tokens",
                &json!({"name": "short", "role": "viewer", "expires_in_seconds": expires}),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_field",
        )
        .await;
    }
    beside.stop().await;
    here.stop().await;
}

on_every_store!(an_expired_token_is_refused_from_the_instant_it_expires);

async fn an_expired_token_is_refused_from_the_instant_it_expires(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let made = expect_json(
        app.post(
            "/api/v1/tokens",
            &json!({"name": "brief", "role": "viewer", "expires_in_seconds": 2}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let secret = made["token"].as_str().expect("token").to_owned();
    let expires_at =
        DateTime::parse_from_rfc3339(made["info"]["expires_at"].as_str().expect("expiry"))
            .expect("timestamp")
            .with_timezone(&Utc);
    assert_eq!(status_as(&app, &secret).await, StatusCode::OK);
    refused_within(Duration::from_secs(4), async || {
        let sent = Utc::now();
        let status = status_as(&app, &secret).await;
        if status == StatusCode::OK {
            assert!(
                sent < expires_at,
                "accepted when sent at {sent}, after {expires_at}"
            );
        }
        status == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(Utc::now() >= expires_at);
    app.stop().await;
}

on_every_store!(tokens_are_managed_from_the_command_line_and_over_graphql);

async fn tokens_are_managed_from_the_command_line_and_over_graphql(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let file = app.state_dir().join("admin.token");
    let initial = listed(&app.get_json("/api/v1/tokens").await, "initial-admin").clone();
    let lifetime = |token: &Value| {
        let at = |field: &str| {
            DateTime::parse_from_rfc3339(token[field].as_str().expect(field)).expect("timestamp")
        };
        (at("expires_at") - at("created_at")).num_seconds()
    };
    assert_eq!(lifetime(&initial), 24 * 3600, "{initial}");

    // A viewer made over GraphQL leaves the first admin token's file alone.
    let graphql = |token: String, query: String| {
        let app = &app;
        async move {
            app.post_as("/graphql", &json!({ "query": query }), &token)
                .await
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };
    let made = graphql(
        app.admin_token.clone(),
        r#"mutation { createToken(name: "dash", role: VIEWER) { token info { name role expiresAt valid } } }"#.into(),
    )
    .await;
    let dash = made["data"]["createToken"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(
        made["data"]["createToken"]["info"]["role"], "VIEWER",
        "{made}"
    );
    assert!(made["data"]["createToken"]["info"]["expiresAt"].is_null());
    assert!(file.exists());
    let denied = graphql(dash.clone(), "{ tokens { name } }".into()).await;
    assert_eq!(
        denied["errors"][0]["extensions"]["code"], "forbidden",
        "{denied}"
    );

    // An admin made on the command line retires the file.
    let out = orgsync_command(&app.settings, "token")
        .args([
            "create",
            "--role",
            "admin",
            "--name",
            "ops",
            "--expires-in",
            "90d",
        ])
        .output()
        .expect("orgsync token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ops = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned();
    assert!(
        !file.exists(),
        "the first admin token's file outlived another admin token"
    );
    assert_eq!(status_as(&app, &ops).await, StatusCode::OK);

    let out = orgsync_command(&app.settings, "token")
        .arg("list")
        .output()
        .expect("orgsync token list");
    assert!(out.status.success());
    let list = String::from_utf8(out.stdout).expect("UTF-8");
    let row = |name: &str| {
        list.lines()
            .find(|line| line.starts_with(&format!("{name}\t")))
            .unwrap_or_else(|| panic!("{name} not in {list}"))
            .split('\t')
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("ops")[1], "admin");
    assert_ne!(row("ops")[4], "-", "no expiry listed");
    assert_ne!(row("ops")[3], "-", "no last use listed");
    assert_eq!(row("dash")[4], "-");
    assert!(!list.contains(&ops) && !list.contains(&dash));

    // Revoked on the command line, refused by the daemon within a second.
    let out = orgsync_command(&app.settings, "token")
        .args(["revoke", "dash"])
        .output()
        .expect("orgsync token revoke");
    assert!(out.status.success());
    refused_within(Duration::from_secs(1), async || {
        status_as(&app, &dash).await == StatusCode::UNAUTHORIZED
    })
    .await;
    let revoked = graphql(
        ops.clone(),
        r#"mutation { revokeToken(name: "ops") }"#.into(),
    )
    .await;
    assert_eq!(revoked["data"]["revokeToken"], true, "{revoked}");
    assert_eq!(status_as(&app, &ops).await, StatusCode::UNAUTHORIZED);
    let tokens = graphql(
        app.admin_token.clone(),
        "{ tokens { name valid revokedAt } }".into(),
    )
    .await;
    let names: Vec<(&str, bool)> = tokens["data"]["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or_default(),
                t["valid"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [("dash", false), ("initial-admin", true), ("ops", false)]
    );
    app.stop().await;
}
