//! Rows of the `resources` table. Every timestamp written comes from the caller (the
//! host's clock), so a test that moves the clock moves every deadline consistently.

use chrono::{DateTime, Duration, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::{ResourceStatus, Store};
use crate::tenancy::caps::{Admission, Holdings, LiveResource};

/// A row about to be inserted as `pending`.
pub struct NewResource<'a> {
    pub id: Uuid,
    pub token: Uuid,
    pub kind: &'a str,
    pub name: &'a str,
    pub env: &'a str,
    pub tier: &'a str,
    pub provider: &'a str,
    pub provider_version: &'a str,
    pub fingerprint: Option<&'a str>,
    /// The owning team, for a signed-in caller.
    pub team_id: Option<Uuid>,
    pub limits: serde_json::Value,
    pub request_id: &'a str,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// One stored resource.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ResourceRow {
    pub id: Uuid,
    pub token: Uuid,
    pub kind: String,
    pub name: String,
    pub env: String,
    pub tier: String,
    pub status: ResourceStatus,
    pub provider: String,
    /// The provider version that created it.
    pub provider_version: String,
    pub fingerprint: Option<String>,
    /// The team that owns it, once claimed.
    pub team_id: Option<Uuid>,
    pub limits: serde_json::Value,
    pub sealed_credentials: Option<Vec<u8>>,
    pub usage: Option<serde_json::Value>,
    pub usage_checked_at: Option<DateTime<Utc>>,
    pub end_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub suspended_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A live resource whose quota verdict (suspend or resume) the provider keeps failing.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct EnforcementFailure {
    pub id: Uuid,
    pub kind: String,
    pub provider: String,
    pub status: ResourceStatus,
    pub error: String,
    pub failing_since: DateTime<Utc>,
    pub attempts: i32,
    pub usage: Option<serde_json::Value>,
}

const COLUMNS: &str =
    "id, token, kind, name, env, tier, status, provider, provider_version, fingerprint, team_id, limits,
     sealed_credentials, usage, usage_checked_at, end_reason, created_at, expires_at, suspended_at, ended_at";

/// Why a resource is leaving service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Its TTL ran out.
    Expired,
    /// Its owner deleted it.
    Deleted,
    /// A provision that never finished (its host died mid-saga).
    Abandoned,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Deleted => "deleted",
            Self::Abandoned => "abandoned",
        }
    }
}

/// The outcome of asking to delete a resource by token.
pub enum DeleteStart {
    /// The row is now `deleting`: remove its backend objects, then call `finish_delete`.
    Started(ResourceRow),
    NotFound,
    /// It already ended (expired or deleted).
    Ended(ResourceRow),
    /// Still being created.
    Pending,
}

