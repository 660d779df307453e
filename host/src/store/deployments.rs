//! Deployed apps, their uploaded build contexts, and stacks.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{DeploymentStatus, ResourceStatus, Store};

/// What an app's rollouts run: an uploaded build context, or a prebuilt image.
#[derive(Debug, Clone, Copy)]
pub enum AppSource<'a> {
    /// A tar (gzipped or not) with a Dockerfile.
    Context(&'a [u8]),
    /// An image reference on a registry the operator allows.
    Image(&'a str),
}

impl<'a> AppSource<'a> {
    /// The build context kept for the rollout (none for an image).
    fn context(self) -> &'a [u8] {
        match self {
            Self::Context(context) => context,
            Self::Image(_) => &[],
        }
    }

    fn image(self) -> Option<&'a str> {
        match self {
            Self::Context(_) => None,
            Self::Image(image) => Some(image),
        }
    }
}

/// A new app, with the source of its first rollout.
pub struct NewDeployment<'a> {
    pub resource_id: Uuid,
    pub app_id: &'a str,
    pub slug: Option<&'a str>,
    pub fingerprint: &'a str,
    pub name: &'a str,
    pub port: u16,
    pub sealed_env: &'a [u8],
    pub stack_id: Option<Uuid>,
    pub service: Option<&'a str>,
    pub source: AppSource<'a>,
    /// A private app's allowed addresses and networks; `None`: public.
    pub allowed_ips: Option<&'a [String]>,
    pub now: DateTime<Utc>,
}

/// An app as stored, with the state of its resource.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeploymentRow {
    pub resource_id: Uuid,
    pub token: Uuid,
    pub resource_status: ResourceStatus,
    /// The provider that made the app's resource, and looks after it.
    pub provider: String,
    pub tier: String,
    pub team_id: Option<Uuid>,
    /// The resource's env label (`development`, `production`, ...).
    pub env: String,
    pub limits: Value,
    pub expires_at: Option<DateTime<Utc>>,
    pub app_id: String,
    pub slug: Option<String>,
    pub fingerprint: String,
    pub name: String,
    pub port: i32,
    pub sealed_env: Vec<u8>,
    pub status: DeploymentStatus,
    pub generation: i32,
    pub upstream: Option<String>,
    pub error: Option<String>,
    pub failure: Option<Value>,
    pub stack_id: Option<Uuid>,
    pub service: Option<String>,
    pub allowed_ips: Option<Vec<String>>,
    /// The prebuilt image the app runs, if it was not built from an upload.
    pub image: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "d.resource_id, r.token, r.status AS resource_status, r.provider, r.tier, r.team_id, r.env, r.limits,
     r.expires_at, d.app_id, d.slug, d.fingerprint, d.name, d.port, d.sealed_env, d.status,
     d.generation, d.upstream, d.error, d.failure, d.stack_id, d.service, d.allowed_ips,
     d.image, d.created_at, d.updated_at";

/// What one rollout ended with.
pub struct Outcome<'a> {
    pub status: DeploymentStatus,
    pub upstream: Option<&'a str>,
    pub error: Option<&'a str>,
    pub failure: Option<&'a Value>,
}

/// A stack as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StackRow {
    pub id: Uuid,
    pub slug: String,
    pub fingerprint: String,
    pub name: String,
    pub manifest: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Anonymous stacks: the SHA-256 of the stack token handed out at creation.
    pub secret_hash: Option<Vec<u8>>,
    /// Anonymous stacks made with an upgrade JWT: the resource it was issued for.
    pub made_with: Option<Uuid>,
}

