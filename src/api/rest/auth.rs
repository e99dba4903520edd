//! Bearer tokens: a middleware authenticates every `/api/v1` request before any of its input
//! is read (so a stranger learns nothing from validation errors), and the [`Viewer`] and
//! [`Admin`] extractors check the role.

use std::future::{ready, Ready};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};

use crate::app::{App, AppError, Principal, Role};

use super::RestError;

/// Authenticates the request's bearer token and keeps its [`Principal`] for the extractors.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let app = req
        .app_data::<web::Data<App>>()
        .cloned()
        .ok_or_else(|| RestError::from(AppError::Unexpected("no application service".into())))?;
    let token = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| RestError::from(AppError::Unauthorized))?;
    let principal = app.authenticate(token).await.map_err(RestError::from)?;
    req.extensions_mut().insert(principal);
    next.call(req).await
}

fn principal(req: &HttpRequest) -> Result<Principal, RestError> {
    req.extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| AppError::Unauthorized.into())
}

/// A caller with any valid token.
pub struct Viewer;

/// A caller with an admin token.
pub struct Admin(pub Principal);

impl FromRequest for Viewer {
    type Error = RestError;
    type Future = Ready<Result<Self, RestError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(principal(req).map(|_| Viewer))
    }
}

impl FromRequest for Admin {
    type Error = RestError;
    type Future = Ready<Result<Self, RestError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(principal(req).and_then(|p| match p.role {
            Role::Admin => Ok(Admin(p)),
            Role::Viewer => Err(AppError::Forbidden.into()),
        }))
    }
}
