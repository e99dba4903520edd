//! WebSocket bounds: `connection_init` within 10 s, subscriptions per socket and sockets per
//! token capped, and a socket whose token is revoked closed, each with its close code or a
//! GraphQL error with a code.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use orgsync::app::Role;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Backend, TestApp};

/// A WebSocket to a daemon's `/graphql`.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next message on `socket` other than a ping, within 30 s.
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

/// A graphql-transport-ws socket to the daemon at `address`, before its handshake.
async fn connect(address: &str) -> Socket {
    let mut request = format!("ws://{}/graphql", address.trim_start_matches("http://"))
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade")
        .0
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string()))
        .await
        .expect("send");
}

/// A socket to the daemon at `address` past its handshake with `token`.
pub async fn initialised(address: &str, token: &str) -> Socket {
    let mut socket = connect(address).await;
    send(
        &mut socket,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    )
    .await;
    assert_eq!(next_message(&mut socket).await["type"], "connection_ack");
    socket
}

/// The close code and reason the daemon ends `socket` with, within `limit`.
async fn closed(socket: &mut Socket, limit: Duration) -> (u16, String) {
    let start = Instant::now();
    loop {
        let left = limit.saturating_sub(start.elapsed());
        let frame = tokio::time::timeout(left, socket.next())
            .await
            .unwrap_or_else(|_| panic!("still open after {limit:?}"));
        match frame {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string())
            }
            Some(Ok(Message::Close(None))) | None => panic!("closed without a code"),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("socket failed: {e}"),
        }
    }
}

fn subscription(id: &str, org: &str) -> Value {
    json!({"id": id, "type": "subscribe", "payload": {
        "query": "subscription($org: ID!) { accountChanged(organization: $org) { accountId } }",
        "variables": {"org": org}
    }})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_sends_connection_init_is_closed_after_ten_seconds() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut socket = connect(&app.address).await;
    let start = Instant::now();
    let (code, reason) = closed(&mut socket, Duration::from_secs(15)).await;
    let waited = start.elapsed();
    assert_eq!(code, 4408, "{reason}");
    assert!(
        waited >= Duration::from_millis(9_500),
        "closed after {waited:?}, before the 10 s allowed"
    );
    // Before connection_init, a subscribe is refused at once, and a bad token too.
    let mut early = connect(&app.address).await;
    send(&mut early, subscription("1", "o-aaaaaaaaaa")).await;
    assert_eq!(closed(&mut early, Duration::from_secs(2)).await.0, 4401);
    let mut stranger = connect(&app.address).await;
    send(
        &mut stranger,
        json!({"type": "connection_init", "payload": {"Authorization": "Bearer osk_nobody"}}),
    )
    .await;
    assert_eq!(closed(&mut stranger, Duration::from_secs(2)).await.0, 4403);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_per_socket_and_sockets_per_token_are_capped() {
    let app = TestApp::spawn_tuned(Backend::Sqlite, |settings| {
        settings.server.max_subscriptions_per_socket = 2;
        settings.server.max_sockets_per_token = 2;
    })
    .await;
    let org = "o-aaaaaaaaaa";
    let mut socket = initialised(&app.address, &app.admin_token).await;
    send(&mut socket, subscription("1", org)).await;
    send(&mut socket, subscription("2", org)).await;
    send(&mut socket, subscription("3", org)).await;
    let refused = next_message(&mut socket).await;
    assert_eq!(refused["id"], "3", "{refused}");
    assert_eq!(refused["type"], "error");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "too_many_subscriptions"
    );
    // One completed by the client makes room for another.
    send(&mut socket, json!({"id": "1", "type": "complete"})).await;
    send(&mut socket, subscription("4", org)).await;
    send(&mut socket, json!({"type": "ping"})).await;
    let answer = loop {
        let message = next_message(&mut socket).await;
        if message["type"] != "complete" {
            break message;
        }
    };
    assert_eq!(
        answer["type"], "pong",
        "subscription 4 was refused: {answer}"
    );

    // A second socket of the same token is accepted, a third closed; another token's is not.
    let _second = initialised(&app.address, &app.admin_token).await;
    let mut third = connect(&app.address).await;
    send(
        &mut third,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", app.admin_token)}}),
    )
    .await;
    let (code, reason) = closed(&mut third, Duration::from_secs(2)).await;
    assert_eq!(code, 4429, "{reason}");
    let viewer = app.token(Role::Viewer).await;
    let _other = initialised(&app.address, &viewer).await;
    // A closed socket gives its place back.
    socket.close(None).await.expect("close");
    let start = Instant::now();
    loop {
        let mut again = connect(&app.address).await;
        send(
            &mut again,
            json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", app.admin_token)}}),
        )
        .await;
        let frame = tokio::time::timeout(Duration::from_secs(2), again.next())
            .await
            .expect("an answer");
        if let Some(Ok(Message::Text(text))) = frame {
            assert!(text.contains("connection_ack"), "{text}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the closed socket's place was not given back"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_closes_within_a_second_of_its_token_being_revoked() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let created = app
        .post(
            "/api/v1/tokens",
            &json!({"name": "watcher", "role": "viewer"}),
        )
        .await
        .json::<Value>()
        .await
        .expect("JSON");
    let token = created["token"].as_str().expect("token").to_owned();
    let mut socket = initialised(&app.address, &token).await;
    send(&mut socket, subscription("1", "o-aaaaaaaaaa")).await;
    let revoked = app.delete("/api/v1/tokens/watcher").await;
    assert_eq!(revoked.status(), reqwest::StatusCode::NO_CONTENT);
    let start = Instant::now();
    let (code, reason) = closed(&mut socket, Duration::from_secs(3)).await;
    assert_eq!(code, 4403, "{reason}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    app.stop().await;
}
