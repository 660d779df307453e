//! Body extractors that answer in the error envelope: 415 for a body that is not declared
//! JSON, 400 `invalid_body` for malformed JSON, 413 over the size limit.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde_json::{Map, Value};

use super::error::ApiError;

/// Largest JSON body accepted on provisioning routes.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// A JSON object body (an empty body reads as `{}`, so the handler can report what is
/// missing).
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("").to_ascii_lowercase());
        let declared_json = content_type.as_deref().map(is_json_media_type);
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|_| ApiError::payload_too_large(MAX_JSON_BODY))?;
        match declared_json {
            Some(false) => return Err(ApiError::unsupported_media_type()),
            None if !bytes.is_empty() => return Err(ApiError::unsupported_media_type()),
            _ => {}
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Map::new()));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ApiError::invalid_body("expected a JSON object")),
            Err(e) => Err(ApiError::invalid_body(e)),
        }
    }
}

/// Any body up to [`MAX_JSON_BODY`] (signed events, browser forms), refused in the envelope
/// when larger.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(request, state)
            .await
            .map(Self)
            .map_err(|_| ApiError::payload_too_large(MAX_JSON_BODY))
    }
}

/// `application/json`, `application/*+json` and `text/json`, with any parameters.
fn is_json_media_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim();
    essence == "application/json"
        || essence == "text/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::is_json_media_type;

    #[test]
    fn json_media_types() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("application/json; charset=utf-8"));
        assert!(is_json_media_type("application/vnd.api+json"));
        assert!(!is_json_media_type("application/x-www-form-urlencoded"));
        assert!(!is_json_media_type("text/plain"));
    }
}
