//! Teams, users, email links, claims, sessions and API keys.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;
use super::resources::ResourceRow;

/// A signed-in user and their team.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Account {
    pub user_id: Uuid,
    pub email: String,
    pub team_id: Uuid,
    pub team_name: String,
    pub tier: String,
}

/// What an email link was for, once consumed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UsedLink {
    pub email: String,
    pub purpose: String,
    /// For a claim: the resources it moves.
    pub resource_tokens: Option<Vec<Uuid>>,
}

/// A new email link.
pub struct NewLink<'a> {
    pub token_hash: &'a [u8],
    pub email: &'a str,
    pub purpose: &'a str,
    /// For a claim: the resources it moves.
    pub resource_tokens: &'a [Uuid],
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// An API key as listed (never its secret).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub name: String,
    /// The key's first characters (none for keys made before they were kept).
    pub prefix: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A new API key as stored: its hash, and the first characters people see.
pub struct NewKey<'a> {
    pub hash: &'a [u8],
    pub prefix: &'a str,
}

/// A member of a team.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Member {
    pub email: String,
    pub joined_at: DateTime<Utc>,
    /// Live API keys the member made.
    pub api_keys: i64,
}

pub(super) const ACCOUNT: &str =
    "SELECT u.id AS user_id, u.email, t.id AS team_id, t.name AS team_name, t.tier
     FROM users u JOIN teams t ON t.id = u.team_id";

