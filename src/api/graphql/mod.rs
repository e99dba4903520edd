//! GraphQL at `/graphql` for frontends: the same use cases and tokens as REST (viewers read,
//! admins write), Relay connections, the listing at a past instant, and a subscription of
//! account changes and harvest progress over WebSocket (graphql-transport-ws). A plain
//! `GET /graphql` opens the web console's GraphQL page, served from the binary.
//! The schema is built once and its SDL is checked in as `schema/schema.graphql`.

mod listing;
mod mutation;
mod query;
mod socket;
mod subscription;
mod types;

use actix_web::http::{header, StatusCode};
use actix_web::{guard, web, HttpRequest, HttpResponse};
use async_graphql::http::MultipartOptions;
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Context, ErrorExtensions, Schema, ID};

use crate::api::cache::{Answer, Answers};
use crate::app::{App, AppError, Principal, Role};
use crate::domain::{AccountId, OrgId};

pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use socket::Sockets;
pub use subscription::SubscriptionRoot;

/// The schema type.
pub type OrgsyncSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Deepest query accepted.
const MAX_DEPTH: usize = 10;
/// Most complex query accepted (each field counts 1, lists multiply by their page size).
const MAX_COMPLEXITY: usize = 5000;
/// The media type of a kept answer, as async-graphql answers over HTTP.
const GRAPHQL_JSON: &str = "application/graphql-response+json";

/// Builds the schema, once per process.
pub fn schema() -> OrgsyncSchema {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

/// Registers `/graphql`: queries and mutations by POST, subscriptions by WebSocket upgrade,
/// the console's GraphQL page by plain GET. A body larger than `max_body_bytes` is answered 413 as on REST,
/// before more than that is read and before the token is looked at.
pub fn configure(cfg: &mut web::ServiceConfig, max_body_bytes: usize) {
    cfg.service(
        web::resource("/graphql")
            .app_data(web::PayloadConfig::default().limit(max_body_bytes))
            .app_data(web::Data::new(BodyLimit(max_body_bytes)))
            .route(web::post().to(execute))
            .route(
                web::get()
                    .guard(guard::Header("upgrade", "websocket"))
                    .to(socket::subscribe),
            )
            .route(web::get().to(crate::api::console::index)),
    );
}

/// An `AppError` as GraphQL shows it: `extensions.code` equals the REST code.
pub(crate) fn gql(e: AppError) -> async_graphql::Error {
    let message = match &e {
        AppError::Unexpected(_) => "internal error; see the daemon's log".to_owned(),
        other => other.to_string(),
    };
    let code = e.code();
    async_graphql::Error::new(message).extend_with(|_, ext| {
        ext.set("code", code);
        if let AppError::Rejected {
            aws_error_code: Some(aws),
            ..
        } = &e
        {
            ext.set("aws_error_code", aws.as_str());
        }
        if let AppError::Rejected { denied_actions, .. } = &e {
            if !denied_actions.is_empty() {
                ext.set("denied_actions", denied_actions.clone());
            }
        }
    })
}

/// An organization id argument, checked.
pub(crate) fn org_id(id: ID) -> async_graphql::Result<OrgId> {
    OrgId::try_from(id.0).map_err(|e| gql(AppError::from(e)))
}

/// An account id argument, checked.
pub(crate) fn account_id(id: ID) -> async_graphql::Result<AccountId> {
    AccountId::try_from(id.0).map_err(|e| gql(AppError::from(e)))
}

pub(crate) fn app<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a App> {
    ctx.data::<App>()
}

/// The caller, whatever its role.
pub(crate) fn viewer<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Principal> {
    ctx.data::<Principal>()
        .map_err(|_| gql(AppError::Unauthorized))
}

/// The caller, who must be an admin.
pub(crate) fn admin<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Principal> {
    let principal = viewer(ctx)?;
    match principal.role {
        Role::Admin => Ok(principal),
        Role::Viewer => Err(gql(AppError::Forbidden)),
    }
}

fn bearer(value: Option<&str>) -> Option<&str> {
    value
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The largest request body `/graphql` reads, `server.max_body_bytes`.
struct BodyLimit(usize);

/// An answer to a request refused before the schema sees it, shaped as GraphQL errors are.
fn refused(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    }))
}

