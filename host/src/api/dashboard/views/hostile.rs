//! Every page that shows text someone else chose (resource, team and provider names,
//! emails, messages, tokens from a link) shows it escaped: markup in a name stays text.
//! (Ids, statuses and timestamps are typed, so they cannot carry markup.)

use std::collections::BTreeMap;

use axum::http::StatusCode;
use maud::Markup;
use uuid::Uuid;

use super::resource::Resource;
use super::{
    claim, deployment, deployments, operator, overview, refusal, resource, resources, settings,
    stack, team, vault,
};
use crate::api::error::ApiError;
use crate::api::schema::{
    ApiKeyCreated, ClaimItem, ClaimPreview, Deployment, Invitation, PreviousVersion, Provider,
    ProviderHealth, Providers, Resource as Described, ResourceCredentials, Sandbox, True,
    VaultSecret,
};
use crate::store::{
    Account, Activity, ApiKeyRow, CredentialEvent, DeploymentStatus, Member, ResourceStatus,
    StackRow,
};

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

/// An account whose email, team and tier are `HOSTILE`.
fn account() -> Account {
    Account {
        user_id: Uuid::nil(),
        email: HOSTILE.into(),
        team_id: Uuid::nil(),
        team_name: HOSTILE.into(),
        tier: HOSTILE.into(),
    }
}

/// The header shows the email and the tier.
const HEADER: usize = 2;

/// An app whose every text field is `HOSTILE`.
fn app_item() -> Deployment {
    Deployment {
        id: Uuid::nil(),
        app_id: HOSTILE.into(),
        token: Uuid::nil(),
        name: HOSTILE.into(),
        url: Some(HOSTILE.into()),
        status: DeploymentStatus::Healthy,
        port: 8080,
        tier: HOSTILE.into(),
        generation: 1,
        error: Some(HOSTILE.into()),
        error_message: Some(HOSTILE.into()),
        failure: None,
        service: Some(HOSTILE.into()),
        private: true,
        allowed_ips: vec![HOSTILE.into()],
        image: Some(HOSTILE.into()),
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
        expires_at: None,
    }
}

#[test]
fn overview() {
    let account = account();
    let item = item(HOSTILE);
    let activity = Activity {
        at: chrono::Utc::now(),
        action: HOSTILE.into(),
        kind: HOSTILE.into(),
        subject: HOSTILE.into(),
        token: None,
        actor: Some(HOSTILE.into()),
    };
    let kinds = [overview::KindSummary {
        kind: HOSTILE.into(),
        count: 1,
        count_limit: Some(1),
        storage_bytes: 1,
        storage_limit_bytes: 2,
        connections: 0,
        connection_limit: 2,
    }];
    let shown = overview::Overview {
        account: &account,
        public_url: HOSTILE,
        kinds: &kinds,
        deployments_healthy: 0,
        deployments_total: 0,
        webhooks: 0,
        vault_entries: 0,
        near_limit: vec![&item],
        recent: vec![&item],
        activity: std::slice::from_ref(&activity),
        usage: &[],
        app_kinds: &[],
    };
    // Header; the team and the tier in headings; the banner's name; the kind line (kind
    // twice); the recent resource (kind, name); the activity (action, subject, kind, actor).
    assert_escaped(overview::page(&shown), HEADER + 2 + 1 + 2 + 2 + 4);
}

#[test]
fn resource_list() {
    let account = account();
    let item = item(HOSTILE);
    let kinds = [HOSTILE.to_string()];
    let list = resources::ResourceList {
        account: &account,
        public_url: HOSTILE,
        items: &[&item],
        kinds: &kinds,
        envs: &kinds,
        kind: Some(HOSTILE),
        env: None,
    };
    // Header; the filters (kind and env options, value and text each); the row (name,
    // kind, env, tier); the two prompts' URL.
    assert_escaped(resources::page(&list), HEADER + 4 + 4 + 2);
}

#[test]
fn deployment_pages() {
    let account = account();
    let app = app_item();
    let stack = StackRow {
        id: Uuid::nil(),
        slug: HOSTILE.into(),
        fingerprint: HOSTILE.into(),
        name: HOSTILE.into(),
        manifest: HOSTILE.into(),
        created_at: chrono::Utc::now(),
        expires_at: None,
        secret_hash: None,
        made_with: None,
    };
    let shown = deployments::StackShown {
        stack: &stack,
        services: vec![&app],
    };
    // Header; the app's row (service, URL as link and text) twice (as an app and as a
    // service); the stack's data attribute, link, name, slug and table label; the two
    // prompts' URL.
    assert_escaped(
        deployments::page(&account, HOSTILE, &[&app], std::slice::from_ref(&shown)),
        HEADER + 3 * 2 + 5 + 2,
    );
    // Header; title, name, slug; the service row (name, URL twice); the manifest; five
    // prompts' URL and their slugs.
    let page = stack::page(&account, HOSTILE, &shown);
    assert_escaped(page, HEADER + 3 + 3 + 1 + 5 * 2);

    let env = [(HOSTILE.to_string(), None)];
    let owned = deployment::Owned {
        account: &account,
        public_url: HOSTILE,
        item: &app,
        env: &env,
        domains: &[],
        stack: Some((HOSTILE, HOSTILE)),
        form_token: HOSTILE,
        notice: None,
    };
    // Header; title, heading; URL as link and text; the stack's slug and name; image;
    // tier; allowed IPs; env name; two forms' tokens; the delete's name twice; six
    // prompts' URL, two of them with the app's name.
    assert_escaped(
        deployment::owned_page(&owned),
        HEADER + 2 + 2 + 2 + 1 + 1 + 1 + 1 + 2 + 1 + 6 + 2,
    );
}