impl Store {
    /// Records that the upgrade token `jti` is being claimed; false when it already was.
    pub async fn mark_claimed(
        &self,
        jti: &str,
        email: &str,
        now: DateTime<Utc>,
    ) -> sqlx::Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO claimed_tokens (jti, email, claimed_at) VALUES ($1, $2, $3)
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(email)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Releases a claim that could not be completed (its email was never sent).
    pub async fn unmark_claimed(&self, jti: &str) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM claimed_tokens WHERE jti = $1")
            .bind(jti)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn is_claimed(&self, jti: &str) -> sqlx::Result<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM claimed_tokens WHERE jti = $1)")
            .bind(jti)
            .fetch_one(&self.pool)
            .await
    }

    pub async fn insert_email_link(&self, link: &NewLink<'_>) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO email_links (token_hash, email, purpose, resource_tokens, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(link.token_hash)
        .bind(link.email)
        .bind(link.purpose)
        .bind(link.resource_tokens)
        .bind(link.now)
        .bind(link.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Consumes a link: once, and only before it expires.
    pub async fn use_email_link(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> sqlx::Result<Option<UsedLink>> {
        sqlx::query_as(
            "UPDATE email_links SET used_at = $2
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
             RETURNING email, purpose, resource_tokens",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
    }

    /// The account of `email`, created with a team of its own (at `tier`) on first use.
    pub async fn account_for_email(
        &self,
        email: &str,
        tier: &str,
        now: DateTime<Utc>,
    ) -> sqlx::Result<Account> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7342))")
            .bind(format!("email:{email}"))
            .execute(&mut *tx)
            .await?;
        let existing: Option<Account> = sqlx::query_as(&format!("{ACCOUNT} WHERE u.email = $1"))
            .bind(email)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(account) = existing {
            tx.commit().await?;
            return Ok(account);
        }
        let (team_id, user_id) = (Uuid::new_v4(), Uuid::new_v4());
        sqlx::query("INSERT INTO teams (id, name, tier, created_at) VALUES ($1, $2, $3, $4)")
            .bind(team_id)
            .bind(email)
            .bind(tier)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO users (id, email, team_id, created_at) VALUES ($1, $2, $3, $4)")
            .bind(user_id)
            .bind(email)
            .bind(team_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Account {
            user_id,
            email: email.to_string(),
            team_id,
            team_name: email.to_string(),
            tier: tier.to_string(),
        })
    }

    pub async fn account(&self, user_id: Uuid) -> sqlx::Result<Option<Account>> {
        sqlx::query_as(&format!("{ACCOUNT} WHERE u.id = $1"))
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
    }

    /// Moves the listed live anonymous resources to the team, at `tier`. Returns how many
    /// moved. Their URLs and credentials do not change.
    pub async fn move_to_team(
        &self,
        tokens: &[Uuid],
        team_id: Uuid,
        tier: &str,
        now: DateTime<Utc>,
    ) -> sqlx::Result<u64> {
        let moved = sqlx::query(
            "UPDATE resources SET team_id = $2, tier = $3, updated_at = $4, claimed_at = $4
             WHERE token = ANY($1) AND team_id IS NULL
               AND status IN ('pending', 'active', 'suspended')",
        )
        .bind(tokens)
        .bind(team_id)
        .bind(tier)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(moved.rows_affected())
    }

    /// Which of the listed resources are live and anonymous (what a claim would move).
    pub async fn claimable(&self, tokens: &[Uuid]) -> sqlx::Result<Vec<ResourceRow>> {
        self.resources_where(
            "token = ANY($1) AND team_id IS NULL AND status IN ('pending', 'active', 'suspended')",
            tokens.to_vec(),
        )
        .await
    }

    /// A team's resources that have not ended, newest first.
    pub async fn team_resources(&self, team_id: Uuid) -> sqlx::Result<Vec<ResourceRow>> {
        self.resources_where(
            "team_id = $1 AND status IN ('pending', 'active', 'suspended', 'deleting')",
            team_id,
        )
        .await
    }

    pub async fn revoke_session(&self, jti: &str, expires_at: DateTime<Utc>) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO revoked_sessions (jti, expires_at) VALUES ($1, $2)
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn is_session_revoked(&self, jti: &str) -> sqlx::Result<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM revoked_sessions WHERE jti = $1)")
            .bind(jti)
            .fetch_one(&self.pool)
            .await
    }

    pub async fn insert_api_key(
        &self,
        account: &Account,
        name: &str,
        key: &NewKey<'_>,
        skip_delete_confirmation: bool,
        now: DateTime<Utc>,
    ) -> sqlx::Result<Uuid> {
        let id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO api_keys (id, team_id, user_id, name, key_hash, prefix, created_at,
                 skip_delete_confirmation)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(account.team_id)
        .bind(account.user_id)
        .bind(name)
        .bind(key.hash)
        .bind(key.prefix)
        .bind(now)
        .bind(skip_delete_confirmation)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// The account behind a live API key (and notes its use).
    pub async fn account_for_api_key(
        &self,
        key_hash: &[u8],
        now: DateTime<Utc>,
    ) -> sqlx::Result<Option<Account>> {
        let user: Option<Uuid> = sqlx::query_scalar(
            "UPDATE api_keys SET last_used_at = $2
             WHERE key_hash = $1 AND revoked_at IS NULL RETURNING user_id",
        )
        .bind(key_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        match user {
            Some(user) => self.account(user).await,
            None => Ok(None),
        }
    }

    pub async fn team_api_keys(&self, team_id: Uuid) -> sqlx::Result<Vec<ApiKeyRow>> {
        sqlx::query_as(
            "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_keys
             WHERE team_id = $1 ORDER BY created_at",
        )
        .bind(team_id)
        .fetch_all(&self.pool)
        .await
    }

    /// The team's members, first to join first.
    pub async fn team_members(&self, team_id: Uuid) -> sqlx::Result<Vec<Member>> {
        sqlx::query_as(
            "SELECT u.email, u.created_at AS joined_at,
                    (SELECT count(*) FROM api_keys k
                      WHERE k.user_id = u.id AND k.revoked_at IS NULL) AS api_keys
             FROM users u WHERE u.team_id = $1 ORDER BY u.created_at",
        )
        .bind(team_id)
        .fetch_all(&self.pool)
        .await
    }

    /// Revokes a team's key; false when the team has no such key.
    pub async fn revoke_api_key(
        &self,
        team_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $3)
             WHERE id = $1 AND team_id = $2",
        )
        .bind(id)
        .bind(team_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    /// The team of a user's email, or the team with this id.
    pub async fn find_team(&self, team: &str) -> sqlx::Result<Option<(Uuid, String)>> {
        let by_id = Uuid::parse_str(team).ok();
        sqlx::query_as(
            "SELECT t.id, t.tier FROM teams t
             WHERE t.id = $1 OR t.id = (SELECT team_id FROM users WHERE email = lower($2))",
        )
        .bind(by_id)
        .bind(team)
        .fetch_optional(&self.pool)
        .await
    }

    /// The team's default lifetime policy for new apps (`auto_24h` or `permanent`).
    pub async fn team_ttl_policy(&self, team_id: Uuid) -> sqlx::Result<String> {
        sqlx::query_scalar("SELECT default_deployment_ttl_policy FROM teams WHERE id = $1")
            .bind(team_id)
            .fetch_one(&self.pool)
            .await
    }

    pub async fn set_team_ttl_policy(&self, team_id: Uuid, policy: &str) -> sqlx::Result<()> {
        sqlx::query("UPDATE teams SET default_deployment_ttl_policy = $2 WHERE id = $1")
            .bind(team_id)
            .bind(policy)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_team_tier(&self, team_id: Uuid, tier: &str) -> sqlx::Result<()> {
        sqlx::query("UPDATE teams SET tier = $2 WHERE id = $1")
            .bind(team_id)
            .bind(tier)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Moves one resource to a tier: its limits, and its expiry (`None` keeps it).
    pub async fn set_resource_tier(
        &self,
        id: Uuid,
        tier: &str,
        limits: &serde_json::Value,
        expires_at: Option<Option<DateTime<Utc>>>,
        now: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE resources SET tier = $2, limits = $3,
                 expires_at = CASE WHEN $4 THEN $5 ELSE expires_at END, updated_at = $6
             WHERE id = $1",
        )
        .bind(id)
        .bind(tier)
        .bind(limits)
        .bind(expires_at.is_some())
        .bind(expires_at.flatten())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// A CLI sign-in waiting for approval, or approved.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CliSession {
    pub status: String,
    pub sealed_api_key: Option<Vec<u8>>,
    pub user_id: Option<Uuid>,
}

impl Store {
    pub async fn insert_cli_session(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO cli_sessions (id, status, created_at, expires_at)
             VALUES ($1, 'pending', $2, $3)",
        )
        .bind(id)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Approves a pending, unexpired session with a sealed key; false otherwise.
    pub async fn approve_cli_session(
        &self,
        id: Uuid,
        user_id: Uuid,
        sealed_api_key: &[u8],
        now: DateTime<Utc>,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "UPDATE cli_sessions SET status = 'approved', sealed_api_key = $3, user_id = $2
             WHERE id = $1 AND status = 'pending' AND expires_at > $4",
        )
        .bind(id)
        .bind(user_id)
        .bind(sealed_api_key)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Reads a session; an approved one is handed over once (then it is collected).
    pub async fn poll_cli_session(&self, id: Uuid, now: DateTime<Utc>) -> sqlx::Result<CliPoll> {
        let mut tx = self.pool.begin().await?;
        type Row = (String, Option<Vec<u8>>, Option<Uuid>, DateTime<Utc>);
        let session = sqlx::query_as::<_, Row>(
            "SELECT status, sealed_api_key, user_id, expires_at FROM cli_sessions
             WHERE id = $1 AND status <> 'collected' FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|(status, sealed_api_key, user_id, expires_at)| {
            let session = CliSession {
                status,
                sealed_api_key,
                user_id,
            };
            (session, expires_at)
        });
        let session = match session {
            None => return Ok(CliPoll::Unknown),
            Some((_, expires_at)) if expires_at <= now => return Ok(CliPoll::Expired),
            Some((session, _)) => session,
        };
        if session.status == "approved" {
            sqlx::query(
                "UPDATE cli_sessions SET status = 'collected', sealed_api_key = NULL WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(CliPoll::Live(session))
    }
}

/// What polling a CLI session finds.
pub enum CliPoll {
    Live(CliSession),
    /// Never approved in time.
    Expired,
    /// Unknown, or already collected.
    Unknown,
}

/// Where a billing event stands against those already applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingEventFate {
    /// Not seen, and no newer event of its team applied: apply it.
    New,
    /// Applied before under this id.
    Duplicate,
    /// Older than an event already applied to its team.
    Stale,
}

impl Store {
    pub async fn billing_event_fate(
        &self,
        id: &str,
        team_id: Uuid,
        created_at: DateTime<Utc>,
    ) -> sqlx::Result<BillingEventFate> {
        let (seen, newer): (bool, bool) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM billing_events WHERE id = $1),
                    EXISTS (SELECT 1 FROM billing_events WHERE team_id = $2 AND created_at > $3)",
        )
        .bind(id)
        .bind(team_id)
        .bind(created_at)
        .fetch_one(&self.pool)
        .await?;
        Ok(if seen {
            BillingEventFate::Duplicate
        } else if newer {
            BillingEventFate::Stale
        } else {
            BillingEventFate::New
        })
    }

    /// Remembers an applied (or stale) billing event, so its replays change nothing.
    pub async fn record_billing_event(
        &self,
        id: &str,
        team_id: Uuid,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO billing_events (id, team_id, created_at, received_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(team_id)
        .bind(created_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
