use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::app::AppError;

/// An error as REST answers it: `{"error": {"code", "message"}}` with a 4xx or 500 status.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RestError {
    status: StatusCode,
    code: &'static str,
    message: String,
    aws_error_code: Option<String>,
    denied_actions: Vec<String>,
}

impl RestError {
    /// A 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
            aws_error_code: None,
            denied_actions: Vec::new(),
        }
    }

    /// A 413: the body is larger than `server.max_body_bytes`.
    pub fn too_large(limit: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            message: format!("the request body is larger than {limit} bytes"),
            aws_error_code: None,
            denied_actions: Vec::new(),
        }
    }
}

impl From<AppError> for RestError {
    fn from(e: AppError) -> Self {
        let status = match &e {
            AppError::Invalid { .. } => StatusCode::BAD_REQUEST,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::Rejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let code = e.code();
        let message = match &e {
            // The details are in the log; the caller gets no internals.
            AppError::Unexpected(_) => "internal error; see the daemon's log".to_owned(),
            other => other.to_string(),
        };
        let (aws_error_code, denied_actions) = match e {
            AppError::Rejected {
                aws_error_code,
                denied_actions,
                ..
            } => (aws_error_code, denied_actions),
            _ => (None, Vec::new()),
        };
        Self {
            status,
            code,
            message,
            aws_error_code,
            denied_actions,
        }
    }
}

impl ResponseError for RestError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(aws) = &self.aws_error_code {
            error["aws_error_code"] = json!(aws);
        }
        if !self.denied_actions.is_empty() {
            error["denied_actions"] = json!(self.denied_actions);
        }
        response.json(json!({ "error": error }))
    }
}
