//! Invitations to join a team, and joining one.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;
use super::accounts::{ACCOUNT, Account};

/// An invitation as listed (never its secret).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    pub id: Uuid,
    pub email: String,
    pub invited_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A new invitation.
pub struct NewInvitation<'a> {
    pub team_id: Uuid,
    pub email: &'a str,
    pub invited_by: &'a str,
    pub token_hash: &'a [u8],
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What an invitation link stands for, while it can still be used.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenInvitation {
    pub id: Uuid,
    pub team_id: Uuid,
    pub team_name: String,
    pub email: String,
    pub invited_by: String,
}

/// How accepting an invitation ended.
#[derive(Debug)]
pub enum Joined {
    /// The person is now a member; their account as it is now.
    Member(Account),
    /// The link is unknown, used, revoked or expired.
    Gone,
    /// The person is the only member of a team that still holds live resources: moving
    /// them would leave those with nobody.
    WouldStrand { resources: i64 },
}

impl Store {
    /// Records an invitation; an older pending one for the same address is revoked, so
    /// only the newest link works.
    pub async fn insert_invitation(&self, new: &NewInvitation<'_>) -> sqlx::Result<Uuid> {
        let id = Uuid::new_v4();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE team_invitations SET revoked_at = $3
             WHERE team_id = $1 AND email = $2 AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(new.team_id)
        .bind(new.email)
        .bind(new.now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO team_invitations
                 (id, team_id, email, invited_by, token_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(new.team_id)
        .bind(new.email)
        .bind(new.invited_by)
        .bind(new.token_hash)
        .bind(new.now)
        .bind(new.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The team's invitations that can still be accepted, oldest first.
    pub async fn pending_invitations(
        &self,
        team_id: Uuid,
        now: DateTime<Utc>,
    ) -> sqlx::Result<Vec<InvitationRow>> {
        sqlx::query_as(
            "SELECT id, email, invited_by, created_at, expires_at FROM team_invitations
             WHERE team_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2
             ORDER BY created_at",
        )
        .bind(team_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await
    }

    /// Revokes one of the team's pending invitations; false when it has no such one.
    pub async fn revoke_invitation(
        &self,
        team_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "UPDATE team_invitations SET revoked_at = $3
             WHERE id = $1 AND team_id = $2 AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(team_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The invitation behind a link, if it can still be accepted.
    pub async fn open_invitation(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> sqlx::Result<Option<OpenInvitation>> {
        sqlx::query_as(
            "SELECT i.id, i.team_id, t.name AS team_name, i.email, i.invited_by
             FROM team_invitations i JOIN teams t ON t.id = i.team_id
             WHERE i.token_hash = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL
               AND i.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
    }

    /// Accepts the invitation behind a link, once: the invited address joins the team (a
    /// new user, or one moved from the team they were in).
    pub async fn accept_invitation(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> sqlx::Result<Joined> {
        let mut tx = self.pool.begin().await?;
        let invitation: Option<(Uuid, String)> = sqlx::query_as(
            "UPDATE team_invitations SET accepted_at = $2
             WHERE token_hash = $1 AND accepted_at IS NULL AND revoked_at IS NULL
               AND expires_at > $2
             RETURNING team_id, email",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((team_id, email)) = invitation else {
            return Ok(Joined::Gone);
        };
        // The same lock as `account_for_email`: one account per address, even when a
        // sign-in races the acceptance.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7342))")
            .bind(format!("email:{email}"))
            .execute(&mut *tx)
            .await?;
        let existing: Option<(Uuid, Uuid)> =
            sqlx::query_as("SELECT id, team_id FROM users WHERE email = $1")
                .bind(&email)
                .fetch_optional(&mut *tx)
                .await?;
        match existing {
            Some((_, current)) if current == team_id => {}
            Some((user_id, current)) => {
                let (members, resources): (i64, i64) = sqlx::query_as(
                    "SELECT (SELECT count(*) FROM users WHERE team_id = $1),
                            (SELECT count(*) FROM resources WHERE team_id = $1
                               AND status IN ('pending', 'active', 'suspended', 'deleting'))",
                )
                .bind(current)
                .fetch_one(&mut *tx)
                .await?;
                if members == 1 && resources > 0 {
                    return Ok(Joined::WouldStrand { resources });
                }
                sqlx::query("UPDATE users SET team_id = $2 WHERE id = $1")
                    .bind(user_id)
                    .bind(team_id)
                    .execute(&mut *tx)
                    .await?;
                // Keys act for their user's team: the old team's must not follow them.
                sqlx::query(
                    "UPDATE api_keys SET revoked_at = $3
                     WHERE user_id = $1 AND team_id <> $2 AND revoked_at IS NULL",
                )
                .bind(user_id)
                .bind(team_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "INSERT INTO users (id, email, team_id, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(Uuid::new_v4())
                .bind(&email)
                .bind(team_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        let account: Account = sqlx::query_as(&format!("{ACCOUNT} WHERE u.email = $1"))
            .bind(&email)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Joined::Member(account))
    }
}
