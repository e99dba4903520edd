//! GraphQL: every query, mutation and the subscription, the same tokens and error codes as
//! REST, time travel with `asOf`, and the depth and complexity limits.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use orgsync::app::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Backend, TestApp};
use crate::moto::{MotoOrg, Shape, MEMBER_ROLE, NESTED};
use crate::on_every_store;

on_every_store!(graphql_offers_every_query_mutation_and_the_subscription);

/// Runs a GraphQL document with `token`; answers the whole response body.
async fn gql(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(token)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// The `data` of a document that must succeed.
pub async fn data(app: &TestApp, query: &str, variables: Value) -> Value {
    let body = gql(app, &app.admin_token, query, variables).await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code: {body}"))
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn next_message(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("a message within 30 s")
            .expect("the socket stays open")
            .unwrap();
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] != "ping" {
                return value;
            }
        }
    }
}

async fn graphql_offers_every_query_mutation_and_the_subscription(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts: 5,
    })
    .await;

    // registerOrganization, then a harvest to its end.
    let registered = data(
        &app,
        "mutation($input: RegisterOrganizationInput!) { registerOrganization(input: $input) { id nickname filters { autoBadge } } }",
        json!({"input": {
            "nickname": "prod",
            "orgRole": {"roleArn": org.org_role_arn(), "sessionName": "orgsync", "durationSeconds": 3600},
            "memberRole": {"roleName": MEMBER_ROLE, "sessionName": "orgsync", "durationSeconds": 3600}
        }}),
    )
    .await;
    assert_eq!(registered["registerOrganization"]["id"], org.id);
    assert_eq!(
        registered["registerOrganization"]["filters"]["autoBadge"],
        true
    );
    let org_id = org.id.clone();
    app.harvest(&org_id).await;
    let before_change = chrono::Utc::now();

    // organizations, organization(id).
    let orgs = data(
        &app,
        "{ organizations { id accountCount lastHarvest { outcome } } }",
        json!({}),
    )
    .await;
    assert_eq!(orgs["organizations"][0]["accountCount"], 6);
    assert_eq!(
        orgs["organizations"][0]["lastHarvest"]["outcome"],
        "completed"
    );
    let one = data(
        &app,
        "query($id: ID!) { organization(id: $id) { nickname managementAccountId } }",
        json!({"id": org_id}),
    )
    .await;
    assert_eq!(
        one["organization"]["managementAccountId"],
        org.management_account
    );
    let none = data(
        &app,
        "{ organization(id: \"o-aaaaaaaaaa\") { id } }",
        json!({}),
    )
    .await;
    assert_eq!(none["organization"], Value::Null);

    // accounts: a Relay connection, paged.
    let page = "query($after: String) { accounts(first: 4, after: $after) { edges { cursor node { accountId } } pageInfo { hasNextPage endCursor } } }";
    let first = data(&app, page, json!({"after": null})).await;
    assert_eq!(first["accounts"]["edges"].as_array().unwrap().len(), 4);
    assert_eq!(first["accounts"]["pageInfo"]["hasNextPage"], true);
    let second = data(
        &app,
        page,
        json!({"after": first["accounts"]["pageInfo"]["endCursor"]}),
    )
    .await;
    assert_eq!(second["accounts"]["edges"].as_array().unwrap().len(), 2);
    assert_eq!(second["accounts"]["pageInfo"]["hasNextPage"], false);
    // …with the REST filters: account-0001 is the only one with env=dev.
    let filtered = data(
        &app,
        "query($org: ID!) { accounts(organization: $org, state: ACTIVE, badges: [\"env:dev\"], q: \"account-00\") { edges { node { accountId name } } } }",
        json!({"org": org_id}),
    )
    .await;
    assert_eq!(
        filtered["accounts"]["edges"][0]["node"]["accountId"],
        org.members[1]
    );
    assert_eq!(filtered["accounts"]["edges"].as_array().unwrap().len(), 1);

    // account(id) with tags, badges, access and history.
    let account = data(
        &app,
        "query($id: ID!) { account(id: $id) { name state tags { key value } badges { key value autogenerated } access { status } history { nodes { type actor } } } }",
        json!({"id": org.members[1]}),
    )
    .await;
    let account = &account["account"];
    assert_eq!(account["state"], "ACTIVE");
    assert_eq!(account["tags"], json!([{"key": "env", "value": "dev"}]));
    assert!(account["badges"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["key"] == "env" && b["autogenerated"] == true));
    assert_eq!(account["access"]["status"], "OK");
    assert_eq!(account["history"]["nodes"][0]["type"], "AccountDiscovered");

    // The subscription receives the events of a harvest, over WebSocket.
    let mut request = format!("ws://{}/graphql", app.address.trim_start_matches("http://"))
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", app.admin_token)}});
    socket.send(Message::Text(init.to_string())).await.unwrap();
    assert_eq!(next_message(&mut socket).await["type"], "connection_ack");
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {
        "query": "subscription($org: ID!) { accountChanged(organization: $org) { accountId type sequence } }",
        "variables": {"org": org_id}
    }});
    socket
        .send(Message::Text(subscribe.to_string()))
        .await
        .unwrap();
    // Until an event comes through, the subscription may not have started: add badges until
    // one is delivered, then it is live for what follows.
    let mut round = 0;
    loop {
        round += 1;
        let mark = json!({"id": org.members[0], "v": round.to_string()});
        data(&app, "mutation($id: ID!, $v: String!) { addBadge(accountId: $id, key: \"mark\", value: $v) { name } }", mark).await;
        let delivered =
            tokio::time::timeout(Duration::from_secs(2), next_message(&mut socket)).await;
        if let Ok(message) = delivered {
            assert_eq!(
                message["payload"]["data"]["accountChanged"]["type"], "ManualBadgeAdded",
                "{message}"
            );
            break;
        }
        assert!(round < 10, "the subscription never delivered");
    }
    org.tag(&org.members[1], "env", "changed").await;
    app.harvest(&org_id).await;
    // Marks added while the subscription was starting may still be on their way.
    let next = loop {
        let message = next_message(&mut socket).await;
        if message["payload"]["data"]["accountChanged"]["type"] != "ManualBadgeAdded" {
            break message;
        }
    };
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(
        next["payload"]["data"]["accountChanged"]["accountId"],
        org.members[1]
    );
    assert_eq!(
        next["payload"]["data"]["accountChanged"]["type"],
        "AccountTagsChanged"
    );
    socket.close(None).await.unwrap();

    // asOf: the listing as it was before the change.
    let tags_at = "query($at: DateTime, $org: ID!) { accounts(organization: $org, asOf: $at, q: \"account-0001\") { edges { node { tags { key value } } } } }";
    let then = data(
        &app,
        tags_at,
        json!({"at": before_change.to_rfc3339(), "org": org_id}),
    )
    .await;
    assert_eq!(
        then["accounts"]["edges"][0]["node"]["tags"],
        json!([{"key": "env", "value": "dev"}])
    );
    let now = data(&app, tags_at, json!({"at": null, "org": org_id})).await;
    assert_eq!(
        now["accounts"]["edges"][0]["node"]["tags"],
        json!([{"key": "env", "value": "changed"}])
    );
    let empty = data(
        &app,
        tags_at,
        json!({"at": "2001-01-01T00:00:00Z", "org": org_id}),
    )
    .await;
    assert_eq!(empty["accounts"]["edges"], json!([]));

    // The other mutations.
    let member = &org.members[2];
    let badge = data(&app, "mutation($id: ID!) { addBadge(accountId: $id, key: \"owner\", value: \"ann\") { badges { key value } } }", json!({"id": member})).await;
    assert!(badge["addBadge"]["badges"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["key"] == "owner"));
    let removed = data(
        &app,
        "mutation($id: ID!) { removeBadge(accountId: $id, key: \"owner\") }",
        json!({"id": member}),
    )
    .await;
    assert_eq!(removed["removeBadge"], true);
    let renamed = data(&app, "mutation($id: ID!) { updateOrganization(id: $id, input: {nickname: \"production\", filters: {autoRemoveSuspended: true}}) { nickname filters { autoRemoveSuspended autoBadge } } }", json!({"id": org_id})).await;
    assert_eq!(
        renamed["updateOrganization"],
        json!({"nickname": "production", "filters": {"autoRemoveSuspended": true, "autoBadge": true}})
    );
    let started = data(
        &app,
        "mutation($id: ID!) { startHarvest(id: $id) }",
        json!({"id": org_id}),
    )
    .await;
    assert!(["STARTED", "ALREADY_RUNNING"].contains(&started["startHarvest"].as_str().unwrap()));

    // Errors carry REST's codes; viewers read but never write.
    let partial = gql(&app, &app.admin_token, "mutation($id: ID!) { updateOrganization(id: $id, input: {orgRole: {roleArn: \"arn:aws:iam::111122223333:role/x\"}}) { id } }", json!({"id": org_id})).await;
    assert_eq!(error_code(&partial), "incomplete_credentials");
    let reserved = gql(
        &app,
        &app.admin_token,
        "mutation($id: ID!) { addBadge(accountId: $id, key: \"system.x\", value: \"y\") { name } }",
        json!({"id": member}),
    )
    .await;
    assert_eq!(error_code(&reserved), "reserved_badge");
    let viewer = app.token(Role::Viewer).await;
    let read = gql(&app, &viewer, "{ organizations { id } }", json!({})).await;
    assert!(read.get("errors").is_none(), "{read}");
    let write = gql(
        &app,
        &viewer,
        "mutation($id: ID!) { removeOrganization(id: $id) }",
        json!({"id": org_id}),
    )
    .await;
    assert_eq!(error_code(&write), "forbidden");
    let stranger = gql(&app, "not-a-token", "{ organizations { id } }", json!({})).await;
    assert_eq!(error_code(&stranger), "unauthorized");

    // Limits: a query deeper than allowed, and one more complex than allowed.
    let deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } }";
    let refused = gql(&app, &app.admin_token, deep, json!({})).await;
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nested too deep"),
        "{refused}"
    );
    let complex = "{ accounts(first: 1000) { edges { node { accountId name email state tags { key value } badges { key value autogenerated } access { status message warnings } } } } }";
    let refused = gql(&app, &app.admin_token, complex, json!({})).await;
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too complex"),
        "{refused}"
    );

    // removeOrganization; a plain GET opens the console, whose GraphQL page it then shows.
    let gone = data(
        &app,
        "mutation($id: ID!) { removeOrganization(id: $id) }",
        json!({"id": org_id}),
    )
    .await;
    assert_eq!(gone["removeOrganization"], true);
    assert_eq!(
        data(&app, "{ organizations { id } }", json!({})).await["organizations"],
        json!([])
    );
    let ide = app
        .client
        .get(format!("{}/graphql", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ide.status(), StatusCode::OK);
    let page = ide.text().await.unwrap();
    assert!(page.contains("<title>orgsync</title>"), "{page}");
    app.stop().await;
}

