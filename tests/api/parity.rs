//! GraphQL and REST offer the same operations, with the same checks, roles and error codes:
//! the table below pairs each REST operation with its GraphQL field, a test fails when the
//! REST API gains an operation the table lacks, and each bad input is sent to both faces,
//! which must refuse it with the same code.

use std::collections::BTreeSet;

use orgsync::app::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};
use crate::moto::{Shape, NESTED};
use crate::on_every_store;

/// Each REST operation (method and path as the OpenAPI document names them) and the GraphQL
/// field that does the same. Health probes are for load balancers, not for frontends.
const OPERATIONS: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/external-id", "Query.externalId"),
    ("GET", "/api/v1/templates/{name}", "Query.roleTemplate"),
    ("GET", "/api/v1/organizations", "Query.organizations"),
    (
        "POST",
        "/api/v1/organizations",
        "Mutation.registerOrganization",
    ),
    ("GET", "/api/v1/organizations/{id}", "Query.organization"),
    (
        "PATCH",
        "/api/v1/organizations/{id}",
        "Mutation.updateOrganization",
    ),
    (
        "DELETE",
        "/api/v1/organizations/{id}",
        "Mutation.removeOrganization",
    ),
    (
        "POST",
        "/api/v1/organizations/{id}/harvest",
        "Mutation.startHarvest",
    ),
    ("GET", "/api/v1/accounts", "Query.accounts"),
    ("POST", "/api/v1/accounts", "Mutation.addAccount"),
    ("GET", "/api/v1/accounts/{id}", "Query.account"),
    (
        "PATCH",
        "/api/v1/accounts/{id}",
        "Mutation.replaceAccountRole",
    ),
    ("DELETE", "/api/v1/accounts/{id}", "Mutation.deleteAccount"),
    ("POST", "/api/v1/accounts/{id}/badges", "Mutation.addBadge"),
    (
        "DELETE",
        "/api/v1/accounts/{id}/badges/{key}",
        "Mutation.removeBadge",
    ),
    ("GET", "/api/v1/accounts/{id}/events", "Account.history"),
    ("GET", "/api/v1/events", "Query.events"),
    ("GET", "/api/v1/tokens", "Query.tokens"),
    ("POST", "/api/v1/tokens", "Mutation.createToken"),
    ("DELETE", "/api/v1/tokens/{name}", "Mutation.revokeToken"),
];
const PROBES: &[&str] = &["/healthz", "/readyz"];

