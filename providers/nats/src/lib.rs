//! The nats provider: every resource is a NATS account of its own on a shared server in
//! operator mode, reached only through the host's `nats` and `signer` capabilities.
//!
//! Isolation is the server's: subjects, streams and consumers of one account are invisible
//! to every other (even a subscription to `>`), and a user can only log in to the account
//! that signed it. Limits (JetStream file storage, no memory storage, streams, consumers,
//! connections, subscriptions) live in the account JWT, so the server enforces them itself;
//! the server's `max_payload` bounds one message. A tenant cannot change its account JWT,
//! define exports or imports, or reach `$SYS`; what the host reads back from the server
//! (JSZ, CONNZ, claims lookups) goes through the system account, never a tenant's.
//!
//! Rotation (`provision` again) revokes every user issued until then with a wildcard
//! revocation that every later push of the account keeps, so the server closes their
//! connections and refuses their logins; a suspended account keeps its suspended limits.
//!
//! Keys: the account key of a resource is derived from the host's operator signature over
//! its resource id, so every call (a retried provision, a deprovision that never saw the
//! provision's state) finds the same account without storing its seed anywhere. The
//! operator key never enters this component: the host signs the account JWTs built here.
//! User keys are random; the account key signs them.

use std::time::{SystemTime, UNIX_EPOCH};

use instanode_provider_kit::endpoint::Endpoint;
use instanode_provider_kit::errors::{gone, internal};
use instanode_provider_kit::nats_jwt::{self, AccountLimits, Claims};
use instanode_provider_kit::types::{
    CapabilityError, Info, ProviderError, ProvisionRequest, Provisioned, ResourceRef, UsageReport,
};
use instanode_provider_kit::{
    Limits, Provider, data_kind, nats, random_bytes, resource_hex, signer,
};
use nkeys::{KeyPair, KeyPairType};
use serde_json::Value;
use sha2::{Digest, Sha256};

const OPERATOR_KEY: &str = "nats-operator";
const REQUEST_TIMEOUT_MS: u32 = 5_000;
/// Tries, and the wait for each, of the JetStream check after a provision.
const PROBE_ATTEMPTS: u32 = 5;
const PROBE_TIMEOUT_MS: u32 = 500;
const MIB: i64 = 1024 * 1024;
/// Subscriptions an account may hold at once when its tier names no `subscriptions`.
const DEFAULT_SUBSCRIPTIONS: i64 = 10_000;
/// What a suspended account may still store: nothing new.
const SUSPENDED_STORAGE_BYTES: i64 = 1;

struct Nats;

/// One resource's account.
struct Tenant {
    hex: String,
    account: KeyPair,
}

impl Tenant {
    fn for_resource(resource_id: &str) -> Result<Self, ProviderError> {
        let hex = resource_hex(resource_id)?.to_string();
        // Ed25519 signatures are deterministic: the same id always yields the same seed,
        // and nobody without the operator key can compute it.
        let signature = signer::sign(
            OPERATOR_KEY,
            format!("instanode nats account seed v1 {hex}").as_bytes(),
        )
        .map_err(from_capability)?;
        let seed: [u8; 32] = Sha256::digest(&signature).into();
        let account = KeyPair::new_from_raw(KeyPairType::Account, seed)
            .map_err(|e| internal(format!("account key: {e}")))?;
        Ok(Self { hex, account })
    }

    fn public_key(&self) -> String {
        self.account.public_key()
    }

    /// Signs the account JWT with `limits` and hands it to the server's resolver, keeping
    /// the revocation of the JWT it replaces: an update must never bring revoked users back.
    fn push_account(&self, limits: &AccountLimits) -> Result<(), ProviderError> {
        let cutoff = self
            .current_jwt()?
            .and_then(|jwt| nats_jwt::revocation_cutoff(&jwt));
        self.push_account_revoking(limits, cutoff)
    }

