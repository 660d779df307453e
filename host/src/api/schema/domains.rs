//! Custom domains: what an owner asks for and what each domain's state is.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::True;

/// The body of `POST /api/v1/deployments/{id}/domains`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DomainRequest {
    /// The name to serve the app at, e.g. `shop.example.com` (no wildcards, no addresses).
    pub domain: String,
}

/// The body of `POST /api/v1/stacks/{slug}/domains`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StackDomainRequest {
    pub domain: String,
    /// The exposed service the domain serves.
    pub service: String,
}

/// The DNS record that proves a domain is the owner's.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DomainProof {
    /// Always `TXT`.
    pub record_type: String,
    /// `_instanode-challenge.<domain>`
    pub name: String,
    pub value: String,
}

/// One custom domain of an app.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomDomainItem {
    pub domain: String,
    /// The stack service it serves (absent for an app outside a stack).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service: Option<String>,
    /// `pending_verification` (waiting for the TXT record), `issuing` (proven; the
    /// certificate is on its way), `active` (served over HTTPS) or `failed` (the certificate
    /// authority refused; `error` says why, and it is tried again).
    pub status: String,
    /// `pending` until a certificate serves the domain, then `active`.
    pub tls_status: String,
    /// Where the domain should point (a CNAME): the app's own host name.
    pub cname_target: String,
    pub verification: DomainProof,
    pub verified_at: Option<DateTime<Utc>>,
    /// When the certificate served now ends; it is renewed well before.
    pub certificate_expires_at: Option<DateTime<Utc>>,
    /// The certificate authority's last refusal, if any.
    pub error: Option<String>,
    /// What to do next, while the domain is not active.
    pub agent_action: Option<String>,
}

/// A custom domain just added, or looked at.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DomainAnswer {
    pub ok: True,
    #[serde(flatten)]
    pub item: CustomDomainItem,
}

/// Every custom domain of an app.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DomainList {
    pub ok: True,
    pub items: Vec<CustomDomainItem>,
}

/// A custom domain removed: it is no longer routed, and its certificate is dropped.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DomainRemoved {
    pub ok: True,
    pub domain: String,
    pub deleted: bool,
}
