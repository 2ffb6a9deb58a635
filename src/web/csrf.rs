//! Cross-site request forgery defence for the pages: every form carries a
//! per-session random token in a hidden `csrf` field, compared in constant
//! time on every state-changing request; and requests a browser marks as
//! cross-site (`Sec-Fetch-Site`, `Origin`) are refused before that. The JSON
//! API authenticates by bearer token only, so it needs neither.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use super::error::{AppError, ErrorCode};
use crate::app::App;

const KEY: &str = "csrf";
/// The hidden field every form carries.
pub const FIELD: &str = "csrf";
/// Largest form body the pages accept.
pub const MAX_FORM_BYTES: usize = 256 * 1024;

fn fresh() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The session's token, created on first use.
pub async fn token(session: &Session) -> Result<String, AppError> {
    if let Some(token) = session.get::<String>(KEY).await? {
        return Ok(token);
    }
    let token = fresh();
    session.insert(KEY, &token).await?;
    Ok(token)
}

/// A new token, at sign-in: nothing learnt before it stays valid.
pub async fn renew(session: &Session) -> Result<(), AppError> {
    session.insert(KEY, fresh()).await?;
    Ok(())
}

fn same_origin(headers: &HeaderMap, public_url: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or_default();
        if !(site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none")) {
            return false;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Not a browser, or an old one: the token still has to match.
        return true;
    };
    let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
    if origin.eq_ignore_ascii_case(public_url.trim_end_matches('/')) {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let bare = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    !host.is_empty() && bare.is_some_and(|b| b.eq_ignore_ascii_case(host))
}

fn token_in_form(body: &[u8]) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(name, _)| name == FIELD)
        .map(|(_, value)| value.into_owned())
}

/// Refuses a state-changing page request that is cross-site or lacks the
/// session's token. Runs inside the session layer.
pub async fn guard(State(app): State<App>, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    if !same_origin(request.headers(), &app.settings.public_url()) {
        tracing::warn!(path = %request.uri().path(), "cross-site form post refused");
        return AppError::csrf().into_response();
    }
    let Some(session) = request.extensions().get::<Session>().cloned() else {
        return AppError::internal().into_response();
    };
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, MAX_FORM_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return AppError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                format!(
                    "The form is larger than {} KiB: shorten the text and try again",
                    MAX_FORM_BYTES / 1024
                ),
            )
            .into_response();
        }
    };
    let expected = match session.get::<String>(KEY).await {
        Ok(Some(token)) => token,
        Ok(None) => return AppError::csrf().into_response(),
        Err(error) => return AppError::from(error).into_response(),
    };
    let sent = token_in_form(&bytes).unwrap_or_default();
    let matches: bool = sent.as_bytes().ct_eq(expected.as_bytes()).into();
    if !matches {
        tracing::warn!(path = %parts.uri.path(), "form post without a valid csrf token refused");
        return AppError::csrf().into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_rules() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&h, "http://desk.example"));
        h.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&h, "http://desk.example"));
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(!same_origin(&h, "http://desk.example"));
        h.insert(header::ORIGIN, "http://desk.example".parse().unwrap());
        assert!(same_origin(&h, "http://desk.example"));
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(!same_origin(&h, "http://desk.example"));
        h.insert(header::ORIGIN, "null".parse().unwrap());
        h.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(!same_origin(&h, "http://desk.example"));
    }

    #[test]
    fn token_is_read_from_the_form() {
        assert_eq!(
            token_in_form(b"a=1&csrf=abc%20d&b=2").as_deref(),
            Some("abc d")
        );
        assert_eq!(token_in_form(b"a=1"), None);
    }
}
