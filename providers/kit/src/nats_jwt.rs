//! NATS decentralized-auth JWTs (claims format version 2).
//!
//! A JWT is `base64url(header) . base64url(claims) . base64url(signature)`, where the
//! signature is the issuer nkey's Ed25519 signature over the first two parts. The signing
//! itself is a closure, so the same code serves keys held in a component and keys the host
//! signs with on a component's behalf.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

const HEADER: &str = r#"{"typ":"JWT","alg":"ed25519-nkey"}"#;

/// What a JWT says, before signing.
pub struct Claims {
    /// The issuer's public nkey (`O...` for an operator, `A...` for an account).
    pub issuer: String,
    /// The subject's public nkey.
    pub subject: String,
    pub name: String,
    /// Seconds since the Unix epoch.
    pub issued_at: u64,
    /// The `nats` section: type-specific fields, `type` and `version` included.
    pub nats: Value,
}

impl Claims {
    /// Encodes and signs. `sign` receives the bytes to sign and returns the signature.
    pub fn encode(
        &self,
        sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, String>,
    ) -> Result<String, String> {
        let id = crate::random_bytes::<16>()?;
        let claims = json!({
            "jti": hex_upper(&id),
            "iat": self.issued_at,
            "iss": self.issuer,
            "sub": self.subject,
            "name": self.name,
            "nats": self.nats,
        });
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = sign(signed.as_bytes())?;
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// The limits of an account, as NATS names them. `-1` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountLimits {
    pub connections: i64,
    pub disk_storage_bytes: i64,
    pub memory_storage_bytes: i64,
    pub streams: i64,
    pub consumers: i64,
    /// Largest single message payload.
    pub max_payload_bytes: i64,
    /// Subscriptions held at once across the account's connections (each costs the server
    /// memory, so a tenant must not open them without bound).
    pub subscriptions: i64,
}

impl AccountLimits {
    /// No limits and JetStream off: the system account.
    pub const SYSTEM: Self = Self {
        connections: -1,
        disk_storage_bytes: 0,
        memory_storage_bytes: 0,
        streams: 0,
        consumers: 0,
        max_payload_bytes: -1,
        subscriptions: -1,
    };
}

/// The `nats` section of an operator JWT.
pub fn operator(system_account: &str) -> Value {
    json!({"system_account": system_account, "type": "operator", "version": 2})
}

/// The `nats` section of an account JWT. Every limit is explicit: an account JWT without
/// them gets zero connections.
pub fn account(limits: &AccountLimits, revoke_users_issued_before: Option<u64>) -> Value {
    let mut nats = json!({
        "limits": {
            "subs": limits.subscriptions, "data": -1, "payload": limits.max_payload_bytes,
            "imports": -1, "exports": -1, "wildcards": true,
            "conn": limits.connections, "leaf": 0,
            "mem_storage": limits.memory_storage_bytes,
            "disk_storage": limits.disk_storage_bytes,
            "streams": limits.streams, "consumer": limits.consumers,
        },
        "default_permissions": {"pub": {}, "sub": {}},
        "type": "account",
        "version": 2,
    });
    if let Some(at) = revoke_users_issued_before {
        // `*`: every user of the account issued at or before `at`.
        nats["revocations"] = json!({"*": at});
    }
    nats
}

/// The cut-off of an account JWT's wildcard revocation: users issued at or before it are
/// revoked. `None` when the JWT revokes no one (or cannot be read).
pub fn revocation_cutoff(account_jwt: &str) -> Option<u64> {
    claims_of(account_jwt)?["nats"]["revocations"]["*"].as_u64()
}

/// The claims of a JWT, unverified: only for reading back what this side signed.
pub fn claims_of(jwt: &str) -> Option<Value> {
    let payload = jwt.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// The `nats` section of a user JWT with the account's default permissions.
pub fn user() -> Value {
    json!({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
           "type": "user", "version": 2})
}

/// The `nats` section of the operator-signed request that deletes `accounts` from a full
/// resolver (`$SYS.REQ.CLAIMS.DELETE`).
pub fn delete_accounts(accounts: &[&str]) -> Value {
    json!({"accounts": accounts, "type": "generic", "version": 2})
}

/// A `.creds` file: the user JWT and its nkey seed, in the layout NATS clients read.
pub fn creds_file(user_jwt: &str, user_seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{user_seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

/// Whether a `$SYS.REQ.CLAIMS.*` reply reports success; the server's words otherwise.
pub fn claims_reply_ok(reply: &[u8]) -> Result<(), String> {
    let value: Value = serde_json::from_slice(reply)
        .map_err(|_| format!("unexpected reply {:?}", String::from_utf8_lossy(reply)))?;
    if let Some(error) = value.get("error") {
        return Err(error["description"]
            .as_str()
            .unwrap_or("refused")
            .to_string());
    }
    match value["data"]["code"].as_i64() {
        Some(200) => Ok(()),
        _ => Err(format!("unexpected reply {value}")),
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwt_has_three_parts_and_signs_the_first_two() {
        let claims = Claims {
            issuer: "OISSUER".into(),
            subject: "ASUBJECT".into(),
            name: "t".into(),
            issued_at: 1,
            nats: account(&AccountLimits::SYSTEM, None),
        };
        let mut signed = Vec::new();
        let jwt = claims
            .encode(|bytes| {
                signed = bytes.to_vec();
                Ok(vec![7; 64])
            })
            .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(signed, format!("{}.{}", parts[0], parts[1]).into_bytes());
        let body: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(body["iss"], "OISSUER");
        assert_eq!(body["nats"]["limits"]["conn"], -1);
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap(), vec![7; 64]);
    }

    #[test]
    fn claims_replies_are_read() {
        assert!(claims_reply_ok(br#"{"data":{"code":200,"message":"jwt updated"}}"#).is_ok());
        let refused = claims_reply_ok(br#"{"error":{"code":500,"description":"not trusted"}}"#);
        assert_eq!(refused.unwrap_err(), "not trusted");
        assert!(claims_reply_ok(b"garbage").is_err());
    }
}
