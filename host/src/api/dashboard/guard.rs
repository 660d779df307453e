//! What keeps another site from acting through a signed-in browser: every form that changes
//! something carries a token derived from the session cookie (a page of another origin
//! cannot read it), and the request must come from this host's own pages.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use sha2::{Digest, Sha256};

use crate::api::error::ApiError;
use crate::app::App;
use crate::tenancy::tokens::secrets_equal;

/// The form field that carries the token.
pub const FIELD: &str = "csrf";

/// The token a session's forms carry: derived from the session, so it needs no storage and
/// ends with it.
pub fn token_for(session: &str) -> String {
    let digest = Sha256::digest(format!("instanode form token\0{session}").as_bytes());
    hex::encode(&digest[..16])
}

/// The fields of an `application/x-www-form-urlencoded` body.
pub fn form(body: &Bytes) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// Refuses a state-changing request unless it comes from this host's pages carrying
/// `expected`, the session's form token.
pub fn check(
    app: &App,
    headers: &HeaderMap,
    expected: &str,
    presented: Option<&str>,
) -> Result<(), ApiError> {
    let token_ok = presented.is_some_and(|p| secrets_equal(p, expected));
    if token_ok {
        check_origin(app, headers)
    } else {
        Err(rejected())
    }
}

/// Refuses a request another site's page sent (for forms before any session exists).
pub fn check_origin(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    if same_origin(app, headers) {
        Ok(())
    } else {
        Err(rejected())
    }
}

fn rejected() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf_rejected",
        "This form did not come from this dashboard's own page.",
    )
    .action("Reload the dashboard page and submit the form again.")
}

/// Browsers send `Origin` with every POST; when present it must be this host.
fn same_origin(app: &App, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if origin == app.public_url {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let bare = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    bare.is_some() && bare == host
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_differ_per_session_and_are_stable() {
        assert_eq!(token_for("a"), token_for("a"));
        assert_ne!(token_for("a"), token_for("b"));
        assert_eq!(token_for("a").len(), 32);
    }
}
