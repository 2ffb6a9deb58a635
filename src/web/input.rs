//! The first check on everything a request carries: text with control
//! characters other than tab and line breaks is refused with a 422 naming
//! its field, before any handler reads it, the same on both stores.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};

use super::error::AppError;
use crate::domain::text::{forbidden_char, forbidden_char_message};

fn refuse(field: &str, c: char) -> AppError {
    AppError::invalid(field, forbidden_char_message(field, c))
}

/// Checks every name and value of an `application/x-www-form-urlencoded`
/// body or query string.
pub fn check_pairs(encoded: &[u8]) -> Result<(), AppError> {
    for (name, value) in url::form_urlencoded::parse(encoded) {
        if let Some((_, c)) = forbidden_char(&name) {
            return Err(refuse("field name", c));
        }
        if let Some((_, c)) = forbidden_char(&value) {
            return Err(refuse(&name, c));
        }
    }
    Ok(())
}

/// Checks every string and key of a JSON body. JSON cannot carry a raw
/// control character inside a string, only an escaped one: a body without
/// a backslash needs no closer look.
pub fn check_json(body: &[u8]) -> Result<(), AppError> {
    if !body.contains(&b'\\') {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        // Malformed: the JSON extractor refuses it with its own message.
        return Ok(());
    };
    check_value(&value, "")
}

fn check_value(value: &serde_json::Value, path: &str) -> Result<(), AppError> {
    use serde_json::Value;
    let field = |path: &str| {
        if path.is_empty() {
            "body".to_string()
        } else {
            path.to_string()
        }
    };
    match value {
        Value::String(text) => match forbidden_char(text) {
            Some((_, c)) => Err(refuse(&field(path), c)),
            None => Ok(()),
        },
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_value(item, &format!("{}[{i}]", field(path)))?;
            }
            Ok(())
        }
        Value::Object(members) => {
            for (key, member) in members {
                if let Some((_, c)) = forbidden_char(key) {
                    return Err(refuse("field name", c));
                }
                let inner = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                check_value(member, &inner)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Reads the body of `request` and hands back the same request with it,
/// checked by `check`: the extractor that runs next sees what was sent.
pub async fn checked_body<S: Send + Sync>(
    request: Request,
    state: &S,
    check: fn(&[u8]) -> Result<(), AppError>,
) -> Result<Request, AppError> {
    let (parts, body) = request.into_parts();
    let limited = Request::from_parts(clone_parts(&parts), body);
    let bytes = Bytes::from_request(limited, state)
        .await
        .map_err(AppError::from)?;
    check(&bytes)?;
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// A copy of a request's head: the body reader needs the extensions (its
/// size limit is one) while the original head is kept for the next reader.
fn clone_parts(parts: &axum::http::request::Parts) -> axum::http::request::Parts {
    let mut copy = Request::new(());
    *copy.method_mut() = parts.method.clone();
    *copy.uri_mut() = parts.uri.clone();
    *copy.version_mut() = parts.version;
    *copy.headers_mut() = parts.headers.clone();
    *copy.extensions_mut() = parts.extensions.clone();
    copy.into_parts().0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_by_field() {
        assert!(check_pairs(b"body=hello%0D%0Aworld&x=%09").is_ok());
        let error = check_pairs(b"ok=1&description=a%00b").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("description"));
        assert_eq!(error.status, 422);
        assert!(check_json(br#"{"a":"line\nbreak","b":"tab\t"}"#).is_ok());
        let error = check_json(br#"{"target":{"note":"x\u0000"}}"#).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("target.note"));
        let error = check_json(br#"{"list":["ok","\u001b"]}"#).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("list[1]"));
        assert!(error.message.contains("U+001B"));
    }
}
