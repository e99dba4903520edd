//! Registration validated as R3 orders it, each step failing and passing through the real SDK
//! clients, and R2 under a race.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{expect_error, expect_json, Backend, TestApp};
use crate::moto::{MotoOrg, Shape};
use crate::on_every_store;

on_every_store!(
    r3_each_validation_step_refuses_and_stores_nothing,
    r2_concurrent_registrations_give_one_created_and_one_conflict,
);

async fn r3_each_validation_step_refuses_and_stores_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create(Shape {
        ous: &[],
        accounts: 1,
    })
    .await;
    let body = org.registration("prod");
    let register = || app.post("/api/v1/organizations", &body);
    let external_id = app.get_json("/api/v1/external-id").await["external_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // AssumeRole: the trust policy wants another external ID (confused-deputy protection).
    app.stub
        .require_external_id(&org.org_role_arn(), "someone-elses-external-id");
    let body = expect_error(
        register().await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "assume_role_failed",
    )
    .await;
    assert_eq!(body["error"]["aws_error_code"], "AccessDenied");
    assert!(
        !body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&org.org_role_arn()),
        "the ARN stays sealed"
    );

    // SimulatePrincipalPolicy: the role may not list roots or read tags.
    app.stub
        .require_external_id(&org.org_role_arn(), &external_id);
    app.stub.deny_actions(
        &org.org_role_arn(),
        &[
            "organizations:ListRoots",
            "organizations:ListTagsForResource",
        ],
    );
    let body = expect_error(
        register().await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing_permissions",
    )
    .await;
    assert_eq!(
        body["error"]["denied_actions"],
        json!([
            "organizations:ListRoots",
            "organizations:ListTagsForResource"
        ])
    );
    assert_eq!(
        app.stub.simulated(),
        vec![org.org_role_arn()],
        "simulated with its own credentials on its own ARN"
    );

    // The simulator itself failing is a refusal too: nothing is stored unchecked.
    app.stub.deny_actions(&org.org_role_arn(), &[]);
    app.stub.break_simulator();
    expect_error(
        register().await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "simulation_failed",
    )
    .await;
    assert_eq!(app.event_count().await, 0);
    app.stop().await;

    // Every step passing, with the right external ID required: registered.
    let app = TestApp::spawn(backend).await;
    let external_id = app.get_json("/api/v1/external-id").await["external_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.stub
        .require_external_id(&org.org_role_arn(), &external_id);
    let created = expect_json(
        app.post("/api/v1/organizations", &org.registration("prod"))
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(created["id"], org.id);
    app.stop().await;
}

async fn r2_concurrent_registrations_give_one_created_and_one_conflict(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create(Shape {
        ous: &[],
        accounts: 1,
    })
    .await;
    let body = org.registration("prod");
    // Both pass the AWS checks at once, then race to append the registration.
    let (a, b) = tokio::join!(
        app.post("/api/v1/organizations", &body),
        app.post("/api/v1/organizations", &body)
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT]);
    let registered = app.get_json("/api/v1/organizations").await;
    assert_eq!(registered["organizations"].as_array().unwrap().len(), 1);
    app.stop().await;
}
