//! Upgrade tokens: the HS256 JWT handed out with every anonymous resource, naming it, so the
//! caller can claim it (or authorise a deploy) later.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const ISSUER: &str = "instanode";
/// Upgrade tokens outlive the resource so a late claim still finds it.
const LIFETIME_DAYS: i64 = 7;

#[derive(Debug, Serialize, Deserialize)]
pub struct UpgradeClaims {
    /// The resource token.
    pub sub: String,
    pub kind: String,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
    /// Unique per token.
    pub jti: String,
}

/// Signs and checks upgrade tokens.
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenSigner {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    pub fn upgrade_token(
        &self,
        resource_token: Uuid,
        kind: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<String> {
        let claims = UpgradeClaims {
            sub: resource_token.to_string(),
            kind: kind.to_string(),
            iss: ISSUER.into(),
            iat: now.timestamp(),
            exp: (now + Duration::days(LIFETIME_DAYS)).timestamp(),
            jti: Uuid::new_v4().to_string(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    pub fn verify(&self, token: &str) -> anyhow::Result<UpgradeClaims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        Ok(jsonwebtoken::decode::<UpgradeClaims>(token, &self.decoding, &validation)?.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_other_keys() {
        let signer = TokenSigner::new(b"0123456789abcdef0123");
        let resource = Uuid::new_v4();
        let token = signer.upgrade_token(resource, "db", Utc::now()).unwrap();
        let claims = signer.verify(&token).unwrap();
        assert_eq!(claims.sub, resource.to_string());
        assert_eq!(claims.kind, "db");
        assert!(
            TokenSigner::new(b"another-secret-key-123")
                .verify(&token)
                .is_err()
        );
    }
}
