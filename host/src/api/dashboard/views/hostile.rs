//! Every page that shows text someone else chose (resource, team and provider names,
//! emails, messages, tokens from a link) shows it escaped: markup in a name stays text.
//! (Ids, statuses and timestamps are typed, so they cannot carry markup.)

use std::collections::BTreeMap;

use axum::http::StatusCode;
use maud::Markup;
use uuid::Uuid;

use super::resource::Resource;
use super::{claim, deployment, operator, overview, refusal, resource};
use crate::api::error::ApiError;
use crate::api::schema::{
    ClaimItem, ClaimPreview, PreviousVersion, Provider, ProviderHealth, Providers,
    Resource as Described, ResourceCredentials, Sandbox, True,
};
use crate::store::{Account, CredentialEvent, ResourceStatus};

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

/// A described resource whose every text field is `text`.
pub(super) fn item(text: &str) -> Described {
    Described {
        ok: None,
        id: Uuid::nil(),
        token: Uuid::nil(),
        name: text.into(),
        kind: text.into(),
        env: text.into(),
        tier: text.into(),
        status: ResourceStatus::Active,
        limits: BTreeMap::from([(text.to_string(), 1)]),
        usage: None,
        storage_bytes: None,
        storage_limit_bytes: None,
        storage_exceeded: false,
        suspended_at: None,
        created_at: chrono::Utc::now(),
        expires_at: Some(chrono::Utc::now()),
    }
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
    // Team, email, tier; the row's kind and name.
    assert_escaped(overview::page(&account, &[item(HOSTILE)], &[]), 5);
}

#[test]
fn resource_page() {
    let item = item(HOSTILE);
    let credentials = ResourceCredentials {
        ok: True,
        token: Uuid::nil(),
        kind: HOSTILE.into(),
        connection_url: HOSTILE.into(),
        internal_url: None,
        fields: BTreeMap::from([(HOSTILE.to_string(), HOSTILE.to_string())]),
        rotated: None,
    };
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
    // Name, kind, environment, tier, a limit's name; a credential's URL, a field's name and
    // value; an event's actor, action and surface.
    assert_escaped(resource::page(&shown, HOSTILE), 11);
    let hidden = Resource {
        credentials: None,
        ..shown
    };
    // No credentials, but the reveal form and its form token.
    assert_escaped(resource::page(&hidden, HOSTILE), 9);
}

#[test]
fn claim_page() {
    let claimable = ClaimItem {
        name: HOSTILE.into(),
        kind: HOSTILE.into(),
        tier: HOSTILE.into(),
        status: ResourceStatus::Active,
        created_at: chrono::Utc::now(),
        expires_at: None,
    };
    let preview = Ok(ClaimPreview {
        ok: True,
        token_valid: true,
        already_claimed: false,
        items: vec![claimable.clone()],
        resources: vec![claimable],
        expires_at: None,
    });
    // The token in the form; kind and name of the item.
    assert_escaped(claim::page(HOSTILE, &preview), 3);
    let refused = Err(ApiError::new(StatusCode::BAD_REQUEST, HOSTILE, HOSTILE));
    assert_escaped(claim::page(HOSTILE, &refused), 2);
}

#[test]
fn operator_pages() {
    let inventory = Providers {
        ok: True,
        providers: vec![Provider {
            name: HOSTILE.into(),
            version: HOSTILE.into(),
            kinds: vec![HOSTILE.into()],
            sha256: HOSTILE.into(),
            loaded_at: chrono::Utc::now(),
            source: HOSTILE.into(),
            grants: Vec::new(),
            deployer: false,
            sandbox: Sandbox {
                call_timeout_ms: 1,
                host_wait_ms: 0,
                memory_mb: 1,
                max_instances: 1,
                breaker_failures: 1,
                breaker_open_ms: 1,
            },
            health: ProviderHealth {
                breaker: "closed".into(),
                tripped: Vec::new(),
                failures_in_a_row: 0,
                calls_total: 1,
                failures_total: 0,
                last_failure: None,
                last_failure_at: None,
                retry_after_seconds: None,
            },
            previous: Some(PreviousVersion {
                version: HOSTILE.into(),
                sha256: HOSTILE.into(),
                loaded_at: chrono::Utc::now(),
            }),
        }],
        unloaded: vec![HOSTILE.into()],
    };
    // The table's form token; the loaded provider's row (its name twice, version, kinds,
    // source, two forms' actions and tokens, the rollback label, the upload input) and the
    // unloaded one's (its name twice, one form's action and token, the upload input).
    let rows = 1 + 11 + 5;
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
