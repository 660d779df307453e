//! Accounts: sign-in by emailed link, sessions, API keys, and who the caller is.
//!
//! `Authorization: Bearer` takes a session token (24 h, revoked by logout) or an API key
//! (`ink_…`, until revoked).

use axum::Json;
use axum::extract::{Path, State};

use super::query::Query;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::error::ApiError;
use super::json::JsonObject;
use super::schema::{
    ApiKey, ApiKeyCreated, ApiKeyList, ApiKeyRevoked, EmailStart, LinkSent, Me, NewApiKey, Session,
    SignedOut, True,
};
use crate::app::App;
use crate::app::SharedApp;
use crate::store::{Account, NewKey, NewLink};
use crate::tenancy::{email, plans};

/// Emailed links work this long, once.
const LINK_MINUTES: i64 = 15;
const API_KEY_PREFIX: &str = "ink_";

/// The cookie that carries a browser's session token (the dashboard's sign-in).
pub(super) const SESSION_COOKIE: &str = "instanode_session";

/// The signed-in caller behind the request's bearer token.
pub(super) async fn account(app: &App, headers: &HeaderMap) -> Result<Account, ApiError> {
    let token = bearer_token(headers).ok_or_else(unauthorized)?;
    account_for(app, token).await
}

/// The signed-in person behind a session cookie's value, if any (API keys never live in cookies).
pub(super) async fn cookie_account(app: &App, token: &str) -> Option<Account> {
    if token.starts_with(API_KEY_PREFIX) {
        return None;
    }
    account_for(app, token).await.ok()
}

pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// The `Set-Cookie` value that signs a browser in for `seconds`, or (at 0) out.
pub(super) fn session_cookie(app: &App, token: &str, seconds: i64) -> String {
    set_cookie(app, SESSION_COOKIE, token, "/", "Lax", seconds)
}

/// A `Set-Cookie` value the page's scripts cannot read, sent only over HTTPS when the host
/// is served over HTTPS.
pub(super) fn set_cookie(
    app: &App,
    name: &str,
    value: &str,
    path: &str,
    same_site: &str,
    seconds: i64,
) -> String {
    let secure = if app.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite={same_site}; Max-Age={seconds}{secure}"
    )
}

async fn account_for(app: &App, token: &str) -> Result<Account, ApiError> {
    let now = app.clock.now();
    if token.starts_with(API_KEY_PREFIX) {
        return app
            .store
            .account_for_api_key(&hash(token), now)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(unauthorized);
    }
    let claims = app
        .tokens
        .verify_session(token)
        .map_err(|_| unauthorized())?;
    if claims.exp <= now.timestamp()
        || app
            .store
            .is_session_revoked(&claims.jti)
            .await
            .map_err(ApiError::internal)?
    {
        return Err(unauthorized());
    }
    let user = Uuid::parse_str(&claims.sub).map_err(|_| unauthorized())?;
    app.store
        .account(user)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(unauthorized)
}

pub(super) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "This needs a signed-in session or an API key.",
    )
    .action("Sign in (POST /auth/email/start {\"email\": ...}, then follow the emailed link) and send `Authorization: Bearer <session_token>`, or use an API key.")
}

pub(super) fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A fresh single-use secret for a link or a key (64 hex characters).
pub(super) fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// A new API key (`ink_` and 64 hex characters).
pub(super) fn new_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", new_secret())
}

pub(super) fn parse_email(value: Option<&Value>) -> Result<String, ApiError> {
    let text = match value {
        None | Some(Value::Null) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "missing_email",
                "An `email` field is required.",
            )
            .action("Ask the user for their email address and retry with {\"email\": \"...\"}."));
        }
        Some(Value::String(s)) => s,
        Some(_) => "",
    };
    email::parse(text).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_email_format",
            format!("`email` is not a deliverable address: {e}."),
        )
        .action("Ask the user for a valid email address such as name@example.com and retry.")
    })
}

