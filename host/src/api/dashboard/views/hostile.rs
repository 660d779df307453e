//! Every page that shows text someone else chose (resource, team and provider names,
//! emails, messages, tokens from a link) shows it escaped: markup in a name stays text.

use axum::http::StatusCode;
use maud::Markup;
use serde_json::json;
use uuid::Uuid;

use super::resource::Resource;
use super::{claim, deployment, operator, overview, refusal, resource};
use crate::api::error::ApiError;
use crate::store::{Account, CredentialEvent};

/// A name built to run a script if it reached the page as markup, in text or in an
/// attribute value.
const HOSTILE: &str = r#"<script>alert(1)</script>"><img src=x onerror=alert(1)>"#;
const ESCAPED: &str =
    "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;";

/// `page` has the hostile text only escaped, in each of the `places` it shows it.
fn assert_escaped(page: Markup, places: usize) {
    let page = page.into_string();
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert_eq!(page.matches(ESCAPED).count(), places, "{page}");
}

fn hostile_item() -> serde_json::Value {
    json!({
        "token": HOSTILE, "kind": HOSTILE, "name": HOSTILE, "status": HOSTILE,
        "env": HOSTILE, "tier": HOSTILE, "created_at": HOSTILE, "expires_at": HOSTILE,
        "limits": { HOSTILE: HOSTILE },
    })
}

#[test]
fn overview() {
    let account = Account {
        user_id: Uuid::nil(),
        email: HOSTILE.into(),
        team_id: Uuid::nil(),
        team_name: HOSTILE.into(),
        tier: HOSTILE.into(),
    };
    let item = hostile_item();
    // Team, email, tier; the row's token (twice), kind, name, status, lifetime.
    assert_escaped(overview::page(&account, &[item], &[]), 9);
}

#[test]
fn resource_page() {
    let item = hostile_item();
    let credentials = json!({
        "connection_url": HOSTILE,
        "fields": { HOSTILE: HOSTILE },
    });
    let event = CredentialEvent {
        resource_token: Uuid::nil(),
        team_id: Uuid::nil(),
        actor: HOSTILE.into(),
        action: HOSTILE.into(),
        via: HOSTILE.into(),
        request_id: HOSTILE.into(),
        at: chrono::Utc::now(),
    };
    let shown = Resource {
        item: &item,
        rotatable: false,
        credentials: Some(&credentials),
        events: std::slice::from_ref(&event),
    };
    // Token, name, kind, status, environment, tier, a limit's name, created, lifetime; a
    // credential's URL, a field's name and value; an event's actor, action and surface.
    assert_escaped(resource::page(&shown, HOSTILE), 15);
    let hidden = Resource {
        credentials: None,
        ..shown
    };
    // No credentials, but the reveal form: its action (the token) and the form token.
    assert_escaped(resource::page(&hidden, HOSTILE), 14);
}

#[test]
fn claim_page() {
    let preview = Ok(json!({ "items": [hostile_item()] }));
    // The token in the form; kind, name, status and lifetime of the item.
    assert_escaped(claim::page(HOSTILE, &preview), 5);
    let refused = Err(ApiError::new(StatusCode::BAD_REQUEST, HOSTILE, HOSTILE));
    assert_escaped(claim::page(HOSTILE, &refused), 2);
}

#[test]
fn operator_pages() {
    let inventory = json!({
        "providers": [{
            "name": HOSTILE, "version": HOSTILE, "kinds": [HOSTILE], "sha256": HOSTILE,
            "source": HOSTILE, "loaded_at": HOSTILE, "previous": { "version": HOSTILE },
            "health": { "breaker": "closed", "calls_total": 1, "failures_total": 0 },
        }],
        "unloaded": [HOSTILE],
    });
    // The table's form token; the loaded provider's row (its name twice, version, kinds,
    // source, load time, two forms' actions and tokens, the rollback label, the upload input)
    // and the unloaded one's (its name twice, one form's action and token, the upload input).
    let rows = 1 + 12 + 5;
    let notice = Ok(HOSTILE.to_string());
    assert_escaped(
        operator::providers(&inventory, HOSTILE, Some(&notice)),
        rows + 1,
    );
    let refused = Err(ApiError::new(StatusCode::NOT_FOUND, HOSTILE, HOSTILE));
    assert_escaped(
        operator::providers(&inventory, HOSTILE, Some(&refused)),
        rows + 2,
    );
    assert_escaped(operator::sign_in(Some(HOSTILE)), 1);
}

#[test]
fn refusal_and_deployment_pages() {
    assert_escaped(refusal::page(HOSTILE, HOSTILE), 2);
    assert_escaped(deployment::page(HOSTILE), 2);
}
