//! One resource's page: what it is, how full it is, when it ends, and its credentials on
//! request. Revealing and rotating go through the API's own functions, so both land in the
//! same audit trail whichever surface was used.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use super::page::{self, COUNTDOWN};
use super::{Session, guard, refusal, to_sign_in};
use crate::api::error::ApiError;
use crate::api::json::RawBody;
use crate::api::resources::{self, Via};
use crate::app::{App, SharedApp};
use crate::html::escape;
use crate::store::CredentialEvent;

/// How many audit events the page lists.
const EVENTS_SHOWN: i64 = 20;

#[derive(Clone, Copy)]
enum Action {
    View,
    Reveal,
    Rotate,
}

pub async fn show(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    act(&app, &headers, &token, None, Action::View).await
}

pub async fn reveal(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(token): Path<String>,
    RawBody(body): RawBody,
) -> Response {
    act(&app, &headers, &token, Some(body), Action::Reveal).await
}

pub async fn rotate(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(token): Path<String>,
    RawBody(body): RawBody,
) -> Response {
    act(&app, &headers, &token, Some(body), Action::Rotate).await
}

async fn act(
    app: &App,
    headers: &HeaderMap,
    token: &str,
    form: Option<Bytes>,
    action: Action,
) -> Response {
    let Some(session) = Session::of(app, headers).await else {
        return to_sign_in();
    };
    match render(app, headers, &session, token, form, action).await {
        Ok(html) => Html(html).into_response(),
        Err(error) => refusal(error),
    }
}

async fn render(
    app: &App,
    headers: &HeaderMap,
    session: &Session,
    token: &str,
    form: Option<Bytes>,
    action: Action,
) -> Result<String, ApiError> {
    if let Some(form) = form {
        let fields = guard::form(&form);
        session.check(app, headers, fields.get(guard::FIELD).map(String::as_str))?;
    }
    let row = resources::owned_by(app, &session.account, token).await?;
    let credentials = match action {
        Action::View => None,
        Action::Reveal => {
            Some(resources::reveal(app, &session.account, &row, Via::Dashboard).await?)
        }
        Action::Rotate => {
            Some(resources::rotate(app, &session.account, &row, Via::Dashboard).await?)
        }
    };
    let events = app
        .store
        .credential_events(row.token, EVENTS_SHOWN)
        .await
        .map_err(ApiError::internal)?;
    let item = resources::describe(&row);
    let rotatable = app.kinds.kind(&row.kind).is_some_and(|k| k.rotatable);
    Ok(page(
        session,
        &item,
        rotatable,
        credentials.as_ref(),
        &events,
    ))
}

fn page(
    session: &Session,
    item: &Value,
    rotatable: bool,
    credentials: Option<&Value>,
    events: &[CredentialEvent],
) -> String {
    let text = |v: &Value| escape(v.as_str().unwrap_or("-"));
    let token = text(&item["token"]);
    let form_token = escape(&session.form_token);
    let limits: String = item["limits"]
        .as_object()
        .map(|limits| {
            limits
                .iter()
                .map(|(k, v)| format!("{} {}", escape(k), escape(&v.to_string())))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let rotatable = rotatable && item["status"] == "active";
    let rotate_form = if rotatable {
        format!(
            "<form class=\"inline\" method=\"post\" action=\"/dashboard/resources/{token}/rotate\">\
             <input type=\"hidden\" name=\"{field}\" value=\"{form_token}\">\
             <button id=\"rotate\">Rotate credentials</button></form>\
             <p class=\"muted\">Rotating issues new credentials; the old ones stop working where the backend allows it.</p>",
            field = guard::FIELD
        )
    } else {
        String::new()
    };
    let secrets = match credentials {
        Some(credentials) => shown_credentials(credentials),
        None => format!(
            "<form class=\"inline\" method=\"post\" action=\"/dashboard/resources/{token}/reveal\">\
             <input type=\"hidden\" name=\"{field}\" value=\"{form_token}\">\
             <button id=\"reveal\">Reveal credentials</button></form>\
             <p class=\"muted\">Every reveal is recorded below with your name.</p>",
            field = guard::FIELD
        ),
    };
    page::layout(
        "Resource",
        &format!(
            r#"<p><a href="/dashboard">← Resources</a></p>
<h1>{name} <span class="muted">{kind}</span></h1>
<dl>
<dt>token</dt><dd><code>{token}</code></dd>
<dt>status</dt><dd class="status">{status}</dd>
<dt>environment</dt><dd>{env}</dd>
<dt>tier</dt><dd>{tier}</dd>
<dt>usage</dt><dd>{usage}</dd>
<dt>limits</dt><dd>{limits}</dd>
<dt>created</dt><dd>{created}</dd>
<dt>expires in</dt><dd>{expires}</dd>
</dl>
<h2>Credentials</h2>
{secrets}
{rotate_form}
<h2>Credential history</h2>
{history}
{COUNTDOWN}"#,
            name = text(&item["name"]),
            kind = text(&item["kind"]),
            status = text(&item["status"]),
            env = text(&item["env"]),
            tier = text(&item["tier"]),
            usage = page::usage_bar(item),
            created = text(&item["created_at"]),
            expires = page::expires(item),
            history = history(events),
        ),
    )
}

fn shown_credentials(credentials: &Value) -> String {
    let mut rows = String::new();
    let mut row = |label: &str, value: &Value| {
        if let Some(value) = value.as_str() {
            rows.push_str(&format!(
                "<dt>{}</dt><dd><code class=\"secret\">{}</code></dd>",
                escape(label),
                escape(value)
            ));
        }
    };
    row("connection URL", &credentials["connection_url"]);
    row("internal URL", &credentials["internal_url"]);
    if let Some(fields) = credentials["fields"].as_object() {
        for (name, value) in fields {
            row(name, value);
        }
    }
    let notice = if credentials["rotated"] == true {
        "New credentials issued; the old ones no longer work where the backend allows it."
    } else {
        "Shown once on this page; the reveal was recorded."
    };
    format!(
        "<p class=\"notice\" id=\"credentials-notice\">{notice}</p><dl id=\"credentials\">{rows}</dl>"
    )
}

fn history(events: &[CredentialEvent]) -> String {
    if events.is_empty() {
        return "<p class=\"muted\" id=\"history\">Nobody has revealed or rotated these credentials since they were created.</p>".into();
    }
    let rows: String = events
        .iter()
        .map(|e| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&e.at.to_rfc3339()),
                escape(&e.action),
                escape(&e.actor),
                escape(&e.via),
            )
        })
        .collect();
    format!(
        "<table id=\"history\"><thead><tr><th>when</th><th>what</th><th>who</th><th>through</th></tr></thead><tbody>{rows}</tbody></table>"
    )
}