    /// The account JWT the server's resolver holds, if any.
    fn current_jwt(&self) -> Result<Option<String>, ProviderError> {
        let subject = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.LOOKUP", self.public_key());
        let reply = system_request(&subject, b"")?;
        Ok(reply
            .starts_with(b"ey")
            .then(|| String::from_utf8_lossy(&reply).trim().to_string()))
    }

    /// Like `push_account`, also revoking every user issued at or before `revoke_before`.
    fn push_account_revoking(
        &self,
        limits: &AccountLimits,
        revoke_before: Option<u64>,
    ) -> Result<(), ProviderError> {
        let operator = signer::public_key(OPERATOR_KEY).map_err(from_capability)?;
        let jwt = Claims {
            issuer: operator,
            subject: self.public_key(),
            name: format!("queue-{}", self.hex),
            issued_at: unix_now(),
            nats: nats_jwt::account(limits, revoke_before),
        }
        .encode(|bytes| signer::sign(OPERATOR_KEY, bytes).map_err(message))
        .map_err(internal)?;
        let reply = system_request("$SYS.REQ.CLAIMS.UPDATE", jwt.as_bytes())?;
        nats_jwt::claims_reply_ok(&reply)
            .map_err(|e| ProviderError::BackendUnavailable(format!("account update refused: {e}")))
    }

    /// Logs in as a throwaway user of the account and asks for its JetStream info, so that a
    /// 201 means the account really works. The server enables JetStream for an account only
    /// while it can reserve the account's whole storage allowance.
    fn verify_jetstream(&self) -> Result<(), ProviderError> {
        let (jwt, seed) = self.new_user()?;
        let mut last = String::new();
        for _ in 0..PROBE_ATTEMPTS {
            match nats::request_as(&jwt, &seed, "$JS.API.INFO", b"", PROBE_TIMEOUT_MS) {
                Ok(reply) => {
                    let info: Value = serde_json::from_slice(&reply).unwrap_or(Value::Null);
                    match info.get("error") {
                        None => return Ok(()),
                        Some(error) => last = error["description"].as_str().unwrap_or("?").into(),
                    }
                }
                // The account's JetStream API may take a moment to appear.
                Err(CapabilityError::Backend(e)) if e.code == "no-responders" => last = e.message,
                Err(CapabilityError::Timeout(m)) => last = m,
                Err(e) => return Err(from_capability(e)),
            }
        }
        Err(ProviderError::BackendUnavailable(format!(
            "JetStream is not available to the new account ({last}); the NATS server may have \
             no JetStream storage left to reserve"
        )))
    }

    /// Whether the server's resolver holds the account.
    fn exists(&self) -> Result<bool, ProviderError> {
        Ok(self.current_jwt()?.is_some())
    }

    /// A new user of the account: (user JWT, user seed).
    fn new_user(&self) -> Result<(String, String), ProviderError> {
        let seed = random_bytes::<32>()?;
        let user = KeyPair::new_from_raw(KeyPairType::User, seed)
            .map_err(|e| internal(format!("user key: {e}")))?;
        let jwt = Claims {
            issuer: self.public_key(),
            subject: user.public_key(),
            name: format!("queue-{}", self.hex),
            issued_at: unix_now(),
            nats: nats_jwt::user(),
        }
        .encode(|bytes| self.account.sign(bytes).map_err(|e| e.to_string()))
        .map_err(internal)?;
        let seed = user
            .seed()
            .map_err(|e| internal(format!("user seed: {e}")))?;
        Ok((jwt, seed))
    }

    /// A per-account monitoring reply (`CONNZ`, `JSZ`, ...), its `data` object.
    fn account_report(&self, report: &str, options: &str) -> Result<Value, ProviderError> {
        let subject = format!("$SYS.REQ.ACCOUNT.{}.{report}", self.public_key());
        let reply = system_request(&subject, options.as_bytes())?;
        let value: Value = serde_json::from_slice(&reply)
            .map_err(|_| internal(format!("unexpected {report} reply")))?;
        if let Some(error) = value.get("error") {
            return Err(ProviderError::BackendUnavailable(format!(
                "{report}: {error}"
            )));
        }
        Ok(value["data"].clone())
    }
}