/// Executes a query or mutation. An answer to a query of the listing alone, with a token, is
/// kept for the next caller of the same role asking the same, until the app's version moves.
async fn execute(
    schema: web::Data<OrgsyncSchema>,
    app: web::Data<App>,
    answers: web::Data<Answers>,
    limit: web::Data<BodyLimit>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let body = match body {
        Ok(body) => body,
        Err(e) if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE => {
            let message = format!("the request body is larger than {} bytes", limit.0);
            return refused(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", &message);
        }
        Err(e) => return refused(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()),
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let parsed =
        async_graphql::http::receive_body(content_type, body.as_ref(), MultipartOptions::default())
            .await;
    let mut request = match parsed {
        Ok(request) => request,
        Err(e) => return refused(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()),
    };
    let token = bearer(
        req.headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    // Without a valid token the resolvers answer `unauthorized` themselves.
    let principal = match token {
        Some(token) => app.authenticate(token).await.ok(),
        None => None,
    };
    // Taken before reading: a change during the read makes this answer stale at once.
    let version = app.version();
    // The query last: the lines before it cannot run into it.
    let key = principal.as_ref().and_then(|principal| {
        let variables = serde_json::to_string(&request.variables).ok()?;
        Some(format!(
            "{:?} {:?} {variables}\n{}",
            principal.role, request.operation_name, request.query
        ))
    });
    if let Some(answer) = key.as_deref().and_then(|key| answers.get(version, key)) {
        return answer.respond(&req, GRAPHQL_JSON);
    }
    // Parsed once: the request keeps the document for its execution.
    let key = key.filter(|_| request.parsed_query().is_ok_and(reads_the_listing_only));
    let mut request = request.data(app.get_ref().clone());
    if let Some(principal) = principal {
        request = request.data(principal);
    }
    let response = schema.execute(request).await;
    if let Some(key) = key.filter(|_| response.is_ok()) {
        if let Ok(answer) = serde_json::to_vec(&response) {
            let answer = Answer::new(answer);
            answers.keep(version, key, answer.clone());
            return answer.respond(&req, GRAPHQL_JSON);
        }
    }
    match serde_json::to_vec(&response) {
        Ok(body) => HttpResponse::Ok().content_type(GRAPHQL_JSON).body(body),
        Err(e) => refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        ),
    }
}

/// Whether the answer to `document` depends only on what the app's version counts: it only
/// queries the listing as it is now, without `asOf` (the log at an instant) or an account's
/// `history` (the log itself).
fn reads_the_listing_only(document: &ExecutableDocument) -> bool {
    document.operations.iter().all(|(_, operation)| {
        operation.node.ty == OperationType::Query
            && operation
                .node
                .selection_set
                .node
                .items
                .iter()
                .all(|item| match &item.node {
                    Selection::Field(field) => match field.node.name.node.as_str() {
                        "__typename" => true,
                        "accounts" => {
                            field
                                .node
                                .arguments
                                .iter()
                                .all(|(name, _)| name.node != "asOf")
                                && !selects(document, &field.node.selection_set.node, "history")
                        }
                        _ => false,
                    },
                    _ => false,
                })
    })
}

/// Whether `set` selects a field called `name`, at any depth, through fragments too.
fn selects(document: &ExecutableDocument, set: &SelectionSet, name: &str) -> bool {
    set.items.iter().any(|item| match &item.node {
        Selection::Field(field) => {
            field.node.name.node == name || selects(document, &field.node.selection_set.node, name)
        }
        Selection::InlineFragment(fragment) => {
            selects(document, &fragment.node.selection_set.node, name)
        }
        // An unknown fragment fails validation; a cycle too, before this is asked.
        Selection::FragmentSpread(spread) => document
            .fragments
            .get(&spread.node.fragment_name.node)
            .is_none_or(|fragment| selects(document, &fragment.node.selection_set.node, name)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the answer to `query` may be kept; a query that does not parse may not.
    fn kept(query: &str) -> bool {
        async_graphql::parser::parse_query(query)
            .is_ok_and(|document| reads_the_listing_only(&document))
    }

    #[test]
    fn only_queries_of_the_listing_as_it_is_now_are_kept() {
        for query in [
            "{ accounts(first: 10) { nodes { accountId badges { key value } } } }",
            "query Page($b: [String!]) { accounts(badges: $b) { edges { cursor } } __typename }",
            "{ accounts { ...Names } } fragment Names on AccountConnection { nodes { name } }",
        ] {
            assert!(kept(query), "{query}");
        }
        for query in [
            "{ accounts(asOf: \"2026-01-01T00:00:00Z\") { nodes { accountId } } }",
            "{ accounts { nodes { history { type } } } }",
            "{ accounts { ...H } } fragment H on AccountConnection { nodes { history { type } } }",
            "{ accounts { nodes { ... on Account { history { type } } } } }",
            "{ accounts { nodes { name } } organizations { id } }",
            "mutation { removeBadge(accountId: \"111122223333\", key: \"k\") { accountId } }",
            "query A { accounts { nodes { name } } } query B { events { nodes { sequence } } }",
            "{ accounts { nodes { name }",
        ] {
            assert!(!kept(query), "{query}");
        }
    }

    /// Fails when the checked-in SDL differs from the code; `UPDATE_SCHEMAS=1` rewrites it.
    #[test]
    fn schema_graphql_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/schema.graphql");
        let generated = schema().sdl();
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            std::fs::write(path, &generated).expect("write schema/schema.graphql");
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "schema/schema.graphql differs from the code: run `UPDATE_SCHEMAS=1 cargo test schema_graphql` and commit it"
        );
    }
}
