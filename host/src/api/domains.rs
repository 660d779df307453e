//! Custom domains for apps (`/api/v1/deployments/{id}/domains`) and the ACME HTTP-01 answers
//! (`/.well-known/acme-challenge/{token}`).
//!
//! A domain goes `pending_verification` (until a TXT record at `_instanode-challenge.<domain>`
//! holds its token) → `issuing` → `active`, or `failed` with the CA's words. Only teams on a
//! tier with `custom_domains_max` above 0 may add them. Several apps may ask for one name (so
//! asking first holds nothing); the first to prove it gets it, and the other requests go.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::error::ApiError;
use super::json::JsonObject;
use super::resources::parse_token;
use super::schema::{
    CustomDomainItem, DomainAnswer, DomainList, DomainProof, DomainRemoved, DomainRequest,
    StackDomainRequest, True,
};
use crate::app::{App, SharedApp};
use crate::store::{CertificateState, CustomDomain, DeploymentRow, DomainRefusal};
use crate::tls::domains::{self, PROOF_LABEL};

/// `POST /api/v1/deployments/{id}/domains`.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/domains", tag = "deploys",
    operation_id = "addDeploymentDomain",
    summary = "Serve an app at a domain of your own, over HTTPS",
    description = "For a team's app on a tier with custom_domains_max above 0 (402 upgrade_required otherwise, 402 custom_domain_limit_reached at the cap). The answer names a TXT record that proves the domain and the CNAME target; once the record is seen the host gets a certificate and the domain goes active. 409 hostname_taken once another app has proven it (asking first holds nothing).",
    request_body = DomainRequest,
    responses((status = 201, description = "Added, pending verification.", body = DomainAnswer)))]
pub async fn add(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let row = super::deploy::find_row(&app, parse_token(&id)?).await?;
    add_for(&app, &row, &body).await
}

/// `POST /api/v1/stacks/{slug}/domains`.
#[utoipa::path(post, path = "/api/v1/stacks/{slug}/domains", tag = "stacks",
    operation_id = "addStackDomain",
    summary = "Serve a stack's exposed service at a domain of your own, over HTTPS",
    description = "Like an app's domains, with `service` naming an exposed service of the stack (400 unknown_service otherwise).",
    security(("bearer" = [])),
    request_body = StackDomainRequest,
    responses((status = 201, description = "Added, pending verification.", body = DomainAnswer)))]
pub async fn add_to_stack(
    State(app): State<SharedApp>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let services = exposed_services(&app, &slug, &headers).await?;
    let wanted = body.get("service").and_then(|v| v.as_str()).unwrap_or("");
    let row = services
        .iter()
        .find(|row| row.service.as_deref() == Some(wanted))
        .ok_or_else(|| {
            let names: Vec<&str> = services
                .iter()
                .filter_map(|r| r.service.as_deref())
                .collect();
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown_service",
                format!("{wanted:?} is not an exposed service of this stack."),
            )
            .action(format!("Send `service` as one of: {}.", names.join(", ")))
        })?;
    add_for(&app, row, &body).await
}

async fn add_for(
    app: &App,
    row: &DeploymentRow,
    body: &serde_json::Map<String, serde_json::Value>,
) -> Result<Response, ApiError> {
    usable(app, row)?;
    let requested = body
        .get("domain")
        .or_else(|| body.get("hostname"))
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "missing_domain",
                "The body needs a domain, e.g. {\"domain\": \"shop.example.com\"}.",
            )
        })?;
    let domain = acceptable_domain(app, requested)?;
    let team_id = row.team_id.ok_or_else(claim_first)?;
    let limit = app
        .plans
        .tier(&row.tier)
        .map_or(0, |tier| tier.custom_domains_max);
    if limit <= 0 {
        return Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "upgrade_required",
            format!("The {} tier has no custom domains.", row.tier),
        )
        .action("Tell the user custom domains come with paid tiers that include them; upgrade the team, then add the domain again."));
    }
    let token = format!("instanode-{}", Uuid::new_v4().simple());
    let added = app
        .store
        .add_custom_domain(&domain, row.resource_id, team_id, &token, limit)
        .await
        .map_err(ApiError::internal)?;
    let added = match added {
        Ok(added) => added,
        Err(DomainRefusal::Taken) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "hostname_taken",
                format!("{domain} was proven for another app."),
            )
            .action("Tell the user the domain already serves another app; remove it there first (DELETE .../domains/{domain}) or choose another name."));
        }
        Err(DomainRefusal::AtLimit) => {
            return Err(ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "custom_domain_limit_reached",
                format!("The team holds its tier's {limit} custom domains."),
            )
            .with("limit", limit)
            .action("Tell the user to remove a domain they no longer use, or upgrade the team for more."));
        }
    };
    let item = describe(app, row, &added, None);
    Ok((StatusCode::CREATED, Json(DomainAnswer { ok: True, item })).into_response())
}

