//! REST under `/api/v1`: JSON, snake_case, bearer tokens; every error is
//! `{"error": {"code", "message"}}` and bad input is never a 500.

mod accounts;
mod auth;
mod error;
mod events;
mod health;
mod openapi;
mod organizations;
mod tokens;
mod views;

use std::future::Future;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::middleware::from_fn;
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::api::cache::{Answer, Answers};
use crate::app::{App, AppError};

pub use error::RestError;
pub use openapi::ApiDoc;

/// Registers every route, the JSON error handlers and the body size limit.
pub fn configure(cfg: &mut web::ServiceConfig, max_body_bytes: usize) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(max_body_bytes)
            .error_handler(move |e, _| json_error(e, max_body_bytes).into()),
    )
    .app_data(web::PayloadConfig::default().limit(max_body_bytes))
    .app_data(web::QueryConfig::default().error_handler(|e, _| query_error(e).into()))
    .app_data(web::PathConfig::default().error_handler(|e, _| path_error(e).into()))
    // No validator: Swagger UI's default loads a badge from validator.swagger.io, and nothing
    // the daemon serves reaches outside it.
    .service(
        SwaggerUi::new("/api/v1/docs/{_:.*}")
            .url("/api/v1/openapi.json", ApiDoc::openapi())
            .config(utoipa_swagger_ui::Config::default().validator_url("none")),
    )
    .service(web::resource("/healthz").get(health::healthz))
    .service(web::resource("/readyz").get(health::readyz))
    .service(web::resource("/metrics").get(health::metrics))
    .service(
        web::scope("/api/v1")
            .wrap(from_fn(auth::authenticate))
            .configure(organizations::routes)
            .configure(accounts::routes)
            .configure(events::routes)
            .configure(tokens::routes)
            .default_service(web::to(not_found)),
    )
    .default_service(web::to(not_found));
}

fn json_error(e: JsonPayloadError, limit: usize) -> RestError {
    match e {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            RestError::too_large(limit)
        }
        JsonPayloadError::ContentType => RestError::bad_request(
            "invalid_content_type",
            "expected Content-Type: application/json",
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            RestError::bad_request("invalid_field", e.to_string())
        }
        other => RestError::bad_request("invalid_json", other.to_string()),
    }
}

fn query_error(e: QueryPayloadError) -> RestError {
    RestError::bad_request("invalid_query", e.to_string())
}

fn path_error(e: PathError) -> RestError {
    RestError::bad_request("invalid_path", e.to_string())
}

/// The JSON answer to the GET request `req` of the listing: as made before at the app's
/// version, or made by `make` and kept for the next such request.
async fn kept_answer<T: serde::Serialize>(
    app: &App,
    answers: &Answers,
    req: &HttpRequest,
    make: impl Future<Output = Result<T, RestError>>,
) -> Result<HttpResponse, RestError> {
    // Taken before reading: a change during the read makes this answer stale at once.
    let version = app.version();
    let request = req.uri().to_string();
    let answer = match answers.get(version, &request) {
        Some(answer) => answer,
        None => {
            let answer = serde_json::to_vec(&make.await?)
                .map_err(|e| AppError::Unexpected(format!("rendering {request}: {e}")))?;
            let answer = Answer::new(answer);
            answers.keep(version, request, answer.clone());
            answer
        }
    };
    Ok(answer.respond(req, "application/json"))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, RestError> {
    Err(AppError::NotFound(format!("{} {}", req.method(), req.path())).into())
}
