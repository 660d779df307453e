//! Certificates, ACME accounts and answers, and custom domains: what every replica needs to
//! serve the same names over HTTPS.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;

const DOMAIN_COLUMNS: &str =
    "domain, resource_id, verification_token, verified_at, last_checked_at, created_at";

/// Announces that a certificate or a custom domain changed, so every replica reloads them.
pub const TLS_CHANNEL: &str = "instanode_tls";

/// A name whose certificate is due: never issued, failed, or close to its end.
#[derive(Debug, sqlx::FromRow)]
pub struct DueCertificate {
    pub name: String,
    /// `dns-01` or `http-01`.
    pub challenge: String,
    pub not_after: Option<DateTime<Utc>>,
    pub attempts: i32,
}

/// A certificate the host holds, with its sealed private key.
#[derive(Debug, sqlx::FromRow)]
pub struct HeldCertificate {
    pub name: String,
    pub chain_pem: String,
    pub key_sealed: Vec<u8>,
}

/// A name the host serves over HTTPS, as operators and owners see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CertificateState {
    pub name: String,
    pub status: String,
    pub not_after: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// A domain an owner brought for an app.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CustomDomain {
    pub domain: String,
    pub resource_id: Uuid,
    pub verification_token: String,
    pub verified_at: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Why a custom domain was not added.
#[derive(Debug, PartialEq, Eq)]
pub enum DomainRefusal {
    /// Another app (anyone's) proved it first.
    Taken,
    /// The team holds as many as its tier allows.
    AtLimit,
}

