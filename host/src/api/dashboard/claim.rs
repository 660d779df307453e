//! The claim page an `upgrade` link opens (`/start?t=<upgrade_jwt>`): the resource the link
//! stands for, and a form that emails the link that moves it into the person's account.

use axum::extract::State;
use axum::response::Html;
use serde_json::Value;

use super::page::{self, COUNTDOWN};
use crate::api::claim::{TokenQuery, preview_of};
use crate::api::query::Query;
use crate::app::SharedApp;
use crate::html::escape;

pub async fn start(State(app): State<SharedApp>, Query(query): Query<TokenQuery>) -> Html<String> {
    let token = query.t.unwrap_or_default();
    let body = match preview_of(&app, &token).await {
        Ok(preview) if preview["already_claimed"] == true => {
            "<p class=\"notice\">These resources were already claimed. Open the link we emailed, or <a href=\"/dashboard\">sign in</a>.</p>".to_string()
        }
        Ok(preview) => claim_form(&token, &preview),
        Err(error) => format!(
            "{}<p>Ask the agent that created your resources for its latest claim link, or <a href=\"/dashboard\">sign in</a>.</p>",
            page::refusal_line(error.code(), error.message(), None)
        ),
    };
    Html(page::layout(
        "Claim your resources",
        &format!("<h1>Keep what you built</h1>{body}"),
    ))
}

fn claim_form(token: &str, preview: &Value) -> String {
    let text = |v: &Value| escape(v.as_str().unwrap_or("-"));
    let items = preview["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let rows: String = items
        .iter()
        .map(|item| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                text(&item["kind"]),
                text(&item["name"]),
                text(&item["status"]),
                page::expires(item),
            )
        })
        .collect();
    // The token is only ever placed in a JSON string literal, with `<` escaped.
    let token_json = serde_json::to_string(token)
        .unwrap_or_else(|_| "\"\"".into())
        .replace('<', "\\u003c");
    format!(
        r#"<p>This resource ends when its time runs out. Enter your email: we send a link, and
opening it moves it into your own account, where it lasts.</p>
<table id="claimable"><thead><tr><th>kind</th><th>name</th><th>status</th><th>expires in</th></tr></thead>
<tbody>{rows}</tbody></table>
<form id="claim"><p><input id="email" type="email" required placeholder="you@example.com" size="32">
<button type="submit">Email me the link</button></p></form>
<p id="result" role="status"></p>
<script>
const token = {token_json};
document.getElementById("claim").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const response = await fetch("/claim", {{method: "POST", headers: {{"Content-Type": "application/json"}},
    body: JSON.stringify({{token, email: document.getElementById("email").value}})}});
  const body = await response.json();
  document.getElementById("result").textContent = body.ok ? body.message : (body.message || body.error) + " " + (body.agent_action || "");
}});
</script>
{COUNTDOWN}"#
    )
}
