//! Errors as `application/problem+json` (RFC 9457) responses.
//!
//! Owns: [`Problem`] and its statuses.
//!
//! Must never: leak internals: a problem names the field or the reason the
//! client can act on, nothing else.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A problem response.
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(skip)]
    status: StatusCode,
    #[serde(skip)]
    retry_after_seconds: Option<u64>,
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    kind: String,
    /// A short summary.
    title: &'static str,
    /// The status code, again, in the body.
    #[serde(rename = "status")]
    code: u16,
    /// What exactly went wrong.
    detail: String,
    /// The offending field, as a path (`lines[0].quantity`).
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl Problem {
    fn new(status: StatusCode, kind: &str, title: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            retry_after_seconds: None,
            kind: format!("https://stockroom.invalid/problems/{kind}"),
            title,
            code: status.as_u16(),
            detail: detail.into(),
            field: None,
        }
    }

    /// 400: the request cannot be understood (a missing header, bad JSON).
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request", detail)
    }

    /// 422: well-formed, but a field is invalid.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Problem {
        let mut problem = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "Invalid field", detail);
        problem.field = Some(field.into());
        problem
    }

    /// 409: a conflict with the current state (a reused key, a wrong state).
    pub fn conflict(kind: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, kind, "Conflict", detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 429 with `Retry-After`.
    pub fn shed(retry_after_seconds: u64) -> Problem {
        let mut problem =
            Problem::new(StatusCode::TOO_MANY_REQUESTS, "shed", "Too many requests", "the order intake is full");
        problem.retry_after_seconds = Some(retry_after_seconds);
        problem
    }

    /// 429 with `Retry-After`: the service is behind (see `admission`).
    pub fn behind(retry_after_seconds: u64) -> Problem {
        let mut problem = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "behind",
            "Too many requests",
            "the service is behind; new orders are refused until it catches up",
        );
        problem.retry_after_seconds = Some(retry_after_seconds);
        problem
    }

    /// 503: draining.
    pub fn draining() -> Problem {
        let mut problem = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "Service draining",
            "the service is shutting down and accepts no new orders",
        );
        problem.retry_after_seconds = Some(1);
        problem
    }

    /// 503: the change was applied but the journal could not make it
    /// durable (a write or fsync failed): it must not be taken as done.
    pub fn not_durable(reason: impl Into<String>) -> Problem {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not-durable", "Not durable", reason)
    }

    /// 504: a synchronous order was not decided in time (it stays queued).
    pub fn undecided(location: &str) -> Problem {
        Problem::new(StatusCode::GATEWAY_TIMEOUT, "undecided", "Not decided in time", location.to_owned())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status;
        let retry_after = self.retry_after_seconds;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
