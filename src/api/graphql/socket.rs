//! Subscriptions over WebSocket (graphql-transport-ws), with the bounds an endpoint open to
//! every token holder needs: `connection_init` within [`INIT_TIMEOUT`], at most
//! `server.max_subscriptions_per_socket` subscriptions on a socket and
//! `server.max_sockets_per_token` sockets per token, and a socket whose token is revoked or
//! expires closed within a second. async-graphql runs the protocol; this module owns the
//! socket around it and looks at each message's `type` and `id` on the way.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::header::{HeaderValue, SEC_WEBSOCKET_PROTOCOL};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session};
use async_graphql::http::{WebSocket, WebSocketProtocols, WsMessage};
use async_graphql::Data;
use futures::channel::mpsc;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::app::{App, Principal};

use super::{bearer, refused, OrgsyncSchema};

/// The one subprotocol spoken.
const PROTOCOL: &str = "graphql-transport-ws";

/// How long a socket may take to send `connection_init`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a socket's token is checked again.
const RECHECK: Duration = Duration::from_secs(1);

/// How often the daemon pings a quiet socket, and how long it waits for any frame back.
const PING: Duration = Duration::from_secs(10);
const DEAD: Duration = Duration::from_secs(30);

/// Close codes of graphql-transport-ws, and one of ours.
const UNAUTHORIZED: u16 = 4401;
const FORBIDDEN: u16 = 4403;
const INIT_TIMED_OUT: u16 = 4408;
const TOO_MANY: u16 = 4429;

/// The bounds of sockets, and the sockets each token holds open on this instance.
pub struct Sockets {
    max_subscriptions: usize,
    max_per_token: usize,
    open: Mutex<HashMap<String, usize>>,
}

impl Sockets {
    /// Bounds of `max_subscriptions` per socket and `max_per_token` sockets per token.
    pub fn new(max_subscriptions: usize, max_per_token: usize) -> Self {
        Self {
            max_subscriptions,
            max_per_token,
            open: Mutex::default(),
        }
    }

    /// Counts a socket of `token_name` while the answer lives; `None` at the cap.
    fn open(self: &Arc<Self>, token_name: &str) -> Option<Slot> {
        let mut open = self.open.lock().expect("socket counts poisoned");
        let count = open.entry(token_name.to_owned()).or_default();
        if *count >= self.max_per_token {
            return None;
        }
        *count += 1;
        Some(Slot {
            sockets: self.clone(),
            token_name: token_name.to_owned(),
        })
    }
}

/// A socket counted against its token's cap, until dropped.
struct Slot {
    sockets: Arc<Sockets>,
    token_name: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.sockets.open.lock().expect("socket counts poisoned");
        if let Some(count) = open.get_mut(&self.token_name) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.token_name);
            }
        }
    }
}

/// Upgrades `GET /graphql` to a WebSocket speaking graphql-transport-ws.
pub(super) async fn subscribe(
    schema: web::Data<OrgsyncSchema>,
    app: web::Data<App>,
    sockets: web::Data<Sockets>,
    req: HttpRequest,
    payload: web::Payload,
) -> actix_web::Result<HttpResponse> {
    let offered = req
        .headers()
        .get(SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim() == PROTOCOL));
    if !offered {
        let message = format!("expected Sec-WebSocket-Protocol: {PROTOCOL}");
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &message,
        ));
    }
    let (mut response, session, messages) = actix_ws::handle(&req, payload)?;
    response
        .headers_mut()
        .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(PROTOCOL));
    let socket = Socket {
        schema: OrgsyncSchema::clone(&schema),
        app: app.get_ref().clone(),
        sockets: sockets.into_inner(),
        session,
    };
    actix_web::rt::spawn(socket.serve(messages));
    Ok(response)
}

struct Socket {
    schema: OrgsyncSchema,
    app: App,
    sockets: Arc<Sockets>,
    session: Session,
}

/// What became of a socket's handshake.
enum Handshake {
    /// Accepted: the token, its holder and its slot.
    Accepted(String, Principal, Slot),
    /// Closed, by either side.
    Closed,
}

impl Socket {
    async fn serve(mut self, mut messages: MessageStream) {
        let deadline = tokio::time::sleep(INIT_TIMEOUT);
        let handshake = tokio::select! {
            handshake = self.handshake(&mut messages) => handshake,
            () = deadline => {
                self.close(INIT_TIMED_OUT, "Connection initialisation timeout").await;
                return;
            }
        };
        if let Handshake::Accepted(token, principal, slot) = handshake {
            self.run(messages, token, principal, slot).await;
        }
    }

