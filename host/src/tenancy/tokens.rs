//! Upgrade tokens: the HS256 JWT handed out with every anonymous resource, naming it, so the
//! caller can claim it (or authorise a deploy) later.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const ISSUER: &str = "instanode";
/// Sessions carry their own issuer, so neither kind of token passes for the other.
const SESSION_ISSUER: &str = "instanode-session";
/// A session lasts a day; then the user signs in again.
pub const SESSION_HOURS: i64 = 24;
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

/// A signed-in user's session token.
#[derive(Debug, Serialize, Deserialize)]
pub struct SessionClaims {
    /// The user id.
    pub sub: String,
    /// The team id.
    pub tid: String,
    pub email: String,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
    /// Unique per session: a logout revokes it.
    pub jti: String,
}

/// Signs and checks upgrade and session tokens.
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

    /// A 24-hour session for `user` of `team`.
    pub fn session_token(
        &self,
        user: Uuid,
        team: Uuid,
        email: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(String, SessionClaims)> {
        let claims = SessionClaims {
            sub: user.to_string(),
            tid: team.to_string(),
            email: email.to_string(),
            iss: SESSION_ISSUER.into(),
            iat: now.timestamp(),
            exp: (now + Duration::hours(SESSION_HOURS)).timestamp(),
            jti: Uuid::new_v4().to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, claims))
    }

    pub fn verify_session(&self, token: &str) -> anyhow::Result<SessionClaims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[SESSION_ISSUER]);
        Ok(jsonwebtoken::decode::<SessionClaims>(token, &self.decoding, &validation)?.claims)
    }

    /// The resource a caller proves it holds with `proof`: its token, or a valid upgrade
    /// JWT issued for it.
    pub fn resource_proven_by(&self, proof: &str) -> Option<Uuid> {
        proof
            .parse()
            .ok()
            .or_else(|| self.verify(proof).ok()?.sub.parse().ok())
    }

    pub fn verify(&self, token: &str) -> anyhow::Result<UpgradeClaims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        Ok(jsonwebtoken::decode::<UpgradeClaims>(token, &self.decoding, &validation)?.claims)
    }
}

/// Whether a presented secret equals the expected one. Compares SHA-256 digests, so the time
/// taken does not depend on where the two differ.
pub fn secrets_equal(presented: &str, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    Sha256::digest(presented.as_bytes()) == Sha256::digest(expected.as_bytes())
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
