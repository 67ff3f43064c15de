//! What every route of the admin HTTP API shares: JSON errors. A failure is a status (400
//! bad input, 404 unknown thing, 405 wrong method, 409 not possible now, 503 a part of the
//! cluster unavailable) with `{"error": "…"}` naming the problem, including bodies that do
//! not parse and paths that do not exist.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// A failed admin request: an HTTP status and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminError {
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, for a person.
    pub message: String,
}

impl AdminError {
    /// 400: the request is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }

    /// 404: what it names does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: 404,
            message: message.into(),
        }
    }

    /// 409: not possible in the current state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: 409,
            message: message.into(),
        }
    }

    /// 503: a part of the cluster does not answer.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: 503,
            message: message.into(),
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

/// A JSON answer or an error.
pub type Answer<T> = Result<Json<T>, AdminError>;

/// `result` as an answer.
pub fn answer<T>(result: Result<T, AdminError>) -> Answer<T> {
    result.map(Json)
}

/// A JSON request body whose rejection (malformed JSON, a missing field, a wrong content
/// type) is a JSON error like every other.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            // Malformed JSON, a missing field, no JSON content type: all bad requests.
            Err(rejection) => Err(AdminError::bad_request(rejection.body_text())),
        }
    }
}

/// The answer to a path no route serves.
pub async fn no_route(uri: axum::http::Uri) -> AdminError {
    AdminError::not_found(format!(
        "no such path: {} (the API is described at /v1/openapi.json)",
        uri.path()
    ))
}

/// The answer to a method a route does not serve.
pub async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> AdminError {
    AdminError {
        status: 405,
        message: format!("{} does not take {method}", uri.path()),
    }
}