#[test]
fn vault_team_and_settings_pages() {
    let account = account();
    let envs = [(HOSTILE.to_string(), 1)];
    let keys = [HOSTILE.to_string()];
    let secret = VaultSecret {
        ok: True,
        env: HOSTILE.into(),
        key: HOSTILE.into(),
        value: HOSTILE.into(),
        version: 1,
    };
    let shown = vault::Vault {
        account: &account,
        public_url: HOSTILE,
        envs: &envs,
        env: HOSTILE,
        keys: &keys,
        revealed: Some(&secret),
        max_entries: 1,
        form_token: HOSTILE,
    };
    // Header; the tab (link and text); the revealed key and value; the key's row (name,
    // data attribute, form action twice, token, label); three prompts' URL and env.
    assert_escaped(vault::page(&shown), HEADER + 2 + 2 + 6 + 6);

    let member = Member {
        email: HOSTILE.into(),
        joined_at: chrono::Utc::now(),
        api_keys: 1,
    };
    let invitation = Invitation {
        id: Uuid::nil(),
        email: HOSTILE.into(),
        invited_by: HOSTILE.into(),
        created_at: chrono::Utc::now(),
        expires_at: chrono::Utc::now(),
    };
    let shown = team::Team {
        account: &account,
        public_url: HOSTILE,
        members: std::slice::from_ref(&member),
        invitations: std::slice::from_ref(&invitation),
        ttl_policy: HOSTILE,
        notice: Some(HOSTILE),
        form_token: HOSTILE,
    };
    // Header; team name and tier; the notice; the TTL policy; the member; the invite
    // form's token; the invitation (email, inviter, form token, label); three prompts' URL.
    assert_escaped(team::page(&shown), HEADER + 2 + 1 + 1 + 1 + 1 + 4 + 3);

    let key = ApiKeyRow {
        id: Uuid::nil(),
        name: HOSTILE.into(),
        prefix: Some(HOSTILE.into()),
        created_at: chrono::Utc::now(),
        last_used_at: None,
        revoked_at: None,
    };
    let created = ApiKeyCreated {
        ok: True,
        id: Uuid::nil(),
        key: HOSTILE.into(),
        name: HOSTILE.into(),
        skip_delete_confirmation: false,
        created_at: chrono::Utc::now(),
        note: HOSTILE.into(),
    };
    let shown = settings::Settings {
        account: &account,
        public_url: HOSTILE,
        keys: std::slice::from_ref(&key),
        created: Some(&created),
        notice: Some(HOSTILE),
        form_token: HOSTILE,
    };
    // Header; the notice; the URL; the new key's name and value; the create form's
    // token; the key's row (name, prefix, revoke token and label).
    assert_escaped(settings::page(&shown), HEADER + 1 + 1 + 2 + 1 + 4);
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
    let account = account();
    let shown = Resource {
        account: &account,
        public_url: HOSTILE,
        item: &item,
        rotatable: false,
        credentials: Some(&credentials),
        events: std::slice::from_ref(&event),
        usage: &[],
    };
    // Header; title, name, kind, environment, tier, a limit's name; a credential's URL, a
    // field's name and value; an event's actor, action and surface; the delete form (token,
    // name); three prompts' URL.
    let delete_and_prompts = 2 + 3;
    assert_escaped(
        resource::page(&shown, HOSTILE),
        HEADER + 12 + delete_and_prompts,
    );
    let hidden = Resource {
        credentials: None,
        ..shown
    };
    // No credentials, but the reveal form and its form token.
    assert_escaped(
        resource::page(&hidden, HOSTILE),
        HEADER + 10 + delete_and_prompts,
    );
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
fn join_page() {
    let invitation = crate::store::OpenInvitation {
        id: Uuid::nil(),
        team_id: Uuid::nil(),
        team_name: HOSTILE.into(),
        email: HOSTILE.into(),
        invited_by: HOSTILE.into(),
    };
    // The heading (the team), the inviter, the address, the token in the form.
    assert_escaped(super::join::page(&invitation, HOSTILE), 4);
}

#[test]
fn refusal_and_deployment_pages() {
    assert_escaped(refusal::page(HOSTILE, HOSTILE), 2);
    assert_escaped(deployment::page(HOSTILE), 2);
}