impl Store {
    /// Rows matching `condition` (on `$1` = `value`), newest first.
    pub(super) async fn resources_where(
        &self,
        condition: &str,
        value: impl for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send,
    ) -> sqlx::Result<Vec<ResourceRow>> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM resources WHERE {condition} ORDER BY created_at DESC LIMIT 1000"
        ))
        .bind(value)
        .fetch_all(&self.pool)
        .await
    }

    /// Admits and inserts a `pending` row (the first saga step) in one transaction, under a
    /// lock on the caller's fingerprint, so concurrent requests and other host replicas
    /// see each other's rows: caps have no two winners. Without a fingerprint there is
    /// nothing to cap and the row goes straight in.
    pub async fn admit_pending(
        &self,
        new: &NewResource<'_>,
        decide: impl FnOnce(&Holdings) -> Admission,
    ) -> sqlx::Result<Admission> {
        let mut tx = self.pool.begin().await?;
        // A team's resources are capped as the team's; anonymous ones per network.
        let owner = match (new.team_id, new.fingerprint) {
            (Some(team), _) => Some(Owner::Team(team)),
            (None, Some(fingerprint)) => Some(Owner::Fingerprint(fingerprint)),
            (None, None) => None,
        };
        if let Some(owner) = owner {
            let (lock, condition, value) = owner.parts();
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7341))")
                .bind(lock)
                .execute(&mut *tx)
                .await?;
            let holdings = holdings(&mut tx, condition, &value, new.created_at).await?;
            let admission = decide(&holdings);
            if admission != Admission::Admit {
                return Ok(admission);
            }
        }
        insert_pending(&mut tx, new).await?;
        tx.commit().await?;
        Ok(Admission::Admit)
    }

    /// Stores the sealed credentials and flips `pending` to `active`. Returns false when the
    /// row was no longer pending (so the caller must not report success).
    pub async fn activate(
        &self,
        id: Uuid,
        sealed_credentials: &[u8],
        now: DateTime<Utc>,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "UPDATE resources SET status = 'active', sealed_credentials = $2, updated_at = $3
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(sealed_credentials)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces a live row's credentials (after a rotation).
    pub async fn replace_credentials(
        &self,
        id: Uuid,
        sealed_credentials: &[u8],
        now: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE resources SET sealed_credentials = $2, updated_at = $3
             WHERE id = $1 AND status IN ('active', 'suspended')",
        )
        .bind(id)
        .bind(sealed_credentials)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a row `failed` and drops its credentials: the undo of `admit_pending`.
    pub async fn mark_failed(&self, id: Uuid, now: DateTime<Utc>) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE resources SET status = 'failed', sealed_credentials = NULL, updated_at = $2
             WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Hands a failed provision whose backend objects could not be removed to the reaper:
    /// the row goes `deleting` as `abandoned`, so once it is stale the reaper removes what is
    /// left and ends it `failed`. Its credentials stay until then (they carry the provider's
    /// state).
    pub async fn abandon(&self, id: Uuid, now: DateTime<Utc>) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE resources SET status = 'deleting', end_reason = 'abandoned', updated_at = $2
             WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn find_by_token(&self, token: Uuid) -> sqlx::Result<Option<ResourceRow>> {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM resources WHERE token = $1"))
            .bind(token)
            .fetch_optional(&self.pool)
            .await
    }

    /// The webhook resource whose receiver has `receive_id`.
    pub async fn find_by_receive_id(&self, receive_id: Uuid) -> sqlx::Result<Option<ResourceRow>> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM resources
              WHERE id = (SELECT resource_id FROM webhook_receivers WHERE receive_id = $1)"
        ))
        .bind(receive_id)
        .fetch_optional(&self.pool)
        .await
    }

    /// Moves a live resource to `deleting`. A row already `deleting` (a delete that failed
    /// half-way) is handed out again: deprovisioning is idempotent.
    pub async fn begin_delete(&self, token: Uuid, now: DateTime<Utc>) -> sqlx::Result<DeleteStart> {
        let started: Option<ResourceRow> = sqlx::query_as(&format!(
            "UPDATE resources
                SET status = 'deleting', end_reason = coalesce(end_reason, 'deleted'), updated_at = $2
              WHERE token = $1 AND status IN ('active', 'suspended', 'deleting')
              RETURNING {COLUMNS}"
        ))
        .bind(token)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = started {
            return Ok(DeleteStart::Started(row));
        }
        Ok(match self.find_by_token(token).await? {
            Some(row) if row.status == ResourceStatus::Pending => DeleteStart::Pending,
            Some(row) if row.status == ResourceStatus::Deleted => DeleteStart::Ended(row),
            _ => DeleteStart::NotFound,
        })
    }

    /// Records that a `deleting` row's backend objects are gone.
    pub async fn finish_delete(&self, id: Uuid, now: DateTime<Utc>) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE resources
                SET status = CASE end_reason WHEN 'abandoned' THEN 'failed'::resource_status
                                             ELSE 'deleted'::resource_status END,
                    sealed_credentials = NULL, ended_at = $2, updated_at = $2
              WHERE id = $1 AND status = 'deleting'",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims up to `limit` rows for the reaper and moves them to `deleting`: live rows
    /// past their `expires_at`, `pending` rows untouched for `stale_after` (their saga
    /// died with its host), and `deleting` rows untouched as long (a delete that failed or
    /// died). `SKIP LOCKED` lets several replicas reap side by side without sharing rows.
    pub async fn claim_for_reaping(
        &self,
        now: DateTime<Utc>,
        stale_after: Duration,
        limit: i64,
    ) -> sqlx::Result<Vec<(ResourceRow, EndReason)>> {
        let rows: Vec<ResourceRow> = sqlx::query_as(&format!(
            "UPDATE resources r
                SET status = 'deleting', updated_at = $1,
                    end_reason = coalesce(r.end_reason,
                                          CASE WHEN r.status = 'pending' THEN 'abandoned' ELSE 'expired' END)
               FROM (SELECT id FROM resources
                      WHERE (status IN ('active', 'suspended') AND expires_at <= $1)
                         OR (status IN ('pending', 'deleting') AND updated_at <= $2)
                      ORDER BY updated_at
                      LIMIT $3
                      FOR UPDATE SKIP LOCKED) due
              WHERE r.id = due.id
              RETURNING {}",
            prefixed("r.")
        ))
        .bind(now)
        .bind(now - stale_after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let reason = match row.end_reason.as_deref() {
                    Some("abandoned") => EndReason::Abandoned,
                    Some("deleted") => EndReason::Deleted,
                    _ => EndReason::Expired,
                };
                (row, reason)
            })
            .collect())
    }

    /// Claims up to `limit` live rows whose usage was last measured before `due_before`
    /// (or never), stamping them so no other replica measures them in the same round.
    pub async fn claim_for_metering(
        &self,
        now: DateTime<Utc>,
        due_before: DateTime<Utc>,
        limit: i64,
    ) -> sqlx::Result<Vec<ResourceRow>> {
        sqlx::query_as(&format!(
            "UPDATE resources r SET usage_checked_at = $1
               FROM (SELECT id FROM resources
                      WHERE status IN ('active', 'suspended')
                        AND (usage_checked_at IS NULL OR usage_checked_at < $2)
                      ORDER BY usage_checked_at NULLS FIRST
                      LIMIT $3
                      FOR UPDATE SKIP LOCKED) due
              WHERE r.id = due.id
              RETURNING {}",
            prefixed("r.")
        ))
        .bind(now)
        .bind(due_before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Records a failed attempt to apply a quota verdict (kept until one succeeds).
    pub async fn record_enforcement_failure(
        &self,
        id: Uuid,
        error: &str,
        now: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE resources
                SET enforcement_error = $2,
                    enforcement_failing_since = coalesce(enforcement_failing_since, $3),
                    enforcement_attempts = enforcement_attempts + 1
              WHERE id = $1",
        )
        .bind(id)
        .bind(error)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets the failures of a row whose verdict was applied.
    pub async fn clear_enforcement_failure(&self, id: Uuid) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE resources
                SET enforcement_error = NULL, enforcement_failing_since = NULL,
                    enforcement_attempts = 0
              WHERE id = $1 AND enforcement_error IS NOT NULL",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Live resources whose quota verdict keeps failing, the longest-failing first.
    pub async fn enforcement_failures(&self, limit: i64) -> sqlx::Result<Vec<EnforcementFailure>> {
        sqlx::query_as(
            "SELECT id, kind, provider, status, enforcement_error AS error,
                    enforcement_failing_since AS failing_since, enforcement_attempts AS attempts,
                    usage
               FROM resources
              WHERE enforcement_error IS NOT NULL AND status IN ('active', 'suspended')
              ORDER BY enforcement_failing_since
              LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Flips a row between `active` and `suspended`. False when the row was in neither
    /// expected state (deleted meanwhile, or already flipped).
    pub async fn set_suspended(
        &self,
        id: Uuid,
        suspended: bool,
        now: DateTime<Utc>,
    ) -> sqlx::Result<bool> {
        let (from, to) = if suspended {
            (ResourceStatus::Active, ResourceStatus::Suspended)
        } else {
            (ResourceStatus::Suspended, ResourceStatus::Active)
        };
        let done = sqlx::query(
            "UPDATE resources
                SET status = $3, updated_at = $4,
                    suspended_at = CASE WHEN $3 = 'suspended' THEN $4 END
              WHERE id = $1 AND status = $2",
        )
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

fn prefixed(prefix: &str) -> String {
    COLUMNS
        .split(',')
        .map(|c| format!("{prefix}{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whose holdings caps count: an anonymous network's, or a team's.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    Fingerprint(&'a str),
    Team(Uuid),
}

impl Owner<'_> {
    /// The lock key and the SQL condition on `$1` (bound as text) selecting its rows.
    fn parts(&self) -> (String, &'static str, String) {
        match self {
            Self::Fingerprint(f) => (
                format!("fingerprint:{f}"),
                // A network's anonymous caps count only what no team owns.
                "fingerprint = $1 AND team_id IS NULL",
                f.to_string(),
            ),
            Self::Team(t) => (format!("team:{t}"), "team_id = $1::uuid", t.to_string()),
        }
    }
}

async fn holdings(
    tx: &mut Transaction<'_, Postgres>,
    condition: &str,
    owner: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<Holdings> {
    let live: Vec<(Uuid, String, ResourceStatus)> = sqlx::query_as(&format!(
        "SELECT token, kind, status FROM resources
          WHERE {condition} AND status IN ('pending', 'active', 'suspended')
          ORDER BY created_at"
    ))
    .bind(owner)
    .fetch_all(&mut **tx)
    .await?;
    let day_start = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    let (provisions_today, had_resources): (i64, bool) = sqlx::query_as(&format!(
        "SELECT (SELECT count(*) FROM resources
                  WHERE {condition} AND created_at >= $2 AND status <> 'failed'),
                EXISTS (SELECT 1 FROM resources
                         WHERE {condition} AND status IN ('deleting', 'deleted')
                           AND end_reason <> 'abandoned' AND created_at >= $3)"
    ))
    .bind(owner)
    .bind(day_start)
    .bind(now - RECYCLE_MEMORY)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Holdings {
        live: live
            .into_iter()
            .map(|(token, kind, status)| LiveResource {
                token,
                kind,
                committed: status != ResourceStatus::Pending,
            })
            .collect(),
        provisions_today: u64::try_from(provisions_today).unwrap_or(0),
        had_resources,
    })
}

/// How long a fingerprint's ended resources keep it behind the recycle gate.
const RECYCLE_MEMORY: Duration = Duration::days(30);

async fn insert_pending(
    tx: &mut Transaction<'_, Postgres>,
    new: &NewResource<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO resources (id, token, kind, name, env, tier, status, provider,
                                provider_version, fingerprint, limits, request_id,
                                created_at, updated_at, expires_at, team_id)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $10, $11, $12, $12, $13, $14)",
    )
    .bind(new.id)
    .bind(new.token)
    .bind(new.kind)
    .bind(new.name)
    .bind(new.env)
    .bind(new.tier)
    .bind(new.provider)
    .bind(new.provider_version)
    .bind(new.fingerprint)
    .bind(&new.limits)
    .bind(new.request_id)
    .bind(new.created_at)
    .bind(new.expires_at)
    .bind(new.team_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
