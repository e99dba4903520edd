use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{expect_error, Backend, TestApp};
use crate::on_every_store;

on_every_store!(bad_input_is_a_4xx_with_an_error_envelope);

fn registration() -> Value {
    json!({
        "nickname": "prod",
        "org_role": {"role_arn": "arn:aws:iam::111122223333:role/OrgSync-Org-Role", "session_name": "orgsync", "duration_seconds": 3600},
        "member_role": {"role_name": "OrgSync-Member-Role", "session_name": "orgsync", "duration_seconds": 3600}
    })
}

fn with(pointer: &str, value: Value) -> Value {
    let mut body = registration();
    *body.pointer_mut(pointer).expect("field exists") = value;
    body
}

async fn bad_input_is_a_4xx_with_an_error_envelope(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let post_raw = |body: &'static str| {
        app.client
            .post(format!("{}/api/v1/organizations", app.address))
            .bearer_auth(&app.admin_token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };

    let malformed = post_raw("{\"nickname\": ").await.unwrap();
    expect_error(malformed, StatusCode::BAD_REQUEST, "invalid_json").await;

    let wrong_type = app
        .post(
            "/api/v1/organizations",
            &with("/org_role/duration_seconds", json!("an hour")),
        )
        .await;
    expect_error(wrong_type, StatusCode::BAD_REQUEST, "invalid_field").await;

    let unknown_field = app
        .post(
            "/api/v1/organizations",
            &with("/nickname", json!("x"))
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("surprise".into(), json!(true));
                    Value::Object(o)
                })
                .unwrap(),
        )
        .await;
    expect_error(unknown_field, StatusCode::BAD_REQUEST, "invalid_field").await;

    for arn in [
        "not-an-arn",
        "arn:aws:iam::111122223333:user/bob",
        "arn:aws-iso:iam::111122223333:role/r",
        "arn:aws:iam::1234:role/r",
    ] {
        let response = app
            .post(
                "/api/v1/organizations",
                &with("/org_role/role_arn", json!(arn)),
            )
            .await;
        let body = expect_error(response, StatusCode::BAD_REQUEST, "invalid_field").await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("role_arn"),
            "{body}"
        );
    }
    for duration in [899, 43201, -1] {
        let response = app
            .post(
                "/api/v1/organizations",
                &with("/member_role/duration_seconds", json!(duration)),
            )
            .await;
        let body = expect_error(response, StatusCode::BAD_REQUEST, "invalid_field").await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("duration_seconds"),
            "{body}"
        );
    }
    let session = app
        .post(
            "/api/v1/organizations",
            &with("/org_role/session_name", json!("has space")),
        )
        .await;
    expect_error(session, StatusCode::BAD_REQUEST, "invalid_field").await;
    let ou = app
        .post("/api/v1/organizations", &{
            let mut body = registration();
            body["filters"] = json!({"limit_scope_ou_ids": ["ou-nope"]});
            body
        })
        .await;
    expect_error(ou, StatusCode::BAD_REQUEST, "invalid_field").await;
    let blank = app
        .post("/api/v1/organizations", &with("/nickname", json!("   ")))
        .await;
    expect_error(blank, StatusCode::BAD_REQUEST, "invalid_field").await;

    let huge = format!(
        "{{\"nickname\": \"{}\"}}",
        "x".repeat(app.settings.server.max_body_bytes + 1)
    );
    let oversized = app
        .client
        .post(format!("{}/api/v1/organizations", app.address))
        .bearer_auth(&app.admin_token)
        .header("Content-Type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    expect_error(
        oversized,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;

    let unknown_org = app.get("/api/v1/organizations/o-aaaaaaaaaa").await;
    expect_error(unknown_org, StatusCode::NOT_FOUND, "not_found").await;
    let malformed_org = app.get("/api/v1/organizations/not-an-org").await;
    expect_error(malformed_org, StatusCode::BAD_REQUEST, "invalid_field").await;
    let unknown_harvest = app
        .post("/api/v1/organizations/o-aaaaaaaaaa/harvest", &Value::Null)
        .await;
    expect_error(unknown_harvest, StatusCode::NOT_FOUND, "not_found").await;
    let unknown_account = app.get("/api/v1/accounts/123456789012").await;
    expect_error(unknown_account, StatusCode::NOT_FOUND, "not_found").await;
    let unknown_history = app.get("/api/v1/accounts/123456789012/events").await;
    expect_error(unknown_history, StatusCode::NOT_FOUND, "not_found").await;
    let malformed_account = app.get("/api/v1/accounts/12").await;
    expect_error(malformed_account, StatusCode::BAD_REQUEST, "invalid_field").await;
    let unknown_route = app.get("/api/v1/nothing-here").await;
    expect_error(unknown_route, StatusCode::NOT_FOUND, "not_found").await;

    for query in [
        "limit=0",
        "limit=100000",
        "limit=ten",
        "state=SLEEPING",
        "organization=x",
        "cursor=%%%",
        "colour=red",
    ] {
        let response = app.get(&format!("/api/v1/accounts?{query}")).await;
        expect_error(response, StatusCode::BAD_REQUEST, "invalid_query").await;
    }
    assert_eq!(app.event_count().await, 0, "no bad request stored anything");
    app.stop().await;
}