/// Stores a single-use link and mails it.
/// The host's email relay, or the refusal to give when it has none.
pub(super) fn mailer(app: &App) -> Result<&crate::mail::Mailer, ApiError> {
    app.mailer.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "email_not_configured",
            "This server cannot send email, so it cannot sign anyone in.",
        )
        .action("Tell the user this instanode server has no email relay configured ([email] in its config); the operator must add one.")
    })
}

pub(super) async fn send_link(
    app: &App,
    to: &str,
    purpose: &str,
    claimed: &[Uuid],
) -> Result<(), ApiError> {
    let mailer = mailer(app)?;
    let secret = new_secret();
    let now = app.clock.now();
    app.store
        .insert_email_link(&NewLink {
            token_hash: &hash(&secret),
            email: to,
            purpose,
            resource_tokens: claimed,
            now,
            expires_at: now + chrono::Duration::minutes(LINK_MINUTES),
        })
        .await
        .map_err(ApiError::internal)?;
    let link = format!("{}/auth/email/callback?t={secret}", app.public_url);
    let (subject, intro) = match purpose {
        "claim" => (
            "Claim your instanode resources",
            "Follow this link to claim your resources and keep them in your own account:",
        ),
        _ => ("Sign in to instanode", "Follow this link to sign in:"),
    };
    let body = format!(
        "{intro}\n\n{link}\n\nThe link works once, for {LINK_MINUTES} minutes. If you did not ask for it, ignore this message.\n"
    );
    send_mail(mailer, to, subject, body).await
}

/// Sends one message through the relay; a failure is a 503 the caller can retry.
pub(super) async fn send_mail(
    mailer: &crate::mail::Mailer,
    to: &str,
    subject: &str,
    body: String,
) -> Result<(), ApiError> {
    mailer.send(to, subject, body).await.map_err(|e| {
        tracing::warn!(error = %e, "sending an email failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "email_send_failed",
            "The email could not be sent.",
        )
        .action("Retry in a minute; if it keeps failing, the server's email relay is down.")
        .retry_after(60)
    })
}

/// `POST /auth/email/start {email}`: mails a sign-in link. Always 202 for a well-formed
/// address, whether or not an account exists.
#[utoipa::path(post, path = "/auth/email/start", tag = "accounts", operation_id = "startEmailSignIn",
    summary = "Email a sign-in link",
    request_body = EmailStart,
    responses((status = 202, description = "A link is on its way if the address can receive mail.", body = LinkSent)))]
pub async fn email_start(
    State(app): State<SharedApp>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<LinkSent>), ApiError> {
    let email = parse_email(body.get("email"))?;
    send_link(&app, &email, "sign_in", &[]).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(LinkSent {
            ok: True,
            message: "If the address can receive mail, a sign-in link is on its way.".into(),
            expires_in_minutes: LINK_MINUTES,
        }),
    ))
}

#[derive(Deserialize)]
pub struct LinkQuery {
    t: Option<String>,
    /// The same, under the name older links use.
    token: Option<String>,
}

/// `GET /auth/email/callback?t=`: consumes the link, finishes a claim (moving the
/// network's resources to the account), and answers with a session token.
#[utoipa::path(get, path = "/auth/email/callback", tag = "accounts", operation_id = "finishEmailSignIn",
    summary = "Exchange an emailed link for a session",
    params(
        ("t" = Option<String>, Query, nullable = false, description = "From the emailed link."),
        ("token" = Option<String>, Query, nullable = false, deprecated, description = "The same, under its older name."),
    ),
    responses(
        (status = 200, description = "A session token.", body = Session),
        (status = 303, description = "A browser (Accept: text/html first) gets the session as a cookie and is sent to /dashboard."),
    ))]
