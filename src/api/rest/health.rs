use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::app::App;

/// Liveness: the process answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Readiness: the store answers.
pub async fn readyz(app: web::Data<App>) -> HttpResponse {
    match sqlx::query("SELECT 1").execute(app.store().pool()).await {
        Ok(_) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Err(e) => {
            tracing::warn!(error = %e, "store unreachable");
            HttpResponse::ServiceUnavailable().json(json!({"status": "store_unreachable"}))
        }
    }
}