on_every_store!(the_listing_as_of_an_instant_is_the_listing_as_it_was_then_page_by_page);

/// The whole listing, a page of `first` at a time, as it is or was at `at`.
async fn listing_pages(app: &TestApp, at: Option<&str>, first: i64) -> Vec<Value> {
    let query = "query($at: DateTime, $first: Int, $after: String) { accounts(asOf: $at, first: $first, after: $after) { \
        edges { cursor node { accountId name state orgPath { name } tags { key value } badges { key value autogenerated } access { status } } } \
        pageInfo { hasNextPage endCursor } } }";
    let mut nodes = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = data(
            app,
            query,
            json!({"at": at, "first": first, "after": after}),
        )
        .await;
        let accounts = &page["accounts"];
        nodes.extend(
            accounts["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"].clone()),
        );
        if accounts["pageInfo"]["hasNextPage"] != true {
            return nodes;
        }
        after = accounts["pageInfo"]["endCursor"].clone();
    }
}

async fn the_listing_as_of_an_instant_is_the_listing_as_it_was_then_page_by_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before_all = chrono::Utc::now().to_rfc3339();
    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts: 7,
    })
    .await;
    let org_id = app.register(&org).await;
    app.harvest(&org_id).await;
    let mut instants = vec![(before_all, Vec::new())];
    let seen = |instants: &mut Vec<(String, Vec<Value>)>, listing: Vec<Value>| {
        instants.push((chrono::Utc::now().to_rfc3339(), listing));
    };
    seen(&mut instants, listing_pages(&app, None, 50).await);

    // Retagged, moved, closed, departed, badged: each instant its own listing.
    org.tag(&org.members[0], "env", "changed").await;
    org.move_account(&org.members[1], &org.ous["Sandbox"]).await;
    org.close(&org.members[2]).await;
    org.remove(&org.members[3]).await;
    app.harvest(&org_id).await;
    data(
        &app,
        "mutation($id: ID!) { addBadge(accountId: $id, key: \"owner\", value: \"ops\") { name } }",
        json!({"id": org.members[4]}),
    )
    .await;
    seen(&mut instants, listing_pages(&app, None, 50).await);
    data(
        &app,
        "mutation($id: ID!) { removeOrganization(id: $id) }",
        json!({"id": org_id}),
    )
    .await;
    seen(&mut instants, listing_pages(&app, None, 50).await);
    assert!(instants[1].1.len() >= 7, "{:?}", instants[1].1);
    assert!(instants[3].1.is_empty());

    for (at, then) in &instants {
        for first in [50, 3, 1] {
            assert_eq!(
                &listing_pages(&app, Some(at), first).await,
                then,
                "asOf {at}, {first} a page"
            );
        }
    }
    app.stop().await;
}