pub async fn email_callback(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Query(query): Query<LinkQuery>,
) -> Result<Response, ApiError> {
    let invalid = || {
        ApiError::new(
            StatusCode::GONE,
            "link_invalid",
            "This link is unknown, already used, or older than 15 minutes.",
        )
        .action("Ask for a new link (POST /auth/email/start, or POST /claim again for a claim).")
    };
    let secret = query
        .t
        .or(query.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(invalid)?;
    let now = app.clock.now();
    let link = app
        .store
        .use_email_link(&hash(&secret), now)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(invalid)?;
    let account = app
        .store
        .account_for_email(&link.email, plans::FREE, now)
        .await
        .map_err(ApiError::internal)?;
    let claimed = match (link.purpose.as_str(), link.resource_tokens.as_deref()) {
        ("claim", Some(tokens)) => app
            .store
            .move_to_team(tokens, account.team_id, &account.tier, now)
            .await
            .map_err(ApiError::internal)?,
        _ => 0,
    };
    let (token, claims) = app
        .tokens
        .session_token(account.user_id, account.team_id, &account.email, now)
        .map_err(ApiError::internal)?;
    // A browser is signed in to the dashboard by cookie; API clients get the token.
    if wants_html(&headers) {
        let cookie = session_cookie(&app, &token, claims.exp - now.timestamp());
        return Ok((
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/dashboard".to_string()),
                (header::SET_COOKIE, cookie),
            ],
        )
            .into_response());
    }
    Ok(Json(Session {
        ok: True,
        session_token: token,
        token_type: "Bearer".into(),
        expires_at: DateTime::<Utc>::from_timestamp(claims.exp, 0),
        user_id: account.user_id,
        team_id: account.team_id,
        email: account.email,
        tier: account.tier,
        claimed_resources: claimed,
    })
    .into_response())
}

/// Whether the caller is a browser following a link (it asks for HTML first).
pub(super) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.starts_with("text/html"))
}

/// `GET /auth/me`.
#[utoipa::path(get, path = "/auth/me", tag = "accounts", operation_id = "me",
    summary = "The signed-in account",
    security(("bearer" = [])),
    responses((status = 200, description = "The account.", body = Me)))]
pub async fn me(State(app): State<SharedApp>, headers: HeaderMap) -> Result<Json<Me>, ApiError> {
    let account = account(&app, &headers).await?;
    Ok(Json(Me {
        ok: True,
        user_id: account.user_id,
        team_id: account.team_id,
        team_name: account.team_name,
        email: account.email,
        tier: account.tier,
    }))
}

/// `POST /auth/logout`: revokes the session token sent; always 200.
#[utoipa::path(post, path = "/auth/logout", tag = "accounts", operation_id = "logout",
    summary = "End the session",
    security(("bearer" = [])),
    responses((status = 200, description = "Signed out.", body = SignedOut)))]
pub async fn logout(
    State(app): State<SharedApp>,
    headers: HeaderMap,
) -> Result<Json<SignedOut>, ApiError> {
    if let Some(token) = bearer_token(&headers) {
        revoke_session_token(&app, token).await?;
    }
    Ok(Json(SignedOut {
        ok: True,
        message: "Signed out.".into(),
    }))
}

/// Revokes the session `token` stands for (its `jti`); anything else is ignored.
pub(super) async fn revoke_session_token(app: &App, token: &str) -> Result<(), ApiError> {
    let Ok(claims) = app.tokens.verify_session(token) else {
        return Ok(());
    };
    let expires_at = DateTime::<Utc>::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now);
    app.store
        .revoke_session(&claims.jti, expires_at)
        .await
        .map_err(ApiError::internal)
}

/// `POST /api/v1/auth/api-keys {name}`: a new key, shown once.
#[utoipa::path(post, path = "/api/v1/auth/api-keys", tag = "accounts", operation_id = "createApiKey",
    summary = "Create an API key",
    security(("bearer" = [])),
    request_body = NewApiKey,
    responses((status = 201, description = "The key, shown once.", body = ApiKeyCreated)))]
pub async fn create_api_key(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<ApiKeyCreated>), ApiError> {
    let account = account(&app, &headers).await?;
    let name = match body
        .get("name")
        .and_then(Value::as_str)
        .and_then(api_key_name)
    {
        Some(name) => name.to_string(),
        None => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_name",
                "`name` must be 1-120 characters.",
            )
            .action("Retry with a label for the key, e.g. {\"name\": \"laptop cli\"}."));
        }
    };
    let skip_delete_confirmation = match body.get("skip_delete_confirmation") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(skip)) => *skip,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "`skip_delete_confirmation` must be true or false.",
            )
            .action("Retry with {\"name\": \"ci\", \"skip_delete_confirmation\": true} or without the field."));
        }
    };
    let created = issue_api_key(&app, &account, name, skip_delete_confirmation).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// How long a key's name may be, in characters.