/// `GET /api/v1/deployments/{id}/domains`.
#[utoipa::path(get, path = "/api/v1/deployments/{id}/domains", tag = "deploys",
    operation_id = "listDeploymentDomains",
    summary = "An app's custom domains and where each stands",
    responses((status = 200, description = "The domains, oldest first.", body = DomainList)))]
pub async fn list(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
) -> Result<Json<DomainList>, ApiError> {
    let row = super::deploy::find_row(&app, parse_token(&id)?).await?;
    list_for(&app, std::slice::from_ref(&row)).await
}

/// `GET /api/v1/stacks/{slug}/domains`.
#[utoipa::path(get, path = "/api/v1/stacks/{slug}/domains", tag = "stacks",
    operation_id = "listStackDomains",
    summary = "A stack's custom domains, each with its service",
    security(("bearer" = [])),
    responses((status = 200, description = "The domains, oldest first per service.", body = DomainList)))]
pub async fn list_for_stack(
    State(app): State<SharedApp>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Result<Json<DomainList>, ApiError> {
    let services = exposed_services(&app, &slug, &headers).await?;
    list_for(&app, &services).await
}

async fn list_for(app: &App, rows: &[DeploymentRow]) -> Result<Json<DomainList>, ApiError> {
    let items = domains_of(app, rows).await?;
    Ok(Json(DomainList { ok: True, items }))
}

/// The custom domains of `rows` (the API and the dashboard both use this).
pub(super) async fn domains_of(
    app: &App,
    rows: &[DeploymentRow],
) -> Result<Vec<CustomDomainItem>, ApiError> {
    let ids: Vec<uuid::Uuid> = rows.iter().map(|row| row.resource_id).collect();
    let domains = app
        .store
        .custom_domains_of(&ids)
        .await
        .map_err(ApiError::internal)?;
    let names: Vec<String> = domains.iter().map(|d| d.domain.clone()).collect();
    let certificates = app
        .store
        .certificate_states(&names)
        .await
        .map_err(ApiError::internal)?;
    // Grouped by app, in the order the apps were given.
    let items = rows
        .iter()
        .flat_map(|row| {
            domains
                .iter()
                .filter(move |domain| domain.resource_id == row.resource_id)
                .map(move |domain| (row, domain))
        })
        .map(|(row, domain)| {
            let certificate = certificates.iter().find(|c| c.name == domain.domain);
            describe(app, row, domain, certificate)
        })
        .collect();
    Ok(items)
}

/// `POST /api/v1/deployments/{id}/domains/{domain}/verify`.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/domains/{domain}/verify", tag = "deploys",
    operation_id = "verifyDeploymentDomain",
    summary = "Look for a domain's TXT record now",
    description = "The host also looks every few seconds by itself; this asks at once and answers with the domain's state.",
    responses((status = 200, description = "The domain's state after the check.", body = DomainAnswer)))]
pub async fn verify(
    State(app): State<SharedApp>,
    Path((id, domain)): Path<(String, String)>,
) -> Result<Json<DomainAnswer>, ApiError> {
    let row = super::deploy::find_row(&app, parse_token(&id)?).await?;
    verify_for(&app, std::slice::from_ref(&row), &domain).await
}

/// `POST /api/v1/stacks/{slug}/domains/{domain}/verify`.
#[utoipa::path(post, path = "/api/v1/stacks/{slug}/domains/{domain}/verify", tag = "stacks",
    operation_id = "verifyStackDomain",
    summary = "Look for a stack domain's TXT record now",
    security(("bearer" = [])),
    responses((status = 200, description = "The domain's state after the check.", body = DomainAnswer)))]
