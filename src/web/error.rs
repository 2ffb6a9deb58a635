//! One error type for the web edge. It answers the JSON API as
//! `{"error":{"code","message","field"}}`; on the pages, a middleware turns
//! the same error into an HTML page. Causes of 5xx are logged once and never
//! shown.

use axum::Json;
use axum::extract::rejection::{BytesRejection, FormRejection, JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::desk::DeskError;
use crate::domain::restore_job::JobRefusal;
use crate::domain::ticket::Refusal;
use crate::domain::validation::ValidationError;
use crate::store::StoreError;

pub use crate::domain::error_code::ErrorCode;

/// One refusal about one field, as forms show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub code: ErrorCode,
    pub message: String,
    /// The request field refused, or null when the refusal is about no one field.
    #[schema(required = true)]
    pub field: Option<String>,
}

impl From<&ValidationError> for FieldError {
    fn from(e: &ValidationError) -> FieldError {
        FieldError {
            code: e.code.into(),
            message: e.message.clone(),
            field: Some(e.field.clone()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AppError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    /// Every refusal when there are several (a form with many bad fields).
    pub errors: Vec<FieldError>,
    /// Seconds to wait, for 429.
    pub retry_after: Option<u64>,
}

/// The JSON body of every API error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For people: what went wrong and what to do.
    pub message: String,
    /// The request field refused, or null when the refusal is about no one field.
    #[schema(required = true)]
    pub field: Option<String>,
    /// All refusals when several fields are wrong; the first is repeated above.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Marks a response as an error the page layer should render as HTML.
#[derive(Debug, Clone)]
pub struct ErrorPage(pub AppError);

impl AppError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError {
            status,
            code,
            message: message.into(),
            field: None,
            errors: Vec::new(),
            retry_after: None,
        }
    }

    pub fn with_field(mut self, field: &str) -> AppError {
        self.field = Some(field.to_string());
        self
    }

    pub fn not_found() -> AppError {
        AppError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "Not found: it does not exist, or it is not yours to see",
        )
    }

    pub fn forbidden() -> AppError {
        AppError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "Your role may not do this",
        )
    }

    pub fn unauthenticated() -> AppError {
        AppError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "Sign in first: send Authorization: Bearer <token> from POST /api/v1/login",
        )
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> AppError {
        AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidInput,
            message,
        )
        .with_field(field)
    }

    /// A body or query string the desk cannot read at all: no one field.
    pub fn unreadable(message: impl Into<String>) -> AppError {
        AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidInput,
            message,
        )
    }

    pub fn payload_too_large() -> AppError {
        AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            "The request is too large: shorten the text and try again",
        )
    }

    pub fn csrf() -> AppError {
        AppError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Csrf,
            "This form has expired or did not come from this site. Go back, reload the page \
             and try again.",
        )
    }

    pub fn too_many(message: impl Into<String>, retry_after: u64) -> AppError {
        let mut error = AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            message,
        );
        error.retry_after = Some(retry_after.max(1));
        error
    }

    pub fn database_unavailable() -> AppError {
        let mut error = AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::DatabaseUnavailable,
            "The desk's database is not answering right now. Nothing was changed; try again \
             in a minute.",
        );
        error.retry_after = Some(5);
        error
    }

    pub fn internal() -> AppError {
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "Something went wrong on our side. It has been logged; please try again.",
        )
    }

    /// Field errors to show in a form: all of them, or this one alone.
    pub fn field_errors(&self) -> Vec<FieldError> {
        if self.errors.is_empty() {
            vec![FieldError {
                code: self.code,
                message: self.message.clone(),
                field: self.field.clone(),
            }]
        } else {
            self.errors.clone()
        }
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl From<DeskError> for AppError {
    fn from(error: DeskError) -> AppError {
        match error {
            DeskError::NotFound => AppError::not_found(),
            DeskError::Refused(Refusal::Forbidden) => AppError::forbidden(),
            DeskError::Refused(Refusal::BadText { field, message }) => {
                AppError::invalid(field, message)
            }
            DeskError::Refused(Refusal::Invalid(e) | Refusal::WrongDirection(e)) => {
                let mut error = AppError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    e.code.into(),
                    e.message.clone(),
                )
                .with_field(&e.field);
                error.errors = vec![FieldError::from(&e)];
                error
            }
            DeskError::Refused(refusal) => AppError::new(
                StatusCode::CONFLICT,
                refusal.code(),
                capitalised(&refusal.to_string()),
            ),
            DeskError::JobRefused(JobRefusal::Forbidden) => AppError::forbidden(),
            DeskError::JobRefused(refusal) => AppError::new(
                StatusCode::CONFLICT,
                refusal.code(),
                capitalised(&refusal.to_string()),
            ),
            DeskError::Invalid(errors) => {
                let first = errors.first().cloned();
                let mut error = match &first {
                    Some(e) => AppError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        e.code.into(),
                        e.message.clone(),
                    )
                    .with_field(&e.field),
                    None => AppError::invalid("", "The request is not valid"),
                };
                error.errors = errors.iter().map(FieldError::from).collect();
                error
            }
            DeskError::BadInput { field, message } => AppError::invalid(field, message),
            DeskError::Stale => AppError::new(
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                "Someone changed this ticket since you loaded it: reload it and try again",
            ),
            DeskError::Fleet(e) => {
                tracing::warn!(error = %e, "the backup fleet cannot be reached");
                AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::FleetUnavailable,
                    "The backup fleet cannot be reached right now; try again in a minute",
                )
            }
            DeskError::Store(e) => AppError::from(e),
            DeskError::Verdict(refusal) => {
                use crate::domain::verdict::VerdictRefusal as V;
                let message = capitalised(&refusal.to_string());
                match refusal {
                    V::NotRequester => {
                        AppError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
                    }
                    V::NotHandedOver => {
                        AppError::new(StatusCode::CONFLICT, ErrorCode::WrongState, message)
                    }
                    V::AlreadyGiven => {
                        AppError::new(StatusCode::CONFLICT, ErrorCode::VerdictGiven, message)
                    }
                    V::BadInput { field, message } => AppError::invalid(field, message),
                }
            }
            DeskError::Template(e) => {
                tracing::error!(error = %e, "rendering an email failed");
                AppError::internal()
            }
        }
    }
}