    /// Waits for `connection_init`, answering pings meanwhile, and checks its token.
    async fn handshake(&mut self, messages: &mut MessageStream) -> Handshake {
        while let Some(text) = self.next_text(messages).await {
            let message: Value = serde_json::from_str(&text).unwrap_or_default();
            match message["type"].as_str() {
                Some("connection_init") => {
                    let init = &message["payload"];
                    let token = init
                        .get("Authorization")
                        .or_else(|| init.get("authorization"))
                        .and_then(Value::as_str);
                    let Some(token) = bearer(token).map(str::to_owned) else {
                        self.close(FORBIDDEN, "a valid bearer token is required")
                            .await;
                        return Handshake::Closed;
                    };
                    let Ok(principal) = self.app.authenticate(&token).await else {
                        self.close(FORBIDDEN, "a valid bearer token is required")
                            .await;
                        return Handshake::Closed;
                    };
                    let Some(slot) = self.sockets.open(&principal.name) else {
                        let reason =
                            format!("at most {} sockets per token", self.sockets.max_per_token);
                        self.close(TOO_MANY, &reason).await;
                        return Handshake::Closed;
                    };
                    return Handshake::Accepted(token, principal, slot);
                }
                Some("ping") => {
                    if self.send(&json!({"type": "pong"})).await.is_err() {
                        return Handshake::Closed;
                    }
                }
                _ => {
                    self.close(UNAUTHORIZED, "Unauthorized").await;
                    return Handshake::Closed;
                }
            }
        }
        Handshake::Closed
    }

    /// Runs the protocol once the handshake is done, until either side closes.
    async fn run(
        mut self,
        mut messages: MessageStream,
        token: String,
        who: Principal,
        _slot: Slot,
    ) {
        let mut data = Data::default();
        data.insert(self.app.clone());
        data.insert(who);
        let (to_protocol, from_client) = mpsc::unbounded::<String>();
        let mut protocol = WebSocket::new(
            self.schema.clone(),
            from_client,
            WebSocketProtocols::GraphQLWS,
        )
        .connection_data(data);
        let _ = to_protocol.unbounded_send(json!({"type": "connection_init"}).to_string());
        let mut active: HashSet<String> = HashSet::new();
        let mut ticks = tokio::time::interval(RECHECK);
        let mut heard = Instant::now();
        let mut pinged = Instant::now();
        loop {
            tokio::select! {
                frame = messages.next() => {
                    heard = Instant::now();
                    let text = match frame {
                        Some(Ok(Message::Text(text))) => text.to_string(),
                        Some(Ok(Message::Binary(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
                        Some(Ok(Message::Ping(bytes))) => {
                            if self.session.pong(&bytes).await.is_err() { return; }
                            continue;
                        }
                        Some(Ok(Message::Pong(_) | Message::Nop)) => continue,
                        Some(Ok(Message::Continuation(_))) => {
                            self.close(1003, "fragmented messages are not accepted").await;
                            return;
                        }
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                            let _ = self.session.close(None).await;
                            return;
                        }
                    };
                    let message: Value = serde_json::from_str(&text).unwrap_or_default();
                    let id = message["id"].as_str().map(str::to_owned);
                    match (message["type"].as_str(), id) {
                        (Some("subscribe"), Some(id)) if !active.contains(&id)
                            && active.len() >= self.sockets.max_subscriptions => {
                            let refusal = json!({"id": id, "type": "error", "payload": [{
                                "message": format!("at most {} subscriptions per socket", self.sockets.max_subscriptions),
                                "extensions": {"code": "too_many_subscriptions"},
                            }]});
                            if self.send(&refusal).await.is_err() { return; }
                            continue;
                        }
                        (Some("subscribe"), Some(id)) => { active.insert(id); }
                        (Some("complete"), Some(id)) => { active.remove(&id); }
                        _ => {}
                    }
                    if to_protocol.unbounded_send(text).is_err() { return; }
                }
                answer = protocol.next() => match answer {
                    Some(WsMessage::Text(text)) => {
                        let message: Value = serde_json::from_str(&text).unwrap_or_default();
                        if matches!(message["type"].as_str(), Some("complete" | "error")) {
                            if let Some(id) = message["id"].as_str() { active.remove(id); }
                        }
                        if self.session.text(text).await.is_err() { return; }
                    }
                    Some(WsMessage::Close(code, reason)) => {
                        self.close(code, &reason).await;
                        return;
                    }
                    None => {
                        let _ = self.session.close(None).await;
                        return;
                    }
                },
                _ = ticks.tick() => {
                    if self.app.authenticate(&token).await.is_err() {
                        self.close(FORBIDDEN, "the token was revoked or expired").await;
                        return;
                    }
                    if heard.elapsed() > DEAD {
                        let _ = self.session.close(None).await;
                        return;
                    }
                    if pinged.elapsed() >= PING && heard.elapsed() >= PING {
                        pinged = Instant::now();
                        if self.session.ping(b"").await.is_err() { return; }
                    }
                }
            }
        }
    }

    /// The next text message, answering WebSocket pings; `None` once the client is gone.
    async fn next_text(&mut self, messages: &mut MessageStream) -> Option<String> {
        loop {
            match messages.next().await? {
                Ok(Message::Text(text)) => return Some(text.to_string()),
                Ok(Message::Binary(bytes)) => {
                    return Some(String::from_utf8_lossy(&bytes).into_owned())
                }
                Ok(Message::Ping(bytes)) => self.session.pong(&bytes).await.ok()?,
                Ok(Message::Pong(_) | Message::Nop) => {}
                Ok(Message::Close(_) | Message::Continuation(_)) | Err(_) => return None,
            }
        }
    }

    async fn send(&mut self, message: &Value) -> Result<(), actix_ws::Closed> {
        self.session.text(message.to_string()).await
    }

    async fn close(&self, code: u16, reason: &str) {
        let reason = CloseReason {
            code: CloseCode::from(code),
            description: Some(reason.to_owned()),
        };
        let _ = self.session.clone().close(Some(reason)).await;
    }
}
