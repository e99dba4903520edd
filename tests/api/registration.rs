use orgsync::app::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{expect_error, expect_json, Backend, TestApp};
use crate::moto::{MotoOrg, Shape, NESTED};
use crate::on_every_store;

on_every_store!(
    registration_answers_the_organization_and_harvests_it,
    r2_second_registration_is_a_conflict,
    registration_of_an_account_without_organization_stores_nothing,
    r1_external_id_is_for_admins_and_outlives_restarts,
    tokens_gate_every_route,
    r17_a_delegated_administrator_registers_once_the_delegation_policy_allows_it,
    an_organization_in_govcloud_is_read_through_govcloud,
    an_organization_in_china_is_read_through_china,
);

async fn registration_answers_the_organization_and_harvests_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts: 5,
    })
    .await;

    let response = app
        .post("/api/v1/organizations", &org.registration("prod"))
        .await;
    let body = expect_json(response, StatusCode::CREATED).await;
    assert_eq!(body["id"], org.id);
    assert_eq!(body["nickname"], "prod");
    assert_eq!(body["management_account_id"], org.management_account);
    assert_eq!(body["org_role_account"], "management");
    assert_eq!(body["filters"]["auto_badge"], true);

    let harvested = app.harvest(&org.id).await;
    assert_eq!(harvested["last_harvest"]["outcome"], "completed");
    assert_eq!(
        harvested["account_count"], 6,
        "5 members and the management account"
    );
    assert_eq!(harvested["last_harvest"]["accounts_seen"], 6);

    let list = app.get_json("/api/v1/organizations").await;
    assert_eq!(list["organizations"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["organizations"][0]["id"], org.id);
    app.stop().await;
}

async fn r2_second_registration_is_a_conflict(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create(Shape {
        ous: &[],
        accounts: 1,
    })
    .await;
    app.register(&org).await;
    let events = app.event_count().await;
    let again = app
        .post("/api/v1/organizations", &org.registration("again"))
        .await;
    expect_error(again, StatusCode::CONFLICT, "already_registered").await;
    let stored = app
        .get_json(&format!("/api/v1/organizations/{}", org.id))
        .await;
    assert_eq!(stored["nickname"], "prod");
    assert!(app.event_count().await >= events, "nothing was removed");
    app.stop().await;
}

async fn registration_of_an_account_without_organization_stores_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({
        "nickname": "nothing",
        "org_role": {"role_arn": "arn:aws:iam::210987654321:role/OrgSync-Org-Role", "session_name": "orgsync", "duration_seconds": 3600},
        "member_role": {"role_name": "OrgSync-Member-Role", "session_name": "orgsync", "duration_seconds": 3600}
    });
    let response = app.post("/api/v1/organizations", &body).await;
    let error = expect_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "describe_organization_failed",
    )
    .await;
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("organizations:DescribeOrganization"),
        "{message}"
    );
    assert!(
        message.contains("AWSOrganizationsNotInUseException"),
        "{message}"
    );
    assert_eq!(app.event_count().await, 0);
    assert_eq!(
        app.get_json("/api/v1/organizations").await["organizations"],
        json!([])
    );
    app.stop().await;
}

async fn r1_external_id_is_for_admins_and_outlives_restarts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = app.get_json("/api/v1/external-id").await;
    let external_id = body["external_id"].as_str().unwrap().to_owned();
    assert!(external_id.len() >= 32, "{external_id}");
    assert!(external_id.chars().all(|c| c.is_ascii_alphanumeric()));

    let viewer = app.token(Role::Viewer).await;
    let response = app.get_as("/api/v1/external-id", &viewer).await;
    expect_error(response, StatusCode::FORBIDDEN, "forbidden").await;

    let app = app.restart().await;
    assert_eq!(
        app.get_json("/api/v1/external-id").await["external_id"],
        external_id
    );
    app.stop().await;
}

