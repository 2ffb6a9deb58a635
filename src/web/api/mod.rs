//! The JSON API under `/api/v1` (SPEC §8), with the same rules as the
//! pages: bearer tokens only (no cookies, so no CSRF), the subscription
//! scope in every query, another subscription's things answer 404, and
//! errors as `{"error":{"code","message","field"}}`. Its OpenAPI document is
//! served at `/api/v1/openapi.json`.

pub mod doc;
pub mod model;
pub mod routes;
pub mod words;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::WebState;
use super::error::{AppError, ErrorCode, ErrorPage};

/// A JSON body whose refusals are API errors.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(AppError::from)?;
        // Read as `T` first, for refusals that name the field at fault;
        // what reads as `T` is JSON, so it reads as a `Value` too.
        let request = Request::from_parts(parts, Body::from(bytes.clone()));
        let axum::Json(value) = axum::Json::<T>::from_request(request, state)
            .await
            .map_err(AppError::from)?;
        check_body(
            &serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            &bytes,
        )?;
        Ok(ApiJson(value))
    }
}

/// A JSON body that may be left out entirely, or sent as `null`
/// (`POST …/claim` with nothing).
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(AppError::from)?;
        let not_json = |e: serde_json::Error| {
            AppError::unreadable(format!("The body is not the JSON expected: {e}"))
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        match serde_json::from_slice::<Value>(&bytes).map_err(not_json)? {
            Value::Null => Ok(OptionalJson(T::default())),
            body => {
                check_body(&body, &bytes)?;
                serde_json::from_value(body)
                    .map(OptionalJson)
                    .map_err(not_json)
            }
        }
    }
}

/// Refuses what serde would read but no route takes: a body that is not a
/// JSON object (serde reads an array as a struct too), or text holding a
/// control character (see `web::input`).
fn check_body(body: &Value, raw: &[u8]) -> Result<(), AppError> {
    if !body.is_object() {
        return Err(AppError::unreadable("The body must be a JSON object"));
    }
    super::input::check_json(raw)
}

async fn no_route() -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "There is no such API route: see /api/v1/openapi.json",
    )
}

pub fn router() -> Router<WebState> {
    use routes::*;
    Router::new()
        .route("/api/v1/openapi.json", get(doc::openapi))
        .route("/api/v1/login", post(login))
        .route("/api/v1/logout", post(logout))
        .route("/api/v1/me", get(me))
        .route("/api/v1/clusters", get(clusters).post(register_cluster))
        .route("/api/v1/clusters/{id}", get(cluster).delete(delete_cluster))
        .route(
            "/api/v1/clusters/{id}/transactions",
            get(cluster_transactions),
        )
        .route("/api/v1/clusters/{id}/drills", post(start_drill))
        .route(
            "/api/v1/clusters/{id}/drill-settings",
            get(drill_settings).put(set_drill_settings),
        )
        .route("/api/v1/drills", get(drills))
        .route("/api/v1/tickets", get(tickets).post(file_ticket))
        .route("/api/v1/tickets/check", post(check_ticket))
        .route("/api/v1/tickets/{id}", get(ticket))
        .route("/api/v1/tickets/{id}/events", get(ticket_events))
        .route("/api/v1/tickets/{id}/messages", get(ticket_messages))
        .route(
            "/api/v1/tickets/{id}/verdict",
            get(ticket_verdict).post(give_verdict),
        )
        .route("/api/v1/tickets/{id}/target", post(change_target))
        .route("/api/v1/tickets/{id}/move-forward", post(move_forward))
        .route("/api/v1/tickets/{id}/go-back", post(go_back))
        .route("/api/v1/tickets/{id}/{action}", post(ticket_action))
        .route("/api/v1/jobs/{id}", get(job))
        .route("/api/v1/zones", get(zones))
        .route("/api/v1/zones/{zone}/{state}", post(set_zone))
        .route("/api/v1/hosts", get(hosts))
        .route(
            "/api/v1/hosts/{name}",
            axum::routing::put(put_host).delete(remove_host),
        )
        .route("/api/v1/users", get(users).post(create_user))
        .route("/api/v1/users/{id}", axum::routing::patch(update_user))
        .route(
            "/api/v1/faults",
            get(faults).post(add_fault).merge(delete(clear_faults)),
        )
        .route("/api/v1/outbox", get(outbox))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/ratings", get(ratings))
        .route("/api/v1/handovers", get(handovers))
        .route("/api/v1/endpoints", get(endpoints).post(create_endpoint))
        .route(
            "/api/v1/endpoints/{id}",
            get(endpoint).patch(update_endpoint).delete(delete_endpoint),
        )
        .route("/api/v1/endpoints/{id}/rotate", post(rotate_endpoint))
        .route("/api/v1/endpoints/{id}/test", post(test_endpoint))
        .route(
            "/api/v1/endpoints/{id}/deliveries",
            get(endpoint_deliveries),
        )
        .route("/api", any(no_route))
        .route("/api/{*rest}", any(no_route))
        .route("/api/v1", any(no_route))
        .route("/api/v1/{*rest}", any(no_route))
}

/// Whether a request is for the API: its answers are JSON, never pages.
pub fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// Gives the API's error shape to the answers under `/api` that no handler
/// wrote, which are plain text otherwise: axum's 405 (its `Allow` header
/// kept) and the body limit's 413, refused before any handler runs.
pub async fn error_bodies(request: Request, next: Next) -> Response {
    if !is_api_path(request.uri().path()) {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    let written = response.extensions().get::<ErrorPage>().is_some();
    if written || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => AppError::new(
            status,
            ErrorCode::MethodNotAllowed,
            format!("This route does not take {method}: the Allow header lists what it does"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => AppError::payload_too_large(),
        StatusCode::NOT_FOUND => AppError::not_found(),
        _ if status.is_client_error() => AppError::new(
            status,
            ErrorCode::InvalidInput,
            "The request is not one this API can read",
        ),
        _ => AppError {
            status,
            ..AppError::internal()
        },
    };
    let mut answer = error.into_response();
    if let Some(allow) = response.headers().get(header::ALLOW) {
        answer.headers_mut().insert(header::ALLOW, allow.clone());
    }
    answer
}
