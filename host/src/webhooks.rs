//! Webhooks: a kind the host serves itself. A resource is a receive URL; every request to
//! it is stored (secrets in headers redacted) in a ring of the newest N, N from the tier.

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::contract::storage::objects::Presigned;
use crate::contract::types::{
    Creation, ObjectMethod, ProviderError, ProvisionRequest, Provisioned, ResourceRef, UsageReport,
};
use crate::kinds::{KindInfo, RequestField, Service};
use crate::registry::{Answer, CallError};
use crate::store::Store;

pub const KIND: &str = "webhook";
/// The create-request field holding the HMAC secret senders sign with.
const SECRET_FIELD: &str = "secret";
/// Largest request body stored.
pub const MAX_BODY: usize = 1024 * 1024;
/// The header a sender signs with, GitHub-style: `sha256=<hex HMAC of the body>`.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// Headers whose values are never stored.
const REDACTED: [&str; 6] = [
    "authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "proxy-authorization",
];

/// What the host keeps sealed for a webhook resource.
#[derive(Serialize, Deserialize, Default)]
pub struct WebhookState {
    /// When set, every request must carry a valid [`SIGNATURE_HEADER`].
    pub hmac_secret: Option<String>,
}

/// How long a sender may take to deliver one body.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The "provisioned" answer for a new webhook: nothing exists outside the metadata. The
/// receive id is not the owner's token: senders can deliver, not read or delete.
fn provisioned(public_url: &str, receive_id: Uuid, secret: Option<&str>) -> Provisioned {
    let receive_url = format!("{public_url}/webhook/receive/{receive_id}");
    let mut fields = vec![("receive_url".to_string(), receive_url.clone())];
    if secret.is_some() {
        fields.push(("signature_header".into(), "X-Hub-Signature-256".into()));
    }
    let state = WebhookState {
        hmac_secret: secret.map(str::to_string),
    };
    Provisioned {
        connection_url: receive_url,
        internal_url: None,
        fields,
        state: serde_json::to_string(&state).expect("state serializes"),
    }
}

/// The built-in provider of webhook receivers: nothing exists outside the metadata
/// database, where each receiver and its stored requests live.
pub struct Webhooks {
    store: Store,
    public_url: String,
    kinds: [KindInfo; 1],
}

impl Webhooks {
    pub fn new(store: Store, public_url: String) -> Self {
        Self {
            store,
            public_url,
            kinds: [Self::kind_info()],
        }
    }

    /// What a webhook is, for the catalog.
    pub fn kind_info() -> KindInfo {
        KindInfo {
            name: KIND.into(),
            label: KIND.into(),
            creation: Creation::JsonBody,
            rotatable: false,
            // Reached only at its public receive URL.
            internal: false,
            env_var: "WEBHOOK_URL".into(),
            request_fields: vec![RequestField {
                name: SECRET_FIELD.into(),
                description: "If set, senders must sign bodies with it (X-Hub-Signature-256)."
                    .into(),
                min_length: 16,
                max_length: 256,
            }],
        }
    }
}

/// Whether a stored resource is a webhook receiver of this built-in provider.
pub fn is_receiver(row: &crate::store::ResourceRow) -> bool {
    row.kind == KIND && row.provider == "host"
}

fn resource_uuid(resource_id: &str) -> Result<Uuid, ProviderError> {
    Uuid::parse_str(resource_id)
        .map_err(|_| ProviderError::InvalidRequest(format!("bad resource id {resource_id}")))
}

#[async_trait]
impl Service for Webhooks {
    fn name(&self) -> &str {
        "host"
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn kinds(&self) -> &[KindInfo] {
        &self.kinds
    }

    async fn provision(
        &self,
        _request_id: &str,
        request: &ProvisionRequest,
    ) -> Answer<Provisioned> {
        let id = match resource_uuid(&request.resource_id) {
            Ok(id) => id,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let receive_id = Uuid::new_v4();
        self.store
            .add_webhook_receiver(id, receive_id)
            .await
            .map_err(CallError::Metadata)?;
        let secret = request
            .options
            .iter()
            .find(|(k, _)| k == SECRET_FIELD)
            .map(|(_, v)| v.as_str());
        Ok(Ok(provisioned(&self.public_url, receive_id, secret)))
    }

    async fn deprovision(&self, _request_id: &str, resource: &ResourceRef) -> Answer<()> {
        let id = match resource_uuid(&resource.resource_id) {
            Ok(id) => id,
            Err(refusal) => return Ok(Err(refusal)),
        };
        self.store
            .delete_webhook_requests(id)
            .await
            .map_err(CallError::Metadata)?;
        Ok(Ok(()))
    }

    /// The ring of stored requests is its own limit.
    async fn usage(
        &self,
        _request_id: &str,
        _resource: &ResourceRef,
    ) -> Answer<Option<UsageReport>> {
        Ok(Ok(None))
    }

    async fn suspend(&self, _request_id: &str, _resource: &ResourceRef) -> Answer<()> {
        Ok(Ok(()))
    }

    async fn resume(&self, _request_id: &str, _resource: &ResourceRef) -> Answer<()> {
        Ok(Ok(()))
    }

    async fn presign(
        &self,
        _request_id: &str,
        _resource: &ResourceRef,
        _method: ObjectMethod,
        _key: &str,
        _expires_in_seconds: u32,
    ) -> Answer<Presigned> {
        Err(CallError::NotExported {
            provider: self.name().into(),
            interface: "objects",
        })
    }
}

/// Whether `signature` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under `secret`,
/// compared in constant time.
pub fn signature_matches(secret: &str, body: &[u8], signature: Option<&str>) -> bool {
    let Some(hex_sig) = signature.and_then(|s| s.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig.trim()) else {
        return false;
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// Header value as stored: redacted for the names that carry credentials.
pub fn stored_header_value(name: &str, value: &str) -> String {
    if REDACTED.contains(&name.to_ascii_lowercase().as_str()) {
        "[redacted]".into()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(b"payload");
        let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert!(signature_matches("s3cret", b"payload", Some(&good)));
        assert!(!signature_matches("s3cret", b"payload!", Some(&good)));
        assert!(!signature_matches("other", b"payload", Some(&good)));
        assert!(!signature_matches("s3cret", b"payload", None));
        assert!(!signature_matches("s3cret", b"payload", Some("sha256=zz")));
    }

    #[test]
    fn credentials_in_headers_are_redacted() {
        assert_eq!(
            stored_header_value("Authorization", "Bearer x"),
            "[redacted]"
        );
        assert_eq!(stored_header_value("x-api-key", "k"), "[redacted]");
        assert_eq!(
            stored_header_value("content-type", "text/plain"),
            "text/plain"
        );
    }
}
