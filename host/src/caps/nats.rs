//! `nats`: requests on the NATS server bound to a provider, as a user of the system
//! account, plus the trust settings that server needs.
//!
//! The server runs in operator mode: it trusts the host's operator key and loads accounts
//! from its own resolver. The host keeps the operator and system-account keys (see
//! `store::keys`); it connects as a fresh system user it signs itself, so no credential
//! file exists anywhere.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::{AuthError, Client, ConnectOptions, RequestErrorKind};
use instanode_provider_kit::nats_jwt::{self, AccountLimits, Claims};
use nkeys::KeyPair;
use tokio::sync::OnceCell;

use super::{HostState, cap_error};
use crate::config::NatsBinding;
use crate::contract::instanode::provider::nats::Host;
use crate::contract::instanode::provider::types::CapabilityError;
use crate::store::{HostKey, KeyRing};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a provider may wait for one reply.
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The host's side of one NATS server. The connection is made on first use; after that the
/// client reconnects by itself, so the host starts (and recovers) while the server is down.
pub struct NatsBackend {
    url: String,
    keys: Arc<KeyRing>,
    system: OnceCell<Client>,
}

impl NatsBackend {
    pub fn new(binding: &NatsBinding, keys: Arc<KeyRing>) -> Self {
        Self {
            url: binding.url.clone(),
            keys,
            system: OnceCell::new(),
        }
    }

    async fn system_client(&self) -> Result<Client, CapabilityError> {
        self.system
            .get_or_try_init(|| async {
                let account =
                    self.keys.get(HostKey::NatsSystem).await.map_err(|e| {
                        cap_error("unavailable", format!("system account key: {e:#}"))
                    })?;
                let user = KeyPair::new_user();
                let jwt = Claims {
                    issuer: account.public_key(),
                    subject: user.public_key(),
                    name: "instanode-host".into(),
                    issued_at: unix_now(),
                    nats: nats_jwt::user(),
                }
                .encode(|bytes| account.sign(bytes).map_err(|e| e.to_string()))
                .map_err(|e| cap_error("internal", e))?;
                connect(&self.url, jwt, user, "instanode-host").await
            })
            .await
            .cloned()
    }
}

/// The lines a NATS server's config needs to trust this host: the operator JWT, the
/// system account, and the system account's JWT preloaded into the resolver.
pub async fn server_trust_config(keys: &KeyRing) -> anyhow::Result<String> {
    let operator = keys.get(HostKey::NatsOperator).await?;
    let system = keys.get(HostKey::NatsSystem).await?;
    let sign = |bytes: &[u8]| operator.sign(bytes).map_err(|e| e.to_string());
    let now = unix_now();
    let operator_jwt = Claims {
        issuer: operator.public_key(),
        subject: operator.public_key(),
        name: "instanode".into(),
        issued_at: now,
        nats: nats_jwt::operator(&system.public_key()),
    }
    .encode(sign)
    .map_err(anyhow::Error::msg)?;
    let system_jwt = Claims {
        issuer: operator.public_key(),
        subject: system.public_key(),
        name: "SYS".into(),
        issued_at: now,
        nats: nats_jwt::account(&AccountLimits::SYSTEM, None),
    }
    .encode(sign)
    .map_err(anyhow::Error::msg)?;
    Ok(format!(
        "# Trust in the operator of an instanode host (instanode nats-server-config)\n\
         operator: {operator_jwt}\n\
         system_account: {}\n\
         resolver_preload: {{\n  {}: {system_jwt}\n}}\n",
        system.public_key(),
        system.public_key(),
    ))
}

/// Connects as the user `jwt` names, proving it holds `key`.
async fn connect(
    url: &str,
    jwt: String,
    key: KeyPair,
    name: &str,
) -> Result<Client, CapabilityError> {
    let key = Arc::new(key);
    let options = ConnectOptions::with_jwt(jwt, move |nonce| {
        let key = key.clone();
        async move { key.sign(&nonce).map_err(AuthError::new) }
    })
    .name(name)
    .connection_timeout(CONNECT_TIMEOUT)
    .request_timeout(Some(MAX_REQUEST_TIMEOUT));
    let client = tokio::time::timeout(CONNECT_TIMEOUT * 2, options.connect(url.to_string()))
        .await
        .map_err(|_| cap_error("unavailable", "nats connect timed out"))?
        .map_err(|e| cap_error("unavailable", format!("nats unreachable: {e}")))?;
    // A user of an unknown account may look connected until the server gives up on it:
    // a round trip proves the login.
    tokio::time::timeout(CONNECT_TIMEOUT, client.flush())
        .await
        .map_err(|_| cap_error("unavailable", "nats login not confirmed in time"))?
        .map_err(|e| cap_error("unavailable", format!("nats login failed: {e}")))?;
    Ok(client)
}

async fn request(
    client: &Client,
    subject: String,
    payload: Vec<u8>,
    timeout_ms: u32,
) -> Result<Vec<u8>, CapabilityError> {
    // While reconnecting, the client would hold the request until the server is back: fail
    // now instead, so a provision during an outage is refused at once.
    if client.connection_state() != async_nats::connection::State::Connected {
        return Err(cap_error(
            "unavailable",
            "nats server unreachable (reconnecting)",
        ));
    }
    let timeout = Duration::from_millis(u64::from(timeout_ms)).min(MAX_REQUEST_TIMEOUT);
    let reply = tokio::time::timeout(timeout, client.request(subject, payload.into()))
        .await
        .map_err(|_| cap_error("timeout", "no reply in time"))?
        .map_err(|e| match e.kind() {
            RequestErrorKind::TimedOut => cap_error("timeout", "no reply in time"),
            RequestErrorKind::NoResponders => {
                cap_error("no-responders", "nothing answers that subject")
            }
            RequestErrorKind::InvalidSubject | RequestErrorKind::MaxPayloadExceeded => {
                cap_error("invalid", e)
            }
            _ => cap_error("unavailable", e),
        })?;
    Ok(reply.payload.to_vec())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl HostState {
    fn nats(&self) -> Result<&NatsBackend, CapabilityError> {
        self.bindings
            .nats
            .as_ref()
            .ok_or_else(|| cap_error("not-granted", "nats is not granted"))
    }
}

impl Host for HostState {
    async fn request(
        &mut self,
        subject: String,
        payload: Vec<u8>,
        timeout_ms: u32,
    ) -> Result<Vec<u8>, CapabilityError> {
        let client = self.nats()?.system_client().await?;
        request(&client, subject, payload, timeout_ms).await
    }

    async fn request_as(
        &mut self,
        user_jwt: String,
        user_seed: String,
        subject: String,
        payload: Vec<u8>,
        timeout_ms: u32,
    ) -> Result<Vec<u8>, CapabilityError> {
        let backend = self.nats()?;
        let key = KeyPair::from_seed(&user_seed)
            .map_err(|e| cap_error("invalid", format!("user seed: {e}")))?;
        let client = connect(&backend.url, user_jwt, key, "instanode-provider").await?;
        let reply = request(&client, subject, payload, timeout_ms).await;
        // Closing waits for nothing the provider still needs.
        drop(client);
        reply
    }
}