async fn tokens_gate_every_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create(Shape {
        ous: &[],
        accounts: 1,
    })
    .await;

    let anonymous = app
        .client
        .get(format!("{}/api/v1/accounts", app.address))
        .send()
        .await
        .unwrap();
    expect_error(anonymous, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let wrong = app.get_as("/api/v1/accounts", "osk_not-a-token").await;
    expect_error(wrong, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // Authentication comes before the body is read: a stranger learns nothing from it.
    let unauthenticated_junk = app
        .post_as("/api/v1/organizations", &json!({"junk": 1}), "nope")
        .await;
    expect_error(
        unauthenticated_junk,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;

    let viewer = app.token(Role::Viewer).await;
    let read = app.get_as("/api/v1/organizations", &viewer).await;
    expect_json(read, StatusCode::OK).await;
    let write = app
        .post_as("/api/v1/organizations", &org.registration("v"), &viewer)
        .await;
    expect_error(write, StatusCode::FORBIDDEN, "forbidden").await;
    let harvest = app
        .post_as(
            &format!("/api/v1/organizations/{}/harvest", org.id),
            &json!(null),
            &viewer,
        )
        .await;
    expect_error(harvest, StatusCode::FORBIDDEN, "forbidden").await;

    use std::os::unix::fs::PermissionsExt;
    let token_file = std::fs::metadata(app.state_dir().join("admin.token")).unwrap();
    assert_eq!(token_file.permissions().mode() & 0o777, 0o600);

    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    app.stop().await;
}

/// R17: an org role in a member account registers as a delegated administrator's once the
/// organization's delegation policy lets that account read the organization, which it then
/// lists whole, the management account included; without the policy it is refused, saying so.
async fn r17_a_delegated_administrator_registers_once_the_delegation_policy_allows_it(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts: 4,
    })
    .await;
    let delegate = org.members[0].clone();
    let mut registration = org.registration("prod");
    registration["org_role"]["role_arn"] =
        json!(format!("arn:aws:iam::{delegate}:role/OrgSync-Org-Role"));

    let refused = app.post("/api/v1/organizations", &registration).await;
    let refused = expect_error(
        refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not_delegated_administrator",
    )
    .await;
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("delegation policy") && message.contains(&delegate),
        "{message}"
    );
    assert_eq!(refused["error"]["aws_error_code"], "AccessDeniedException");
    let none = app.get_json("/api/v1/organizations").await;
    assert_eq!(none["organizations"], json!([]), "nothing is stored");

    app.stub.delegate(&delegate, org.management_credentials());
    let registered = app.post("/api/v1/organizations", &registration).await;
    let registered = expect_json(registered, StatusCode::CREATED).await;
    assert_eq!(registered["id"], org.id);
    assert_eq!(registered["management_account_id"], org.management_account);
    assert_eq!(registered["org_role_account"], "delegated_administrator");

    let harvested = app.harvest(&org.id).await;
    assert_eq!(
        harvested["last_harvest"]["outcome"], "completed",
        "{harvested}"
    );
    let listed: Vec<String> = app.listing(&org.id).await.into_keys().collect();
    let truth: Vec<String> = org.truth().await.into_keys().collect();
    assert_eq!(listed, truth);
    assert!(
        listed.contains(&org.management_account),
        "the management account is listed"
    );
    app.stop().await;
}

async fn an_organization_in_govcloud_is_read_through_govcloud(backend: Backend) {
    registered_in_its_partition(backend, "aws-us-gov", "us-gov-west-1").await
}

async fn an_organization_in_china_is_read_through_china(backend: Backend) {
    registered_in_its_partition(backend, "aws-cn", "cn-north-1").await
}

/// An org role in `partition` is assumed from that partition's STS (`region`), its
/// organization read there (moto keeps each partition's organizations apart, as AWS does),
/// and the member roles orgsync assumes are in that partition too; the templates name no
/// partition but their own (`${AWS::Partition}`).
async fn registered_in_its_partition(backend: Backend, partition: &'static str, region: &str) {
    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create_in(
        partition,
        Shape {
            ous: NESTED,
            accounts: 3,
        },
    )
    .await;
    assert!(org.org_role_arn().starts_with(&format!("arn:{partition}:")));
    let org_id = app.register(&org).await;
    let harvested = app.harvest(&org_id).await;
    assert_eq!(
        harvested["last_harvest"]["outcome"], "completed",
        "{harvested}"
    );
    let listed: Vec<String> = app.listing(&org_id).await.into_keys().collect();
    let truth: Vec<String> = org.truth().await.into_keys().collect();
    assert_eq!(listed, truth);

    let assumed = app.stub.assumed_in();
    for member in &org.members {
        let arn = format!(
            "arn:{partition}:iam::{member}:role/{}",
            crate::moto::MEMBER_ROLE
        );
        assert!(
            assumed.iter().any(|(role, _)| *role == arn),
            "{arn} in {assumed:?}"
        );
    }
    for (role, signed) in &assumed {
        assert!(role.starts_with(&format!("arn:{partition}:")), "{role}");
        assert_eq!(signed, region, "{role} was asked of {signed}'s STS");
    }
    for name in ["org-role.yaml", "member-role.yaml"] {
        let template = app.get(&format!("/api/v1/templates/{name}")).await;
        let template = template.text().await.unwrap();
        assert!(!template.contains("arn:aws:"), "{name} names a partition");
        assert!(template.contains("${AWS::Partition}"), "{name}");
    }
    app.stop().await;
}