impl Store {
    /// Records a new app and its first build context (generation 1).
    pub async fn insert_deployment(&self, new: &NewDeployment<'_>) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO deployments (resource_id, app_id, slug, fingerprint, name, port,
                 sealed_env, status, stack_id, service, created_at, updated_at, allowed_ips,
                 rollout_lease_until, image)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'building', $8, $9, $10, $10, $11,
                     now() + make_interval(secs => $12), $13)",
        )
        .bind(new.resource_id)
        .bind(new.app_id)
        .bind(new.slug)
        .bind(new.fingerprint)
        .bind(new.name)
        .bind(i32::from(new.port))
        .bind(new.sealed_env)
        .bind(new.stack_id)
        .bind(new.service)
        .bind(new.now)
        .bind(new.allowed_ips)
        .bind(super::rollout_leases::LEASE_SECS)
        .bind(new.source.image())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO deploy_sources (resource_id, generation, context) VALUES ($1, 1, $2)",
        )
        .bind(new.resource_id)
        .bind(new.source.context())
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    async fn find_deployment_where(
        &self,
        condition: &str,
        value: impl for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
    ) -> sqlx::Result<Option<DeploymentRow>> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM deployments d JOIN resources r ON r.id = d.resource_id
             WHERE {condition}"
        ))
        .bind(value)
        .fetch_optional(&self.pool)
        .await
    }

    /// Forgets an app whose provision failed.
    pub async fn delete_deployment(&self, resource_id: Uuid) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM deployments WHERE resource_id = $1")
            .bind(resource_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_stack(&self, id: Uuid) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM stacks WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Makes an app private to `allowed_ips`, or public (`None`).
    pub async fn set_allowed_ips(
        &self,
        resource_id: Uuid,
        allowed_ips: Option<&[String]>,
    ) -> sqlx::Result<()> {
        sqlx::query("UPDATE deployments SET allowed_ips = $2 WHERE resource_id = $1")
            .bind(resource_id)
            .bind(allowed_ips)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets when apps (and the stack they belong to, if any) end; `None` keeps them until
    /// deleted. Only live apps change: an app already ending keeps its course.
    pub async fn set_lifetime(
        &self,
        resource_ids: &[Uuid],
        stack_id: Option<Uuid>,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE resources SET expires_at = $2, updated_at = $3
             WHERE id = ANY($1) AND status IN ('pending', 'active', 'suspended')",
        )
        .bind(resource_ids)
        .bind(expires_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(stack_id) = stack_id {
            sqlx::query("UPDATE stacks SET expires_at = $2 WHERE id = $1")
                .bind(stack_id)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    pub async fn stack_by_id(&self, id: Uuid) -> sqlx::Result<Option<StackRow>> {
        sqlx::query_as(
            "SELECT id, slug, fingerprint, name, manifest, created_at, expires_at, secret_hash,
                    made_with
             FROM stacks WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }

    /// The app whose resource has this token.
    pub async fn deployment_by_token(&self, token: Uuid) -> sqlx::Result<Option<DeploymentRow>> {
        self.find_deployment_where("r.token = $1", token).await
    }

    pub async fn deployment_by_resource(&self, id: Uuid) -> sqlx::Result<Option<DeploymentRow>> {
        self.find_deployment_where("d.resource_id = $1", id).await
    }

    /// The newest generation asked of an app, unless it is gone.
    pub async fn deployment_generation(&self, id: Uuid) -> sqlx::Result<Option<i32>> {
        sqlx::query_scalar("SELECT generation FROM deployments WHERE resource_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    /// The live app served at `slug`.
    pub async fn deployment_by_slug(&self, slug: &str) -> sqlx::Result<Option<DeploymentRow>> {
        self.find_deployment_where("d.slug = $1 AND r.status IN ('active', 'suspended')", slug)
            .await
    }

    /// The caller's most recent live standalone app named `name` (for `redeploy=true`).
    pub async fn latest_deployment_named(
        &self,
        fingerprint: &str,
        name: &str,
    ) -> sqlx::Result<Option<DeploymentRow>> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM deployments d JOIN resources r ON r.id = d.resource_id
             WHERE d.fingerprint = $1 AND d.name = $2 AND d.stack_id IS NULL
               AND r.status IN ('pending', 'active', 'suspended')
             ORDER BY d.created_at DESC LIMIT 1"
        ))
        .bind(fingerprint)
        .bind(name)
        .fetch_optional(&self.pool)
        .await
    }

    /// Apps the caller runs now, a stack counting once.
    pub async fn live_app_count(&self, fingerprint: &str) -> sqlx::Result<i64> {
        sqlx::query_scalar(
            "SELECT count(DISTINCT coalesce(d.stack_id, d.resource_id))
             FROM deployments d JOIN resources r ON r.id = d.resource_id
             WHERE d.fingerprint = $1 AND r.status IN ('pending', 'active', 'suspended')",
        )
        .bind(fingerprint)
        .fetch_one(&self.pool)
        .await
    }

    /// Starts a new rollout from `context`, replacing `env` when given: returns its
    /// generation. Older contexts are dropped; the running version keeps serving until
    /// the new one is healthy.
    pub async fn begin_rollout(
        &self,
        resource_id: Uuid,
        source: Option<AppSource<'_>>,
        sealed_env: Option<&[u8]>,
        now: DateTime<Utc>,
    ) -> sqlx::Result<i32> {
        let mut tx = self.pool.begin().await?;
        let generation: i32 = sqlx::query_scalar(
            "UPDATE deployments SET generation = generation + 1, status = 'building',
                 error = NULL, failure = NULL, sealed_env = coalesce($2, sealed_env),
                 updated_at = $3, rollout_lease_owner = NULL, rollout_attempts = 0,
                 rollout_lease_until = now() + make_interval(secs => $4),
                 image = CASE WHEN $5 THEN $6 ELSE image END
             WHERE resource_id = $1 RETURNING generation",
        )
        .bind(resource_id)
        .bind(sealed_env)
        .bind(now)
        .bind(super::rollout_leases::LEASE_SECS)
        .bind(source.is_some())
        .bind(source.and_then(AppSource::image))
        .fetch_one(&mut *tx)
        .await?;
        match source.map(AppSource::context) {
            Some(context) => {
                sqlx::query(
                    "INSERT INTO deploy_sources (resource_id, generation, context)
                     VALUES ($1, $2, $3)",
                )
                .bind(resource_id)
                .bind(generation)
                .bind(context)
                .execute(&mut *tx)
                .await?;
            }
            // Rebuild from the latest upload.
            None => {
                sqlx::query(
                    "UPDATE deploy_sources SET generation = $2
                     WHERE resource_id = $1
                       AND generation = (SELECT max(generation) FROM deploy_sources
                                         WHERE resource_id = $1)",
                )
                .bind(resource_id)
                .bind(generation)
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query("DELETE FROM deploy_sources WHERE resource_id = $1 AND generation < $2")
            .bind(resource_id)
            .bind(generation)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(generation)
    }

    /// Moves a rollout on (`deploying`) or records its end. Returns false when a newer
    /// rollout has started or the app was stopped: the outcome no longer matters.
    pub async fn record_rollout(
        &self,
        resource_id: Uuid,
        generation: i32,
        outcome: &Outcome<'_>,
        now: DateTime<Utc>,
    ) -> sqlx::Result<bool> {
        // A failed rollout keeps the previous version serving, if one was.
        let result = sqlx::query(
            "UPDATE deployments SET status = $3,
                 upstream = CASE WHEN $3 = 'failed' THEN upstream ELSE coalesce($4, upstream) END,
                 error = $5, failure = $6, updated_at = $7
             WHERE resource_id = $1 AND generation = $2 AND status <> 'stopped'",
        )
        .bind(resource_id)
        .bind(generation)
        .bind(outcome.status)
        .bind(outcome.upstream)
        .bind(outcome.error)
        .bind(outcome.failure)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// The build context of one rollout (`context-ref` = `<resource id>.<generation>`).
    pub async fn deploy_context(
        &self,
        resource_id: Uuid,
        generation: i32,
    ) -> sqlx::Result<Option<Vec<u8>>> {
        sqlx::query_scalar(
            "SELECT context FROM deploy_sources WHERE resource_id = $1 AND generation = $2",
        )
        .bind(resource_id)
        .bind(generation)
        .fetch_optional(&self.pool)
        .await
    }

    /// After a deprovision: the app serves nothing and its uploads are gone.
    pub async fn stop_deployment(&self, resource_id: Uuid, now: DateTime<Utc>) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE deployments SET status = 'stopped', upstream = NULL, updated_at = $2
             WHERE resource_id = $1",
        )
        .bind(resource_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM deploy_sources WHERE resource_id = $1")
            .bind(resource_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Rollouts still building or deploying since before `before`: their host stopped
    /// (a restart) or they hung past every deadline.
    pub async fn stale_rollouts(&self, before: DateTime<Utc>) -> sqlx::Result<Vec<(Uuid, i32)>> {
        sqlx::query_as(
            "SELECT resource_id, generation FROM deployments
             WHERE status IN ('building', 'deploying') AND updated_at < $1
               AND (rollout_lease_until IS NULL OR rollout_lease_until < now())
             LIMIT 100",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn insert_stack(&self, stack: &StackRow) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO stacks (id, slug, fingerprint, name, manifest, created_at, expires_at,
                                 secret_hash, made_with)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(stack.id)
        .bind(&stack.slug)
        .bind(&stack.fingerprint)
        .bind(&stack.name)
        .bind(&stack.manifest)
        .bind(stack.created_at)
        .bind(stack.expires_at)
        .bind(&stack.secret_hash)
        .bind(stack.made_with)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn stack_by_slug(&self, slug: &str) -> sqlx::Result<Option<StackRow>> {
        sqlx::query_as(
            "SELECT id, slug, fingerprint, name, manifest, created_at, expires_at, secret_hash,
                    made_with
             FROM stacks WHERE slug = $1",
        )
        .bind(slug)
        .fetch_optional(&self.pool)
        .await
    }

    /// A team's live apps (standalone and stack services), newest first.
    pub async fn team_deployments(&self, team_id: Uuid) -> sqlx::Result<Vec<DeploymentRow>> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM deployments d JOIN resources r ON r.id = d.resource_id
             WHERE r.team_id = $1 AND r.status IN ('pending', 'active', 'suspended', 'deleting')
             ORDER BY d.created_at DESC"
        ))
        .bind(team_id)
        .fetch_all(&self.pool)
        .await
    }

    /// The stacks that have a live service of the team, newest first.
    pub async fn team_stacks(&self, team_id: Uuid) -> sqlx::Result<Vec<StackRow>> {
        sqlx::query_as(
            "SELECT s.id, s.slug, s.fingerprint, s.name, s.manifest, s.created_at, s.expires_at,
                    s.secret_hash, s.made_with
             FROM stacks s
             WHERE EXISTS (SELECT 1 FROM deployments d JOIN resources r ON r.id = d.resource_id
                           WHERE d.stack_id = s.id AND r.team_id = $1
                             AND r.status IN ('pending', 'active', 'suspended', 'deleting'))
             ORDER BY s.created_at DESC",
        )
        .bind(team_id)
        .fetch_all(&self.pool)
        .await
    }

    /// The services of a stack, in name order.
    pub async fn stack_services(&self, stack_id: Uuid) -> sqlx::Result<Vec<DeploymentRow>> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM deployments d JOIN resources r ON r.id = d.resource_id
             WHERE d.stack_id = $1 ORDER BY d.service"
        ))
        .bind(stack_id)
        .fetch_all(&self.pool)
        .await
    }
}
