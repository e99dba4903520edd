//! The machine-facing interfaces: the change feed never skips or repeats an event, with
//! writers racing the reader (I5); the role templates come out as CloudFormation that cfn-lint
//! accepts (run by scripts/test); the OpenAPI document and Swagger UI are served; listings
//! go gzip-encoded to the clients that accept it.

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{expect_error, Backend, TestApp};
use crate::moto::Shape;
use crate::on_every_store;

on_every_store!(
    i5_feed_sees_every_event_once_in_order_with_concurrent_writers,
    role_templates_carry_the_external_id_and_the_harvest_actions,
    openapi_document_and_swagger_ui_are_served_without_a_token,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_go_gzip_encoded_to_the_clients_that_accept_it() {
    let (app, _, _) = TestApp::harvested(
        Backend::Sqlite,
        Shape {
            ous: &[],
            accounts: 3,
        },
    )
    .await;
    let token = app.token(orgsync::app::Role::Viewer).await;
    let query =
        json!({ "query": "{ accounts(first: 10) { nodes { accountId orgPath { id } } } }" });
    // Twice each: the answer as made, then as kept.
    for _ in 0..2 {
        for graphql in [false, true] {
            let send = |gzip: bool| {
                let request = if graphql {
                    app.client
                        .post(format!("{}/graphql", app.address))
                        .json(&query)
                } else {
                    app.client
                        .get(format!("{}/api/v1/accounts?limit=10", app.address))
                };
                let request = request.bearer_auth(&token);
                let request = if gzip {
                    request.header("Accept-Encoding", "gzip")
                } else {
                    request
                };
                async move {
                    let response = request.send().await.unwrap();
                    assert_eq!(response.status(), StatusCode::OK);
                    assert_eq!(response.headers()["vary"], "accept-encoding");
                    let encoding = response.headers().get("content-encoding").cloned();
                    (encoding, response.bytes().await.unwrap())
                }
            };
            let (encoding, plain) = send(false).await;
            assert_eq!(encoding, None, "graphql: {graphql}");
            let (encoding, compressed) = send(true).await;
            assert_eq!(encoding.unwrap(), "gzip", "graphql: {graphql}");
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(&compressed[..])
                .read_to_end(&mut decoded)
                .unwrap();
            assert_eq!(decoded, plain, "graphql: {graphql}");
            let listed: Value = serde_json::from_slice(&plain).unwrap();
            let accounts = if graphql {
                &listed["data"]["accounts"]["nodes"]
            } else {
                &listed["accounts"]
            };
            // The three members and the management account.
            assert_eq!(accounts.as_array().unwrap().len(), 4, "{listed}");
        }
    }
    app.stop().await;
}

async fn openapi_document_and_swagger_ui_are_served_without_a_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let served: Value = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let checked_in: Value =
        serde_json::from_str(include_str!("../../schema/openapi.json")).unwrap();
    assert_eq!(served, checked_in);
    let ui = app
        .client
        .get(format!("{}/api/v1/docs/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), StatusCode::OK);
    assert!(ui.text().await.unwrap().contains("swagger-ui"));
    app.stop().await;
}

async fn i5_feed_sees_every_event_once_in_order_with_concurrent_writers(backend: Backend) {
    let (app, org, _) = TestApp::harvested(
        backend,
        Shape {
            ous: &[],
            accounts: 4,
        },
    )
    .await;

    // Four writers flip manual badges on four accounts while a reader follows the feed.
    let written = AtomicBool::new(false);
    let writers = async {
        futures::future::join_all(org.members.iter().map(|account| {
            let app = &app;
            async move {
                for i in 0..15 {
                    let path = format!("/api/v1/accounts/{account}/badges");
                    let body = json!({"key": "round", "value": i.to_string()});
                    assert_eq!(app.post(&path, &body).await.status(), StatusCode::OK);
                }
            }
        }))
        .await;
        written.store(true, Ordering::SeqCst);
    };
    let reader = async {
        let mut cursor = "0".to_owned();
        let mut seen: Vec<i64> = Vec::new();
        loop {
            // Read the flag first: an empty page after every write was acknowledged means
            // the feed is drained.
            let done = written.load(Ordering::SeqCst);
            let page = app
                .get_json(&format!("/api/v1/events?after={cursor}&limit=7"))
                .await;
            let events = page["events"].as_array().unwrap();
            seen.extend(events.iter().map(|e| e["sequence"].as_i64().unwrap()));
            cursor = page["next_cursor"].as_str().unwrap().to_owned();
            if events.is_empty() {
                if done {
                    return seen;
                }
                tokio::task::yield_now().await;
            }
        }
    };
    let ((), seen) = tokio::join!(writers, reader);
    assert!(
        seen.len() >= 60,
        "the badges written and the harvest's events"
    );

    let mut sorted = seen.clone();
    sorted.sort_unstable();
    assert_eq!(seen, sorted, "in order");
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no event twice");
    let stored: BTreeSet<i64> = app
        .store
        .events_after(0, i64::MAX)
        .await
        .unwrap()
        .iter()
        .map(|event| event.seq)
        .collect();
    assert_eq!(unique, stored, "none skipped");

    let bad = app.get("/api/v1/events?after=-1").await;
    expect_error(bad, StatusCode::BAD_REQUEST, "invalid_query").await;
    let first: Value = app.get_json("/api/v1/events?limit=1").await;
    assert!(
        first["events"][0]["data"].get("credentials").is_none(),
        "sealed fields are left out"
    );
    app.stop().await;
}

async fn role_templates_carry_the_external_id_and_the_harvest_actions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let external_id = app.get_json("/api/v1/external-id").await["external_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cfn");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["org-role.yaml", "member-role.yaml"] {
        let response = app.get(&format!("/api/v1/templates/{name}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        let yaml = response.text().await.unwrap();
        assert!(
            yaml.contains(&format!("Default: \"{external_id}\"")),
            "{yaml}"
        );
        assert!(yaml.contains("sts:ExternalId: !Ref ExternalId"));
        // scripts/test runs cfn-lint on these after the suite.
        let file =
            format!("{}-{:?}.yaml", name.trim_end_matches(".yaml"), app.backend).to_lowercase();
        std::fs::write(dir.join(file), yaml).unwrap();
    }
    let viewer = app.token(orgsync::app::Role::Viewer).await;
    let forbidden = app.get_as("/api/v1/templates/org-role.yaml", &viewer).await;
    expect_error(forbidden, StatusCode::FORBIDDEN, "forbidden").await;
    let unknown = app.get("/api/v1/templates/admin-role.yaml").await;
    expect_error(unknown, StatusCode::NOT_FOUND, "not_found").await;
    app.stop().await;
}
