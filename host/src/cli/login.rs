//! `instanode login`: the device flow. The host opens a sign-in session and names a page;
//! the person approves it in a signed-in browser while the CLI polls; the API key it then
//! receives (once) is kept for later commands.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::client::{Client, Failure, save_credentials};
use super::output::Output;

const POLL: Duration = Duration::from_secs(2);

pub async fn run(client: &Client, out: &Output) -> Result<i32, Failure> {
    let session = client.call(Method::POST, "/auth/cli", None).await?;
    let Some(id) = out.id_in(&session, "session_id") else {
        return Ok(1);
    };
    let auth_url = session["auth_url"].as_str().unwrap_or_default();
    out.progress(&format!("open this page, sign in and approve: {auth_url}"));
    let polls = session["expires_in"].as_u64().unwrap_or(600) / POLL.as_secs();
    for _ in 0..polls.max(1) {
        tokio::time::sleep(POLL).await;
        let state = client
            .call(Method::GET, &format!("/auth/cli/{id}"), None)
            .await?;
        let Some(key) = state["api_key"].as_str() else {
            continue;
        };
        let saved = json!({
            "url": client.base,
            "api_key": key,
            "email": state["email"],
            "team_id": state["team_id"],
        });
        let path = save_credentials(&saved)
            .map_err(|e| Failure::Unreachable(format!("cannot keep the API key: {e}")))?;
        let mut shown = state.clone();
        shown["api_key"] = json!("(kept)");
        shown["credentials_file"] = json!(path.display().to_string());
        out.done(
            &format!(
                "signed in as {}",
                state["email"].as_str().unwrap_or_default()
            ),
            &shown,
        );
        return Ok(0);
    }
    out.fail_local(
        "login_expired",
        "nobody approved the sign-in in time",
        "Run `instanode login` again and approve the page it names.",
    );
    Ok(1)
}