const API_KEY_NAME_CHARS: std::ops::RangeInclusive<usize> = 1..=120;

/// `raw` as a key's name (trimmed), if it is one: the API and the dashboard agree on this.
pub fn api_key_name(raw: &str) -> Option<&str> {
    let name = raw.trim();
    API_KEY_NAME_CHARS
        .contains(&name.chars().count())
        .then_some(name)
}

/// How many characters of a key are kept in the clear, so people can tell keys apart.
const API_KEY_SHOWN_CHARS: usize = 12;

/// The part of a key kept in the clear.
pub(super) fn shown_part(key: &str) -> &str {
    key.get(..API_KEY_SHOWN_CHARS).unwrap_or(key)
}

/// Makes a new key for `account`'s team (the API and the dashboard both use this).
pub(super) async fn issue_api_key(
    app: &App,
    account: &Account,
    name: String,
    skip_delete_confirmation: bool,
) -> Result<ApiKeyCreated, ApiError> {
    let key = new_api_key();
    let now = app.clock.now();
    let stored = NewKey {
        hash: &hash(&key),
        prefix: shown_part(&key),
    };
    let id = app
        .store
        .insert_api_key(account, &name, &stored, skip_delete_confirmation, now)
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiKeyCreated {
        ok: True,
        id,
        key,
        name,
        skip_delete_confirmation,
        created_at: now,
        note: "Store the key now: it is shown only once. Send it as `Authorization: Bearer <key>`."
            .into(),
    })
}

/// `GET /api/v1/auth/api-keys`.
#[utoipa::path(get, path = "/api/v1/auth/api-keys", tag = "accounts", operation_id = "listApiKeys",
    summary = "The team's API keys",
    security(("bearer" = [])),
    responses((status = 200, description = "The keys (never their secrets).", body = ApiKeyList)))]
pub async fn list_api_keys(
    State(app): State<SharedApp>,
    headers: HeaderMap,
) -> Result<Json<ApiKeyList>, ApiError> {
    let account = account(&app, &headers).await?;
    let keys = app
        .store
        .team_api_keys(account.team_id)
        .await
        .map_err(ApiError::internal)?;
    let items: Vec<ApiKey> = keys
        .into_iter()
        .map(|k| ApiKey {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked: k.revoked_at.is_some(),
        })
        .collect();
    Ok(Json(ApiKeyList {
        ok: True,
        total: items.len(),
        items,
    }))
}

/// `DELETE /api/v1/auth/api-keys/{id}`.
#[utoipa::path(delete, path = "/api/v1/auth/api-keys/{id}", tag = "accounts", operation_id = "revokeApiKey",
    summary = "Revoke an API key",
    security(("bearer" = [])),
    responses((status = 200, description = "Revoked.", body = ApiKeyRevoked)))]
pub async fn revoke_api_key(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyRevoked>, ApiError> {
    let account = account(&app, &headers).await?;
    let id = revoke_key(&app, &account, &id).await?;
    Ok(Json(ApiKeyRevoked {
        ok: True,
        id,
        revoked: true,
    }))
}

/// Revokes one of `account`'s team's keys (the API and the dashboard both use this).
pub(super) async fn revoke_key(app: &App, account: &Account, id: &str) -> Result<Uuid, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "api_key_not_found",
            "Your team has no such key.",
        )
        .action("List the keys with GET /api/v1/auth/api-keys and use one of their ids.")
    };
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    if !app
        .store
        .revoke_api_key(account.team_id, id, app.clock.now())
        .await
        .map_err(ApiError::internal)?
    {
        return Err(not_found());
    }
    Ok(id)
}