#[tokio::test]
async fn every_rest_operation_has_its_graphql_field() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let document = app.get_json("/api/v1/openapi.json").await;
    let mut rest = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if !PROBES.contains(&path.as_str()) {
                rest.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let paired: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|(method, path, _)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(
        rest, paired,
        "REST operations without a GraphQL pair, or gone"
    );

    let introspected = crate::graphql::data(
        &app,
        "{ __schema { types { name fields { name } } } }",
        json!({}),
    )
    .await;
    let fields: BTreeSet<String> = introspected["__schema"]["types"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| {
            let name = t["name"]
                .as_str()
                .unwrap()
                .trim_end_matches("Root")
                .to_owned();
            t["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |f| format!("{name}.{}", f["name"].as_str().unwrap()))
        })
        .collect();
    for (_, _, field) in OPERATIONS {
        assert!(fields.contains(*field), "GraphQL has no {field}");
    }
    // And the subscriptions a frontend follows.
    for field in [
        "Subscription.accountChanged",
        "Subscription.harvestProgress",
    ] {
        assert!(fields.contains(field), "GraphQL has no {field}");
    }
    app.stop().await;
}

/// Which token a request carries.
#[derive(Clone, Copy)]
enum Caller {
    Nobody,
    Viewer,
    Admin,
}

/// One bad input, as REST and as GraphQL receive it, and the code both must answer.
struct Case {
    what: &'static str,
    caller: Caller,
    rest: (Method, String, Option<Value>),
    graphql: (&'static str, Value),
    code: &'static str,
}

on_every_store!(both_faces_refuse_the_same_bad_input_with_the_same_code);

async fn both_faces_refuse_the_same_bad_input_with_the_same_code(backend: Backend) {
    let (app, _org, org_id) = TestApp::harvested(
        backend,
        Shape {
            ous: NESTED,
            accounts: 2,
        },
    )
    .await;
    let listing = app.listing(&org_id).await;
    let managed = listing.keys().next().unwrap().clone();
    let viewer = app.token(Role::Viewer).await;
    let taken = app
        .post(
            "/api/v1/tokens",
            &json!({"name": "taken", "role": "viewer"}),
        )
        .await;
    assert_eq!(taken.status(), StatusCode::CREATED);
    let role = |account: &str| json!({"role_arn": format!("arn:aws:iam::{account}:role/Reader"), "session_name": "orgsync", "duration_seconds": 3600});
    let gql_role = |account: &str| json!({"roleArn": format!("arn:aws:iam::{account}:role/Reader"), "sessionName": "orgsync", "durationSeconds": 3600});
    let registration = json!({
        "nickname": "again",
        "org_role": {"role_arn": "arn:aws:iam::12:role/Nope", "session_name": "orgsync", "duration_seconds": 3600},
        "member_role": {"role_name": "Reader", "session_name": "orgsync", "duration_seconds": 3600}
    });
    let gql_registration = json!({
        "nickname": "again",
        "orgRole": {"roleArn": "arn:aws:iam::12:role/Nope", "sessionName": "orgsync", "durationSeconds": 3600},
        "memberRole": {"roleName": "Reader", "sessionName": "orgsync", "durationSeconds": 3600}
    });
    let unknown_org = "o-aaaaaaaaaa";
    let unknown_account = "123456789012";
    let get = |path: String| (Method::GET, path, None);
    let cases = vec![
        Case {
            what: "no token",
            caller: Caller::Nobody,
            rest: get("/api/v1/organizations".into()),
            graphql: ("{ organizations { id } }", json!({})),
            code: "unauthorized",
        },
        Case {
            what: "a viewer registering",
            caller: Caller::Viewer,
            rest: (Method::POST, "/api/v1/organizations".into(), Some(registration.clone())),
            graphql: (
                "mutation($i: RegisterOrganizationInput!) { registerOrganization(input: $i) { id } }",
                json!({"i": gql_registration}),
            ),
            code: "forbidden",
        },
        Case {
            what: "a malformed role ARN",
            caller: Caller::Admin,
            rest: (Method::POST, "/api/v1/organizations".into(), Some(registration)),
            graphql: (
                "mutation($i: RegisterOrganizationInput!) { registerOrganization(input: $i) { id } }",
                json!({"i": gql_registration}),
            ),
            code: "invalid_field",
        },
        Case {
            what: "a malformed organization id",
            caller: Caller::Admin,
            rest: get("/api/v1/organizations/nope".into()),
            graphql: ("{ organization(id: \"nope\") { id } }", json!({})),
            code: "invalid_field",
        },
        Case {
            what: "editing an unknown organization",
            caller: Caller::Admin,
            rest: (
                Method::PATCH,
                format!("/api/v1/organizations/{unknown_org}"),
                Some(json!({"nickname": "x"})),
            ),
            graphql: (
                "mutation($id: ID!) { updateOrganization(id: $id, input: {nickname: \"x\"}) { id } }",
                json!({"id": unknown_org}),
            ),
            code: "not_found",
        },
        Case {
            what: "half a credential set (R13)",
            caller: Caller::Admin,
            rest: (
                Method::PATCH,
                format!("/api/v1/organizations/{org_id}"),
                Some(json!({"org_role": {"session_name": "other"}})),
            ),
            graphql: (
                "mutation($id: ID!) { updateOrganization(id: $id, input: {orgRole: {sessionName: \"other\"}}) { id } }",
                json!({"id": org_id}),
            ),
            code: "incomplete_credentials",
        },
        Case {
            what: "removing an unknown organization",
            caller: Caller::Admin,
            rest: (Method::DELETE, format!("/api/v1/organizations/{unknown_org}"), None),
            graphql: (
                "mutation($id: ID!) { removeOrganization(id: $id) }",
                json!({"id": unknown_org}),
            ),
            code: "not_found",
        },
        Case {
            what: "harvesting an unknown organization",
            caller: Caller::Admin,
            rest: (
                Method::POST,
                format!("/api/v1/organizations/{unknown_org}/harvest"),
                None,
            ),
            graphql: (
                "mutation($id: ID!) { startHarvest(id: $id) }",
                json!({"id": unknown_org}),
            ),
            code: "not_found",
        },
        Case {
            what: "a badge filter without a value",
            caller: Caller::Viewer,
            rest: get("/api/v1/accounts?badge=nocolon".into()),
            graphql: ("{ accounts(badges: [\"nocolon\"]) { nodes { accountId } } }", json!({})),
            code: "invalid_query",
        },
        Case {
            what: "a malformed OU filter",
            caller: Caller::Viewer,
            rest: get("/api/v1/accounts?ou=ou-nope".into()),
            graphql: ("{ accounts(ou: \"ou-nope\") { nodes { accountId } } }", json!({})),
            code: "invalid_query",
        },
        Case {
            what: "an empty page",
            caller: Caller::Viewer,
            rest: get("/api/v1/accounts?limit=0".into()),
            graphql: ("{ accounts(first: 0) { nodes { accountId } } }", json!({})),
            code: "invalid_query",
        },
        Case {
            what: "a NUL in the text",
            caller: Caller::Viewer,
            rest: get("/api/v1/accounts?q=%00".into()),
            graphql: ("{ accounts(q: \"\\u0000\") { nodes { accountId } } }", json!({})),
            code: "invalid_query",
        },
        Case {
            what: "a malformed account id",
            caller: Caller::Viewer,
            rest: get("/api/v1/accounts/12".into()),
            graphql: ("{ account(id: \"12\") { accountId } }", json!({})),
            code: "invalid_field",
        },
        Case {
            what: "a standalone account's role in another account",
            caller: Caller::Admin,
            rest: (
                Method::POST,
                "/api/v1/accounts".into(),
                Some(json!({"account_id": unknown_account, "name": "lab", "role_arn": "arn:aws:iam::210987654321:role/Reader", "session_name": "orgsync", "duration_seconds": 3600})),
            ),
            graphql: (
                "mutation($i: AddAccountInput!) { addAccount(input: $i) { accountId } }",
                json!({"i": {"accountId": unknown_account, "name": "lab", "roleArn": "arn:aws:iam::210987654321:role/Reader", "sessionName": "orgsync", "durationSeconds": 3600}}),
            ),
            code: "invalid_field",
        },
        Case {
            what: "a viewer adding an account",
            caller: Caller::Viewer,
            rest: (
                Method::POST,
                "/api/v1/accounts".into(),
                Some(json!({"account_id": unknown_account, "name": "lab", "role_arn": format!("arn:aws:iam::{unknown_account}:role/Reader"), "session_name": "orgsync", "duration_seconds": 3600})),
            ),
            graphql: (
                "mutation($i: AddAccountInput!) { addAccount(input: $i) { accountId } }",
                json!({"i": {"accountId": unknown_account, "name": "lab", "roleArn": format!("arn:aws:iam::{unknown_account}:role/Reader"), "sessionName": "orgsync", "durationSeconds": 3600}}),
            ),
            code: "forbidden",
        },
        Case {
            what: "replacing a managed account's role (R12)",
            caller: Caller::Admin,
            rest: (Method::PATCH, format!("/api/v1/accounts/{managed}"), Some(role(&managed))),
            graphql: (
                "mutation($id: ID!, $i: AccountRoleInput!) { replaceAccountRole(accountId: $id, input: $i) { accountId } }",
                json!({"id": managed, "i": gql_role(&managed)}),
            ),
            code: "managed_by_organization",
        },
        Case {
            what: "deleting a managed account (R12)",
            caller: Caller::Admin,
            rest: (Method::DELETE, format!("/api/v1/accounts/{managed}"), None),
            graphql: (
                "mutation($id: ID!) { deleteAccount(accountId: $id) }",
                json!({"id": managed}),
            ),
            code: "managed_by_organization",
        },
        Case {
            what: "deleting an unknown account",
            caller: Caller::Admin,
            rest: (Method::DELETE, format!("/api/v1/accounts/{unknown_account}"), None),
            graphql: (
                "mutation($id: ID!) { deleteAccount(accountId: $id) }",
                json!({"id": unknown_account}),
            ),
            code: "not_found",
        },
        Case {
            what: "a reserved badge key",
            caller: Caller::Admin,
            rest: (
                Method::POST,
                format!("/api/v1/accounts/{managed}/badges"),
                Some(json!({"key": "system.cloud_organization", "value": "x"})),
            ),
            graphql: (
                "mutation($id: ID!) { addBadge(accountId: $id, key: \"system.cloud_organization\", value: \"x\") { accountId } }",
                json!({"id": managed}),
            ),
            code: "reserved_badge",
        },
        Case {
            what: "a badge removed from an unknown account",
            caller: Caller::Admin,
            rest: (
                Method::DELETE,
                format!("/api/v1/accounts/{unknown_account}/badges/team"),
                None,
            ),
            graphql: (
                "mutation($id: ID!) { removeBadge(accountId: $id, key: \"team\") }",
                json!({"id": unknown_account}),
            ),
            code: "not_found",
        },
        Case {
            what: "a history cursor never given out",
            caller: Caller::Viewer,
            rest: get(format!("/api/v1/accounts/{managed}/events?after=x")),
            graphql: (
                "query($id: ID!) { account(id: $id) { history(after: \"x\") { nodes { sequence } } } }",
                json!({"id": managed}),
            ),
            code: "invalid_query",
        },
        Case {
            what: "a change feed page too long",
            caller: Caller::Viewer,
            rest: get("/api/v1/events?limit=1001".into()),
            graphql: ("{ events(first: 1001) { nodes { sequence } } }", json!({})),
            code: "invalid_query",
        },
        Case {
            what: "a change feed cursor never given out",
            caller: Caller::Viewer,
            rest: get("/api/v1/events?after=-1".into()),
            graphql: ("{ events(after: \"-1\") { nodes { sequence } } }", json!({})),
            code: "invalid_query",
        },
        Case {
            what: "a viewer asking for the external ID",
            caller: Caller::Viewer,
            rest: get("/api/v1/external-id".into()),
            graphql: ("{ externalId }", json!({})),
            code: "forbidden",
        },
        Case {
            what: "a viewer asking for a role template",
            caller: Caller::Viewer,
            rest: get("/api/v1/templates/org-role.yaml".into()),
            graphql: ("{ roleTemplate(name: ORG_ROLE) }", json!({})),
            code: "forbidden",
        },
        Case {
            what: "a viewer listing tokens",
            caller: Caller::Viewer,
            rest: get("/api/v1/tokens".into()),
            graphql: ("{ tokens { name } }", json!({})),
            code: "forbidden",
        },
        Case {
            what: "a token with a name that is taken",
            caller: Caller::Admin,
            rest: (
                Method::POST,
                "/api/v1/tokens".into(),
                Some(json!({"name": "taken", "role": "viewer"})),
            ),
            graphql: (
                "mutation { createToken(name: \"taken\", role: VIEWER) { token } }",
                json!({}),
            ),
            code: "token_name_taken",
        },
        Case {
            what: "a negative token lifetime",
            caller: Caller::Admin,
            rest: (
                Method::POST,
                "/api/v1/tokens".into(),
                Some(json!({"name": "ci", "role": "viewer", "expires_in_seconds": -5})),
            ),
            graphql: (
                "mutation { createToken(name: \"ci\", role: VIEWER, expiresInSeconds: -5) { token } }",
                json!({}),
            ),
            code: "invalid_field",
        },
        Case {
            what: "revoking an unknown token",
            caller: Caller::Admin,
            rest: (Method::DELETE, "/api/v1/tokens/nobody".into(), None),
            graphql: ("mutation { revokeToken(name: \"nobody\") }", json!({})),
            code: "not_found",
        },
    ];
    for case in cases {
        let token = match case.caller {
            Caller::Nobody => None,
            Caller::Viewer => Some(viewer.as_str()),
            Caller::Admin => Some(app.admin_token.as_str()),
        };
        let (method, path, body) = case.rest;
        let mut request = app
            .client
            .request(method.clone(), format!("{}{path}", app.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let rest: Value = response.json().await.unwrap();
        assert!(
            status.is_client_error(),
            "{}: REST answered {status}: {rest}",
            case.what
        );
        let (query, variables) = case.graphql;
        let mut request = app
            .client
            .post(format!("{}/graphql", app.address))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{}", case.what);
        let graphql: Value = response.json().await.unwrap();
        assert_eq!(
            (
                rest["error"]["code"].as_str(),
                graphql["errors"][0]["extensions"]["code"].as_str()
            ),
            (Some(case.code), Some(case.code)),
            "{} ({method} {path}): REST {rest}, GraphQL {graphql}",
            case.what
        );
    }
    app.stop().await;
}