impl From<crate::backend::FleetError> for AppError {
    fn from(error: crate::backend::FleetError) -> AppError {
        AppError::from(DeskError::from(error))
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> AppError {
        match error {
            StoreError::Conflict(_) => AppError::from(DeskError::Stale),
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "the database is unavailable");
                AppError::database_unavailable()
            }
            StoreError::StorageFull(cause) => {
                tracing::error!(%cause, "the database's storage is full");
                let mut error = AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::StorageFull,
                    "The desk cannot save anything right now: its storage is full. Nothing was \
                     changed; operators have been alerted, and it will work again as soon as \
                     space is freed. Try again in a few minutes.",
                );
                error.retry_after = Some(60);
                error
            }
            other => {
                tracing::error!(error = %other, "store failure");
                AppError::internal()
            }
        }
    }
}

impl From<askama::Error> for AppError {
    fn from(error: askama::Error) -> AppError {
        tracing::error!(%error, "rendering a page failed");
        AppError::internal()
    }
}

impl From<tower_sessions::session::Error> for AppError {
    fn from(error: tower_sessions::session::Error) -> AppError {
        tracing::error!(%error, "session store failure");
        AppError::internal()
    }
}

fn rejection(status: StatusCode, text: String) -> AppError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return AppError::payload_too_large();
    }
    AppError::unreadable(text)
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> AppError {
        rejection(r.status(), r.body_text())
    }
}

impl From<FormRejection> for AppError {
    fn from(r: FormRejection) -> AppError {
        rejection(r.status(), r.body_text())
    }
}

impl From<BytesRejection> for AppError {
    fn from(r: BytesRejection) -> AppError {
        rejection(r.status(), r.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> AppError {
        rejection(r.status(), r.body_text())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.clone(),
                field: self.field.clone(),
                errors: if self.errors.len() > 1 {
                    self.errors.clone()
                } else {
                    Vec::new()
                },
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"restore-desk\""),
            );
        }
        response.extensions_mut().insert(ErrorPage(self));
        response
    }
}

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validation::ValidationCode;

    #[test]
    fn validation_codes_keep_their_names() {
        for code in ValidationCode::ALL {
            assert_eq!(
                serde_json::to_value(ErrorCode::from(code)).unwrap(),
                code.as_str(),
            );
        }
    }
}