pub async fn verify_for_stack(
    State(app): State<SharedApp>,
    Path((slug, domain)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<DomainAnswer>, ApiError> {
    let services = exposed_services(&app, &slug, &headers).await?;
    verify_for(&app, &services, &domain).await
}

async fn verify_for(
    app: &App,
    rows: &[DeploymentRow],
    domain: &str,
) -> Result<Json<DomainAnswer>, ApiError> {
    let domain = domains::normalize(domain).map_err(|_| unknown_domain())?;
    let (row, stored) = domain_of(app, rows, &domain).await?;
    if stored.verified_at.is_none() {
        app.tls
            .check_proof(
                app,
                &stored.domain,
                row.resource_id,
                &stored.verification_token,
            )
            .await;
    }
    let (row, stored) = domain_of(app, rows, &domain).await?;
    let certificate = app
        .store
        .certificate_states(std::slice::from_ref(&domain))
        .await
        .map_err(ApiError::internal)?;
    let item = describe(app, row, &stored, certificate.first());
    Ok(Json(DomainAnswer { ok: True, item }))
}

/// `DELETE /api/v1/deployments/{id}/domains/{domain}`.
#[utoipa::path(delete, path = "/api/v1/deployments/{id}/domains/{domain}", tag = "deploys",
    operation_id = "removeDeploymentDomain",
    summary = "Stop serving an app at a custom domain",
    responses((status = 200, description = "Removed with its certificate.", body = DomainRemoved)))]
pub async fn remove(
    State(app): State<SharedApp>,
    Path((id, domain)): Path<(String, String)>,
) -> Result<Json<DomainRemoved>, ApiError> {
    let row = super::deploy::find_row(&app, parse_token(&id)?).await?;
    remove_for(&app, std::slice::from_ref(&row), &domain).await
}

/// `DELETE /api/v1/stacks/{slug}/domains/{domain}`.
#[utoipa::path(delete, path = "/api/v1/stacks/{slug}/domains/{domain}", tag = "stacks",
    operation_id = "removeStackDomain",
    summary = "Stop serving a stack's service at a custom domain",
    security(("bearer" = [])),
    responses((status = 200, description = "Removed with its certificate.", body = DomainRemoved)))]
pub async fn remove_from_stack(
    State(app): State<SharedApp>,
    Path((slug, domain)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<DomainRemoved>, ApiError> {
    let services = exposed_services(&app, &slug, &headers).await?;
    remove_for(&app, &services, &domain).await
}

async fn remove_for(
    app: &App,
    rows: &[DeploymentRow],
    domain: &str,
) -> Result<Json<DomainRemoved>, ApiError> {
    let domain = domains::normalize(domain).map_err(|_| unknown_domain())?;
    let (row, _) = domain_of(app, rows, &domain).await?;
    let removed = app
        .store
        .remove_custom_domain(&domain, row.resource_id)
        .await
        .map_err(ApiError::internal)?;
    if !removed {
        return Err(unknown_domain());
    }
    app.tls.changed(app).await;
    Ok(Json(DomainRemoved {
        ok: True,
        domain,
        deleted: true,
    }))
}

/// `GET /.well-known/acme-challenge/{token}`: the answer an ACME CA asks for (HTTP-01).
#[utoipa::path(get, path = "/.well-known/acme-challenge/{token}", tag = "health",
    operation_id = "acmeChallengeAnswer",
    summary = "An ACME HTTP-01 answer, for the certificate authority",
    description = "Answered under any host name and never redirected to HTTPS, while the host is proving a name it asked a certificate for; 404 otherwise.",
    responses((status = 200, description = "The key authorization.", content_type = "text/plain", body = String)))]
pub async fn acme_answer(
    State(app): State<SharedApp>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let answer = app
        .store
        .acme_challenge(&token)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("Challenge"))?;
    Ok(([(header::CONTENT_TYPE, "text/plain")], answer).into_response())
}

/// Refuses when this host takes no custom domains, or the app is not live.
fn usable(app: &App, row: &DeploymentRow) -> Result<(), ApiError> {
    if !app.tls.custom_domains_available() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "custom_domains_unavailable",
            "This host does not issue certificates, so it takes no custom domains.",
        )
        .action("Tell the user this instanode host has no ACME certificate authority configured; its operator can enable one ([tls.acme])."));
    }
    if !row.resource_status.is_live() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "deployment_not_live",
            "The app is not live.",
        ));
    }
    Ok(())
}

