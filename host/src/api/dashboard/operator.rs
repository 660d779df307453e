//! The operator's page: every provider with its version, kinds, health and the version it
//! replaced, with upload, rollback and unload. The operator signs in with the admin token
//! once; the browser then holds a cookie signed with that token (so changing the token signs
//! every browser out), never the token itself. Actions go through the admin API's functions.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Redirect, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{guard, refusal, views};
use crate::api::admin;
use crate::api::auth;
use crate::api::error::ApiError;
use crate::api::json::RawBody;
use crate::api::schema::{CsrfForm, OperatorSignInForm, Swap};
use crate::app::{App, SharedApp};

const COOKIE: &str = "instanode_operator";
const COOKIE_PATH: &str = "/dashboard/operator";
/// How long an operator stays signed in.
const SESSION_SECONDS: i64 = 8 * 3600;
/// The header the upload's script (`views::scripts::UPLOAD`) carries the form token in.
const FORM_TOKEN_HEADER: &str = "x-instanode-form-token";

/// `<expiry>.<hex HMAC-SHA256(admin token, expiry)>`
fn session_value(admin_token: &str, expires: i64) -> String {
    let signature = signer(admin_token, expires).finalize().into_bytes();
    format!("{expires}.{}", hex::encode(signature))
}

/// The MAC over a session's expiry, keyed with the admin token.
fn signer(admin_token: &str, expires: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(admin_token.as_bytes()).expect("any key length");
    mac.update(format!("instanode operator session\0{expires}").as_bytes());
    mac
}

/// The operator cookie's value, when it is one this host signed and it has not expired.
fn operator_session<'a>(app: &App, headers: &'a HeaderMap) -> Option<&'a str> {
    let admin_token = app.admin_token.as_deref()?;
    let value = auth::cookie(headers, COOKIE)?;
    let (expires, signature) = value.split_once('.')?;
    let expires: i64 = expires.parse().ok()?;
    let signature = hex::decode(signature).ok()?;
    // `verify_slice` compares in constant time.
    let genuine = signer(admin_token, expires)
        .verify_slice(&signature)
        .is_ok();
    (genuine && expires > app.clock.now().timestamp()).then_some(value)
}

fn cookie(app: &App, value: &str, seconds: i64) -> String {
    auth::set_cookie(app, COOKIE, value, COOKIE_PATH, "Strict", seconds)
}

/// `GET /dashboard/operator`: the providers, or the sign-in form.
#[utoipa::path(get, path = "/dashboard/operator", tag = "dashboard", operation_id = "operatorPage",
    summary = "Providers, versions and health; the operator sign-in form",
    description = "Signed in by the `instanode_operator` cookie that the admin token is exchanged for.",
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
        (status = "4XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
    ))]
pub async fn show(State(app): State<SharedApp>, headers: HeaderMap) -> Response {
    if app.admin_token.is_none() {
        return refusal(admin::disabled());
    }
    match operator_session(&app, &headers) {
        Some(session) => providers_page(&app, session, None).await.into_response(),
        None => sign_in_page(None).into_response(),
    }
}

/// `POST /dashboard/operator/sign-in` (form field `token`: the admin token).
#[utoipa::path(post, path = "/dashboard/operator/sign-in", tag = "dashboard", operation_id = "operatorSignIn",
    summary = "Exchange the admin token for an operator cookie",
    request_body(content = OperatorSignInForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
        (status = 303, description = "Signed in; to the operator page."),
        (status = "4XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
    ))]
pub async fn sign_in(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Response {
    let Some(admin_token) = app.admin_token.as_deref() else {
        return refusal(admin::disabled());
    };
    // No session yet to bind a form token to; the origin check still applies.
    if let Err(error) = guard::check_origin(&app, &headers) {
        return refusal(error);
    }
    let presented = guard::form(&body).remove("token").unwrap_or_default();
    if !admin::is_admin_token(&app, &presented) {
        return (
            StatusCode::UNAUTHORIZED,
            sign_in_page(Some("That is not this host's admin token.")),
        )
            .into_response();
    }
    let expires = app.clock.now().timestamp() + SESSION_SECONDS;
    let value = session_value(admin_token, expires);
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, COOKIE_PATH.to_string()),
            (header::SET_COOKIE, cookie(&app, &value, SESSION_SECONDS)),
        ],
    )
        .into_response()
}

/// `POST /dashboard/operator/sign-out`.
#[utoipa::path(post, path = "/dashboard/operator/sign-out", tag = "dashboard", operation_id = "operatorSignOut",
    summary = "Clear the operator cookie",
    responses(
        (status = 303, description = "Signed out; to the operator page."),
    ))]