/// The account limits a tier's `limits` ask for.
fn account_limits(limits: Limits) -> AccountLimits {
    let get = |name: &str, default: i64| {
        limits
            .get(name)
            .map_or(default, |v| i64::try_from(v).unwrap_or(i64::MAX))
    };
    AccountLimits {
        connections: get("connections", -1),
        disk_storage_bytes: get("storage_mb", -1).saturating_mul(MIB).max(-1),
        // Memory streams would bypass the storage limit the tier is sold by.
        memory_storage_bytes: 0,
        streams: get("queue_count", -1),
        consumers: get("consumers", -1),
        max_payload_bytes: -1,
        subscriptions: get("subscriptions", DEFAULT_SUBSCRIPTIONS),
    }
}

impl Provider for Nats {
    fn describe() -> Info {
        Info {
            name: "nats".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kinds: vec![data_kind("queue", "queue", "NATS_URL")],
        }
    }

    fn provision(request: ProvisionRequest) -> Result<Provisioned, ProviderError> {
        let tenant = Tenant::for_resource(&request.resource_id)?;
        let mut limits = account_limits(request.limits());
        if let Some(current) = tenant.current_jwt()? {
            // A rotation (or a retried provision): every user issued so far is revoked, and
            // the server closes their connections. The new user must be issued after the
            // cut-off second. A suspended account stays suspended.
            let stored = nats_jwt::claims_of(&current)
                .and_then(|c| c["nats"]["limits"]["disk_storage"].as_i64());
            if stored == Some(SUSPENDED_STORAGE_BYTES) {
                limits.disk_storage_bytes = SUSPENDED_STORAGE_BYTES;
            }
            let cutoff = unix_now();
            tenant.push_account_revoking(&limits, Some(cutoff))?;
            while unix_now() <= cutoff {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        } else {
            tenant.push_account(&limits)?;
        }
        tenant.verify_jetstream()?;
        let (jwt, seed) = tenant.new_user()?;

        let (connection_url, internal_url) =
            Endpoint::from_config()?.urls(|h, p| format!("nats://{h}:{p}"));
        let creds = nats_jwt::creds_file(&jwt, &seed);
        Ok(Provisioned {
            connection_url,
            internal_url,
            fields: vec![
                ("subject_prefix".into(), format!("tenant_{}.", tenant.hex)),
                ("auth_mode".into(), "isolated".into()),
                ("credentials.auth_mode".into(), "isolated".into()),
                ("credentials.key_id".into(), tenant.public_key()),
                ("credentials.nats_jwt".into(), jwt),
                ("credentials.nats_nkey".into(), seed),
                ("credentials.creds_file".into(), creds),
            ],
            state: serde_json::json!({"account": tenant.public_key()}).to_string(),
        })
    }

    fn deprovision(resource: ResourceRef) -> Result<(), ProviderError> {
        let tenant = Tenant::for_resource(&resource.resource_id)?;
        if !tenant.exists()? {
            return Ok(());
        }
        // Lock the account first (no logins, every user revoked, open connections closed),
        // so no client can create a stream between the purge and the delete.
        let locked = AccountLimits {
            connections: 0,
            ..account_limits(resource.limits())
        };
        tenant.push_account_revoking(&locked, Some(unix_now()))?;
        // Streams next: an account deleted with its streams leaves their data on disk,
        // and the server reports JetStream unhealthy after its next restart.
        let subject = format!("$JS.API.ACCOUNT.PURGE.{}", tenant.public_key());
        let reply = system_request(&subject, b"")?;
        let purged: Value = serde_json::from_slice(&reply).unwrap_or(Value::Null);
        if purged.get("error").is_some() {
            return Err(ProviderError::BackendUnavailable(format!(
                "purging the account's streams failed: {}",
                purged["error"]
            )));
        }
        let operator = signer::public_key(OPERATOR_KEY).map_err(from_capability)?;
        let delete = Claims {
            issuer: operator.clone(),
            subject: operator,
            name: format!("delete queue-{}", tenant.hex),
            issued_at: unix_now(),
            nats: nats_jwt::delete_accounts(&[&tenant.public_key()]),
        }
        .encode(|bytes| signer::sign(OPERATOR_KEY, bytes).map_err(message))
        .map_err(internal)?;
        let reply = system_request("$SYS.REQ.CLAIMS.DELETE", delete.as_bytes())?;
        nats_jwt::claims_reply_ok(&reply)
            .map_err(|e| ProviderError::BackendUnavailable(format!("account delete refused: {e}")))
    }

    fn usage(resource: ResourceRef) -> Result<UsageReport, ProviderError> {
        let tenant = Tenant::for_resource(&resource.resource_id)?;
        // Scoped to one account, JSZ answers with that account's details.
        let account = tenant.account_report("JSZ", r#"{"streams":true}"#)?;
        let connz = tenant.account_report("CONNZ", "{}")?;
        let number = |v: &Value| v.as_u64().unwrap_or(0);
        let streams = account["stream_detail"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let sum = |field: &str| {
            streams
                .iter()
                .map(|s| number(&s["state"][field]))
                .sum::<u64>()
        };
        Ok(UsageReport {
            storage_bytes: number(&account["storage"]),
            connections: u32::try_from(number(&connz["num_connections"])).unwrap_or(u32::MAX),
            extra: vec![
                ("streams".into(), streams.len() as u64),
                ("consumers".into(), sum("consumer_count")),
                ("messages".into(), sum("messages")),
            ],
        })
    }

    fn suspend(resource: ResourceRef) -> Result<(), ProviderError> {
        let tenant = Tenant::for_resource(&resource.resource_id)?;
        if !tenant.exists()? {
            return Ok(());
        }
        let limits = AccountLimits {
            disk_storage_bytes: SUSPENDED_STORAGE_BYTES,
            ..account_limits(resource.limits())
        };
        tenant.push_account(&limits)
    }

    fn resume(resource: ResourceRef) -> Result<(), ProviderError> {
        let tenant = Tenant::for_resource(&resource.resource_id)?;
        if !tenant.exists()? {
            return Err(gone());
        }
        tenant.push_account(&account_limits(resource.limits()))
    }

    fn check() -> Result<String, ProviderError> {
        let reply = system_request(
            "$SYS.REQ.SERVER.PING.HEALTHZ",
            br#"{"js_enabled_only":true}"#,
        )?;
        let value: Value =
            serde_json::from_slice(&reply).map_err(|_| internal("unexpected HEALTHZ reply"))?;
        match value["data"]["status"].as_str() {
            Some("ok") => Ok(format!(
                "nats {} reachable, JetStream healthy",
                value["server"]["ver"].as_str().unwrap_or("?")
            )),
            _ => Err(ProviderError::BackendUnavailable(format!(
                "nats unhealthy: {}",
                value["data"]
            ))),
        }
    }

    // maintain: the SDK's default, which does nothing.
}

instanode_provider_kit::export_provider!(Nats);

fn system_request(subject: &str, payload: &[u8]) -> Result<Vec<u8>, ProviderError> {
    nats::request(subject, payload, REQUEST_TIMEOUT_MS).map_err(from_capability)
}

/// Failures of the `nats` and `signer` capabilities. Nobody answering a request means the
/// server is not ready (JetStream still starting, say): retryable.
fn from_capability(e: CapabilityError) -> ProviderError {
    match e {
        CapabilityError::Backend(e) if e.code == "no-responders" => {
            ProviderError::BackendUnavailable(e.message)
        }
        other => other.into(),
    }
}

/// The text of a capability error, for messages.
fn message(e: CapabilityError) -> String {
    match e {
        CapabilityError::Backend(e) => format!("{}: {}", e.code, e.message),
        CapabilityError::NotGranted(m)
        | CapabilityError::Unavailable(m)
        | CapabilityError::Timeout(m)
        | CapabilityError::Invalid(m)
        | CapabilityError::NotFound(m)
        | CapabilityError::Internal(m) => m,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