/// The stack's live services that have a URL (the exposed ones).
async fn exposed_services(
    app: &App,
    slug: &str,
    headers: &HeaderMap,
) -> Result<Vec<DeploymentRow>, ApiError> {
    let (_, services) = super::stacks::find(app, slug, headers).await?;
    Ok(services
        .into_iter()
        .filter(|row| row.slug.is_some() && row.resource_status.is_live())
        .collect())
}

/// `requested` as stored, unless it is not a domain or belongs to this host.
fn acceptable_domain(app: &App, requested: &str) -> Result<String, ApiError> {
    let domain = domains::normalize(requested).map_err(|why| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_domain",
            format!("{requested:?} is not a domain: {why}."),
        )
        .action("Send a full host name such as shop.example.com.")
    })?;
    let own_host = url::Url::parse(&app.public_url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_ascii_lowercase));
    // The host's own names are not anyone's to claim.
    if domains::is_within(&domain, app.apps.domain())
        || own_host.is_some_and(|host| domains::is_within(&domain, &host))
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_domain",
            format!("{domain} is one of this host's own names."),
        )
        .action("Use a domain you own; apps already have a URL under the host's domain."));
    }
    Ok(domain)
}

/// Which of `rows` asked for `domain`, and its request.
async fn domain_of<'a>(
    app: &App,
    rows: &'a [DeploymentRow],
    domain: &str,
) -> Result<(&'a DeploymentRow, CustomDomain), ApiError> {
    let ids: Vec<uuid::Uuid> = rows.iter().map(|row| row.resource_id).collect();
    app.store
        .custom_domains_of(&ids)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .find(|d| d.domain == domain)
        .and_then(|found| {
            let row = rows
                .iter()
                .find(|row| row.resource_id == found.resource_id)?;
            Some((row, found))
        })
        .ok_or_else(unknown_domain)
}

/// A domain's state as the owner sees it.
fn describe(
    app: &App,
    row: &DeploymentRow,
    domain: &CustomDomain,
    certificate: Option<&CertificateState>,
) -> CustomDomainItem {
    let cname_target = row
        .slug
        .as_deref()
        .map(|slug| format!("{slug}.{}", app.apps.domain()))
        .unwrap_or_default();
    let proof = DomainProof {
        record_type: "TXT".into(),
        name: format!("{PROOF_LABEL}.{}", domain.domain),
        value: domain.verification_token.clone(),
    };
    let (status, agent_action) = match (domain.verified_at, certificate) {
        (None, _) => (
            "pending_verification",
            Some(format!(
                "Tell the user to add a TXT record {} with the value {} and a CNAME from {} to {}; the host checks every few seconds.",
                proof.name, proof.value, domain.domain, cname_target
            )),
        ),
        (Some(_), Some(c)) if c.status == "active" => ("active", None),
        (Some(_), Some(c)) if c.status == "failed" => (
            "failed",
            Some(format!(
                "Tell the user the certificate authority refused {}: {}. Check that the domain points at {} (CNAME); the host tries again by itself.",
                domain.domain,
                c.last_error.as_deref().unwrap_or("no reason given"),
                cname_target
            )),
        ),
        (Some(_), _) => (
            "issuing",
            Some(
                "Wait a few seconds and read the domain again; the certificate is being issued."
                    .to_string(),
            ),
        ),
    };
    CustomDomainItem {
        domain: domain.domain.clone(),
        service: row.service.clone(),
        status: status.into(),
        tls_status: if status == "active" {
            "active"
        } else {
            "pending"
        }
        .into(),
        cname_target,
        verification: proof,
        verified_at: domain.verified_at,
        certificate_expires_at: certificate.and_then(|c| c.not_after),
        error: certificate.and_then(|c| c.last_error.clone()),
        agent_action,
    }
}

fn unknown_domain() -> ApiError {
    ApiError::not_found("Domain")
        .action("List the app's domains (GET .../domains) and use one of them.")
}

fn claim_first() -> ApiError {
    ApiError::new(
        StatusCode::PAYMENT_REQUIRED,
        "claim_required",
        "Anonymous apps cannot have custom domains.",
    )
    .action("Tell the user to claim the app into a team on a tier with custom domains, then add the domain.")
}