pub async fn sign_out(State(app): State<SharedApp>) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, COOKIE_PATH.to_string()),
            (header::SET_COOKIE, cookie(&app, "", 0)),
        ],
    )
        .into_response()
}

#[utoipa::path(post, path = "/dashboard/operator/providers/{name}/rollback", tag = "dashboard",
    operation_id = "operatorRollback",
    summary = "Go back to a provider's previous version",
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
        (status = "4XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
        (status = 303, description = "No operator session: to the sign-in form."),
    ))]
pub async fn rollback(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawBody(body): RawBody,
) -> Response {
    act(&app, &headers, &name, &body, Action::Rollback).await
}

#[utoipa::path(post, path = "/dashboard/operator/providers/{name}/unload", tag = "dashboard",
    operation_id = "operatorUnload",
    summary = "Take a provider out of service",
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
        (status = "4XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
        (status = 303, description = "No operator session: to the sign-in form."),
    ))]
pub async fn unload(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawBody(body): RawBody,
) -> Response {
    act(&app, &headers, &name, &body, Action::Unload).await
}

enum Action {
    Rollback,
    Unload,
}

/// Runs a provider form's action; the providers page again, saying how it went.
async fn act(app: &App, headers: &HeaderMap, name: &str, form: &Bytes, action: Action) -> Response {
    let Some(session) = operator_session(app, headers) else {
        return Redirect::to(COOKIE_PATH).into_response();
    };
    if let Err(error) = checked_form(app, headers, session, form) {
        return refusal(error);
    }
    let notice = match action {
        Action::Rollback => admin::roll_back(app, name).await.map(|report| {
            format!(
                "{name} rolled back to version {} in {:.1} ms.",
                report.provider.version, report.swap_ms
            )
        }),
        Action::Unload => admin::take_out_of_service(app, name)
            .await
            .map(|_| format!("{name} is out of service until a rollback, an upload or a restart.")),
    };
    let status = match &notice {
        Ok(_) => StatusCode::OK,
        Err(error) => error.status(),
    };
    (status, providers_page(app, session, Some(notice)).await).into_response()
}

/// The page's upload script sends the component's bytes; the answer is the admin API's.
#[utoipa::path(post, path = "/dashboard/operator/providers/{name}/upload", tag = "dashboard",
    operation_id = "operatorUpload",
    summary = "Replace a provider with an uploaded component",
    description = "Sent by the operator page's script with the page's form token in `X-Instanode-Form-Token`; answers like PUT /admin/providers/{name}.",
    params(("X-Instanode-Form-Token" = Option<String>, Header, nullable = false, description = "The operator page's form token.")),
    request_body(content = String, content_type = "application/octet-stream"),
    responses((status = 200, description = "Swapped (or unchanged).", body = Swap)))]
pub async fn upload(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Swap>, ApiError> {
    let Some(session) = operator_session(&app, &headers) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Sign in on the operator page first.",
        ));
    };
    let presented = headers.get(FORM_TOKEN_HEADER).and_then(|v| v.to_str().ok());
    guard::check(&app, &headers, &guard::token_for(session), presented)?;
    admin::upload_component(&app, &name, body).await.map(Json)
}

fn checked_form(
    app: &App,
    headers: &HeaderMap,
    session: &str,
    body: &Bytes,
) -> Result<(), ApiError> {
    let fields = guard::form(body);
    guard::check(
        app,
        headers,
        &guard::token_for(session),
        fields.get(guard::FIELD).map(String::as_str),
    )
}

fn sign_in_page(problem: Option<&str>) -> Html<String> {
    Html(views::operator::sign_in(problem).into_string())
}

async fn providers_page(
    app: &App,
    session: &str,
    notice: Option<Result<String, ApiError>>,
) -> Html<String> {
    let inventory = admin::inventory(app).await;
    let form_token = guard::token_for(session);
    let page = views::operator::providers(&inventory, &form_token, notice.as_ref());
    Html(page.into_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_values_are_bound_to_the_admin_token_and_expiry() {
        let value = session_value("secret", 100);
        let (expires, signature) = value.split_once('.').unwrap();
        assert_eq!(expires, "100");
        let signature = hex::decode(signature).unwrap();
        assert!(signer("secret", 100).verify_slice(&signature).is_ok());
        assert!(signer("other", 100).verify_slice(&signature).is_err());
        assert!(signer("secret", 101).verify_slice(&signature).is_err());
    }

    #[test]
    fn the_upload_script_sends_the_header_the_handler_reads() {
        let script = views::scripts::UPLOAD.source();
        assert!(
            script.contains(&format!("'{FORM_TOKEN_HEADER}': formToken")),
            "{script}"
        );
    }
}
