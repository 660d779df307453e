//! What happened lately in a team, gathered from the tables that already record it:
//! provisions, claims and ends of resources, rollouts, credential reveals and rotations,
//! and vault reads and writes.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;

/// One thing that happened.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Activity {
    pub at: DateTime<Utc>,
    /// `provisioned`, `claimed`, `ended`, `deployed`, `reveal`, `rotate`, or `vault <action>`.
    pub action: String,
    /// The resource's kind, or `vault`.
    pub kind: String,
    /// The resource's name, or the vault entry as `env/KEY`.
    pub subject: String,
    /// The resource, when there is one to link to.
    pub token: Option<Uuid>,
    /// Who did it, when that is recorded.
    pub actor: Option<String>,
}

impl Store {
    /// The team's newest `limit` events, newest first.
    pub async fn team_activity(&self, team_id: Uuid, limit: i64) -> sqlx::Result<Vec<Activity>> {
        sqlx::query_as(
            "SELECT at, action, kind, subject, token, actor FROM (
                SELECT created_at AS at, 'provisioned' AS action, kind, name AS subject,
                       token, NULL::text AS actor
                  FROM resources WHERE team_id = $1
                UNION ALL
                SELECT claimed_at, 'claimed', kind, name, token, NULL
                  FROM resources WHERE team_id = $1 AND claimed_at IS NOT NULL
                UNION ALL
                SELECT ended_at, 'ended', kind, name, token, end_reason::text
                  FROM resources WHERE team_id = $1 AND ended_at IS NOT NULL
                UNION ALL
                SELECT d.updated_at, 'deployed #' || d.generation || ' (' || d.status || ')',
                       r.kind, d.name || coalesce(' / ' || d.service, ''), r.token, NULL
                  FROM deployments d JOIN resources r ON r.id = d.resource_id
                 WHERE r.team_id = $1
                UNION ALL
                SELECT e.at, e.action, r.kind, r.name, r.token, e.actor || ' via ' || e.via
                  FROM credential_events e JOIN resources r ON r.token = e.resource_token
                 WHERE e.team_id = $1
                UNION ALL
                SELECT at, 'vault ' || action, 'vault', env || '/' || key, NULL, actor
                  FROM vault_events WHERE team_id = $1
             ) everything ORDER BY at DESC LIMIT $2",
        )
        .bind(team_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }
}