impl Store {
    /// Tells every replica (this one included) that certificates or domains changed.
    pub async fn announce_tls_change(&self) -> sqlx::Result<()> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(TLS_CHANNEL)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The sealed ACME account credentials for `directory`, if one was made.
    pub async fn acme_account(&self, directory: &str) -> sqlx::Result<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT credentials FROM acme_accounts WHERE directory = $1")
            .bind(directory)
            .fetch_optional(&self.pool)
            .await
    }

    /// Keeps the first account made for `directory` (two replicas may race to make one) and
    /// returns the one kept.
    pub async fn keep_acme_account(&self, directory: &str, sealed: &[u8]) -> sqlx::Result<Vec<u8>> {
        sqlx::query(
            "INSERT INTO acme_accounts (directory, credentials) VALUES ($1, $2)
             ON CONFLICT (directory) DO NOTHING",
        )
        .bind(directory)
        .bind(sealed)
        .execute(&self.pool)
        .await?;
        sqlx::query_scalar("SELECT credentials FROM acme_accounts WHERE directory = $1")
            .bind(directory)
            .fetch_one(&self.pool)
            .await
    }

    /// Asks for a certificate for `name`, proven by `challenge`; nothing changes if it is
    /// already wanted.
    pub async fn want_certificate(&self, name: &str, challenge: &str) -> sqlx::Result<bool> {
        let added = sqlx::query(
            "INSERT INTO tls_certificates (name, challenge, status) VALUES ($1, $2, 'issuing')
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(challenge)
        .execute(&self.pool)
        .await?;
        Ok(added.rows_affected() == 1)
    }

    /// Stops serving and renewing `name`.
    pub async fn forget_certificate(&self, name: &str) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM tls_certificates WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every name with a certificate row.
    pub async fn certificate_names(&self) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar("SELECT name FROM tls_certificates")
            .fetch_all(&self.pool)
            .await
    }

    /// Takes one due certificate for `lease_secs`, so other replicas leave it alone.
    pub async fn take_due_certificate(
        &self,
        lease_secs: f64,
    ) -> sqlx::Result<Option<DueCertificate>> {
        sqlx::query_as(
            "UPDATE tls_certificates
                SET next_attempt_at = now() + make_interval(secs => $1)
              WHERE name = (SELECT name FROM tls_certificates WHERE next_attempt_at <= now()
                            ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING name, challenge, not_after, attempts",
        )
        .bind(lease_secs)
        .fetch_optional(&self.pool)
        .await
    }

    /// Stores a new certificate for `name`, to be renewed from `renew_at`.
    pub async fn certificate_issued(
        &self,
        name: &str,
        chain_pem: &str,
        key_sealed: &[u8],
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
        renew_at: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE tls_certificates
                SET status = 'active', chain_pem = $2, key_sealed = $3, not_before = $4,
                    not_after = $5, next_attempt_at = $6, last_error = NULL, attempts = 0,
                    updated_at = now()
              WHERE name = $1",
        )
        .bind(name)
        .bind(chain_pem)
        .bind(key_sealed)
        .bind(not_before)
        .bind(not_after)
        .bind(renew_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a failed attempt for `name`, tried again at `retry_at`. A certificate still
    /// valid keeps serving (and the row stays `active`); otherwise the name is `failed`.
    pub async fn certificate_failed(
        &self,
        name: &str,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE tls_certificates
                SET status = CASE WHEN not_after > now() THEN 'active' ELSE 'failed' END,
                    last_error = $2, attempts = attempts + 1, next_attempt_at = $3,
                    updated_at = now()
              WHERE name = $1",
        )
        .bind(name)
        .bind(error)
        .bind(retry_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A fingerprint of the stored certificates: it changes whenever one is issued, renewed
    /// or dropped, so replicas reload only then.
    pub async fn certificates_version(&self) -> sqlx::Result<(i64, Option<DateTime<Utc>>)> {
        sqlx::query_as(
            "SELECT count(*), max(updated_at) FROM tls_certificates WHERE chain_pem IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await
    }

    /// Every certificate still valid.
    pub async fn held_certificates(&self) -> sqlx::Result<Vec<HeldCertificate>> {
        sqlx::query_as(
            "SELECT name, chain_pem, key_sealed FROM tls_certificates
              WHERE chain_pem IS NOT NULL AND key_sealed IS NOT NULL AND not_after > now()",
        )
        .fetch_all(&self.pool)
        .await
    }

    /// Where each of `names` stands.
    pub async fn certificate_states(
        &self,
        names: &[String],
    ) -> sqlx::Result<Vec<CertificateState>> {
        sqlx::query_as(
            "SELECT name, status, not_after, last_error FROM tls_certificates
              WHERE name = ANY($1)",
        )
        .bind(names)
        .fetch_all(&self.pool)
        .await
    }

    /// Keeps an HTTP-01 answer until `expires_at`.
    pub async fn put_acme_challenge(
        &self,
        token: &str,
        key_authorization: &str,
        expires_at: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO acme_challenges (token, key_authorization, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (token) DO UPDATE SET key_authorization = $2, expires_at = $3",
        )
        .bind(token)
        .bind(key_authorization)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The HTTP-01 answer for `token`, while it is kept.
    pub async fn acme_challenge(&self, token: &str) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT key_authorization FROM acme_challenges WHERE token = $1 AND expires_at > now()",
        )
        .bind(token)
        .fetch_optional(&self.pool)
        .await
    }

    /// Drops the HTTP-01 answer for `token`, and any that lapsed.
    pub async fn drop_acme_challenge(&self, token: &str) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM acme_challenges WHERE token = $1 OR expires_at < now()")
            .bind(token)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Adds `domain` to app `resource_id` (or returns the app's request for it, if it made
    /// one), unless an app already proved it or the team holds `limit` domains (one
    /// transaction per team, so two requests cannot both pass the count).
    pub async fn add_custom_domain(
        &self,
        domain: &str,
        resource_id: Uuid,
        team_id: Uuid,
        verification_token: &str,
        limit: i64,
    ) -> sqlx::Result<Result<CustomDomain, DomainRefusal>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 17))")
            .bind(team_id)
            .execute(&mut *tx)
            .await?;
        let existing: Option<CustomDomain> = sqlx::query_as(&format!(
            "SELECT {DOMAIN_COLUMNS} FROM custom_domains WHERE domain = $1 AND resource_id = $2"
        ))
        .bind(domain)
        .bind(resource_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(existing) = existing {
            return Ok(Ok(existing));
        }
        let proven: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM custom_domains WHERE domain = $1 AND verified_at IS NOT NULL)",
        )
        .bind(domain)
        .fetch_one(&mut *tx)
        .await?;
        if proven {
            return Ok(Err(DomainRefusal::Taken));
        }
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM custom_domains c JOIN resources r ON r.id = c.resource_id
              WHERE r.team_id = $1",
        )
        .bind(team_id)
        .fetch_one(&mut *tx)
        .await?;
        if held >= limit {
            return Ok(Err(DomainRefusal::AtLimit));
        }
        let added: CustomDomain = sqlx::query_as(&format!(
            "INSERT INTO custom_domains (domain, resource_id, verification_token)
             VALUES ($1, $2, $3) RETURNING {DOMAIN_COLUMNS}"
        ))
        .bind(domain)
        .bind(resource_id)
        .bind(verification_token)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(added))
    }

    /// The domains of the apps `resource_ids` (a stack's services, or one app), oldest first.
    pub async fn custom_domains_of(
        &self,
        resource_ids: &[Uuid],
    ) -> sqlx::Result<Vec<CustomDomain>> {
        sqlx::query_as(&format!(
            "SELECT {DOMAIN_COLUMNS} FROM custom_domains WHERE resource_id = ANY($1)
              ORDER BY created_at, domain"
        ))
        .bind(resource_ids)
        .fetch_all(&self.pool)
        .await
    }

    /// Removes `domain` from app `resource_id`, with its certificate if the app had proven
    /// it; false if the app does not have it.
    pub async fn remove_custom_domain(
        &self,
        domain: &str,
        resource_id: Uuid,
    ) -> sqlx::Result<bool> {
        let mut tx = self.pool.begin().await?;
        let removed: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
            "DELETE FROM custom_domains WHERE domain = $1 AND resource_id = $2
             RETURNING verified_at",
        )
        .bind(domain)
        .bind(resource_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(Some(_)) = removed {
            sqlx::query("DELETE FROM tls_certificates WHERE name = $1")
                .bind(domain)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(removed.is_some())
    }

    /// Drops the domains (and their certificates) of apps that ended, freeing the names.
    pub async fn release_domains_of_ended_apps(&self) -> sqlx::Result<u64> {
        let mut tx = self.pool.begin().await?;
        let released: Vec<(String, Option<DateTime<Utc>>)> = sqlx::query_as(
            "DELETE FROM custom_domains c USING resources r
              WHERE r.id = c.resource_id AND r.status NOT IN ('pending', 'active', 'suspended')
             RETURNING c.domain, c.verified_at",
        )
        .fetch_all(&mut *tx)
        .await?;
        let proven: Vec<String> = released
            .iter()
            .filter(|(_, verified)| verified.is_some())
            .map(|(domain, _)| domain.clone())
            .collect();
        sqlx::query("DELETE FROM tls_certificates WHERE name = ANY($1)")
            .bind(&proven)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(released.len() as u64)
    }

    /// Unverified domains of live apps not checked since `checked_before`.
    pub async fn domains_to_verify(
        &self,
        checked_before: DateTime<Utc>,
    ) -> sqlx::Result<Vec<CustomDomain>> {
        sqlx::query_as(
            "SELECT c.domain, c.resource_id, c.verification_token, c.verified_at,
                    c.last_checked_at, c.created_at
               FROM custom_domains c JOIN resources r ON r.id = c.resource_id
              WHERE c.verified_at IS NULL AND r.status IN ('active', 'suspended')
                AND (c.last_checked_at IS NULL OR c.last_checked_at < $1)
              ORDER BY c.last_checked_at NULLS FIRST LIMIT 100",
        )
        .bind(checked_before)
        .fetch_all(&self.pool)
        .await
    }

    /// Records a check of app `resource_id`'s request for `domain`. Proven, the app gets the
    /// domain (unless another app proved it first: false), the other apps' requests for it
    /// go, and a certificate is asked for.
    pub async fn domain_checked(
        &self,
        domain: &str,
        resource_id: Uuid,
        proven: bool,
    ) -> sqlx::Result<bool> {
        let mut tx = self.pool.begin().await?;
        let taken: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM custom_domains
                             WHERE domain = $1 AND resource_id <> $2 AND verified_at IS NOT NULL)",
        )
        .bind(domain)
        .bind(resource_id)
        .fetch_one(&mut *tx)
        .await?;
        let proven = proven && !taken;
        let updated = sqlx::query(
            "UPDATE custom_domains
                SET last_checked_at = now(),
                    verified_at = CASE WHEN $3 THEN coalesce(verified_at, now()) ELSE verified_at END
              WHERE domain = $1 AND resource_id = $2",
        )
        .bind(domain)
        .bind(resource_id)
        .bind(proven)
        .execute(&mut *tx)
        .await;
        match updated {
            Ok(_) => {}
            // Two apps proving at once: the unique index lets one through.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(false),
            Err(e) => return Err(e),
        }
        if proven {
            sqlx::query(
                "DELETE FROM custom_domains WHERE domain = $1 AND resource_id <> $2
                   AND verified_at IS NULL",
            )
            .bind(domain)
            .bind(resource_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO tls_certificates (name, challenge, status) VALUES ($1, 'http-01', 'issuing')
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(domain)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(proven)
    }

    /// Every proven domain of a live app, with the app's slug: what the proxy routes.
    pub async fn routed_domains(&self) -> sqlx::Result<Vec<(String, String)>> {
        sqlx::query_as(
            "SELECT c.domain, d.slug FROM custom_domains c
               JOIN resources r ON r.id = c.resource_id
               JOIN deployments d ON d.resource_id = c.resource_id
              WHERE c.verified_at IS NOT NULL AND r.status IN ('active', 'suspended') AND d.slug IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await
    }

    /// The slugs of every live app: the names per-app certificates are kept for.
    pub async fn live_app_slugs(&self) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT d.slug FROM deployments d JOIN resources r ON r.id = d.resource_id
              WHERE r.status IN ('active', 'suspended') AND d.slug IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await
    }
}
