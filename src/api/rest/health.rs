use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::app::App;
use crate::metrics::METRICS;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", security(), responses((status = 200, description = "alive")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Prometheus metrics, in the text exposition format.
pub async fn metrics(app: web::Data<App>) -> HttpResponse {
    match app.accounts_by_state().await {
        Ok(counts) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(METRICS.render(&counts)),
        Err(e) => HttpResponse::ServiceUnavailable().body(e.to_string()),
    }
}

/// Readiness: the store answers.
#[utoipa::path(get, path = "/readyz", tag = "health", security(),
    responses((status = 200, description = "ready"), (status = 503, description = "the store is unreachable")))]
pub async fn readyz(app: web::Data<App>) -> HttpResponse {
    match app.ready().await {
        Ok(_) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Err(e) => {
            tracing::warn!(error = %e, "store unreachable");
            HttpResponse::ServiceUnavailable().json(json!({"status": "store_unreachable"}))
        }
    }
}
