//! Liveness and readiness probes.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use tokio::task::JoinSet;

use super::schema::{Check, Liveness, Readiness, True};
use crate::app::SharedApp;

/// Commit the binary was built from (`unknown` outside a git checkout).
pub const COMMIT_ID: &str = env!("INSTANODE_COMMIT_ID");
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `/healthz` waits for the metadata database.
const LIVENESS_PING: Duration = Duration::from_secs(1);
/// Probes are answered from a cached round for this long, so a busy probe cannot load the
/// backends.
const CACHE_FOR: Duration = Duration::from_secs(10);
/// A provider's sandbox failures this recent are named in its readiness message.
const RECENT_FAILURE_MINUTES: i64 = 15;

/// Liveness: the process answers (200 even when the metadata database does not, which the
/// answer says).
#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "healthz",
    summary = "Liveness",
    responses((status = 200, description = "The process answers.", body = Liveness)))]
pub async fn healthz(State(app): State<SharedApp>) -> Json<Liveness> {
    let answered = tokio::time::timeout(LIVENESS_PING, app.store.ping()).await;
    let metadata_db = if matches!(answered, Ok(Ok(()))) {
        "reachable"
    } else {
        "unreachable"
    };
    Json(Liveness {
        ok: True,
        service: "instanode".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        commit_id: COMMIT_ID.into(),
        build_time: env!("INSTANODE_BUILD_TIME").into(),
        metadata_db: metadata_db.into(),
    })
}

/// Deep readiness: the metadata database (critical) and every provider's backend, checked
/// in parallel. Only a failed metadata database makes the host unready (503); a failed
/// provider degrades it. Concurrent probes wait for one round instead of starting their own.
#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "readyz",
    summary = "Readiness of the metadata database and every provider",
    responses(
        (status = 200, description = "Ready (overall ok or degraded).", body = Readiness),
        (status = 503, description = "The metadata database is down.", body = Readiness),
    ))]
pub async fn readyz(State(app): State<SharedApp>) -> (StatusCode, Json<Readiness>) {
    let mut last = app.readiness.last.lock().await;
    if let Some((at, ready, body)) = last.as_ref()
        && at.elapsed() < CACHE_FOR
    {
        return (status_of(*ready), Json(body.clone()));
    }
    let (status, body) = check_all(&app).await;
    *last = Some((Instant::now(), status.is_success(), body.clone()));
    (status, Json(body))
}

fn status_of(ready: bool) -> StatusCode {
    if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn check_all(app: &SharedApp) -> (StatusCode, Readiness) {
    let request_id = super::request_id::current();
    let mut checks = JoinSet::new();
    {
        let app = app.clone();
        checks.spawn(timed("metadata_db".into(), async move {
            app.store
                .ping()
                .await
                .map(|()| "reachable".to_string())
                .map_err(|e| e.to_string())
        }));
    }
    {
        let app = app.clone();
        checks.spawn(timed("quota_enforcement".into(), async move {
            quota_enforcement(&app).await
        }));
    }
    for provider in app.registry.all() {
        let request_id = request_id.clone();
        checks.spawn(timed(format!("provider:{}", provider.name), async move {
            let health = provider.health.report();
            if !health.tripped.is_empty() {
                return Err(format!(
                    "circuit open for {} after repeated failures; last: {}",
                    health.tripped.join(", "),
                    health.last_failure.unwrap_or_default()
                ));
            }
            let recent = health.last_failure_at.filter(|at| {
                chrono::Utc::now() - *at < chrono::Duration::minutes(RECENT_FAILURE_MINUTES)
            });
            match provider.check(&request_id).await {
                Ok(Ok(message)) => Ok(match recent {
                    // The backend answers, but the component failed calls lately: say so.
                    Some(at) => format!(
                        "{message}; {} sandbox failures so far, the last at {}: {}",
                        health.failures_total,
                        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        health.last_failure.unwrap_or_default()
                    ),
                    None => message,
                }),
                Ok(Err(e)) => Err(format!("{e:?}")),
                Err(e) => Err(e.to_string()),
            }
        }));
    }
    let mut report = std::collections::BTreeMap::new();
    let (mut metadata_ok, mut all_ok) = (false, true);
    while let Some(Ok((name, ok, detail))) = checks.join_next().await {
        if name == "metadata_db" {
            metadata_ok = ok;
        }
        all_ok &= ok;
        report.insert(name, detail);
    }
    let overall = match (metadata_ok, all_ok) {
        (true, true) => "ok",
        (true, false) => "degraded",
        (false, _) => "failed",
    };
    let status = if metadata_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        ok: metadata_ok,
        overall: overall.into(),
        commit_id: COMMIT_ID.into(),
        checks: report,
    };
    (status, body)
}

/// Resources the meter found past their limit (or back under it) whose provider keeps
/// failing to suspend (or resume) them: named, so they are never left growing unseen.
async fn quota_enforcement(app: &SharedApp) -> Result<String, String> {
    const NAMED: i64 = 10;
    let failing = app
        .store
        .enforcement_failures(NAMED)
        .await
        .map_err(|e| e.to_string())?;
    if failing.is_empty() {
        return Ok("every quota verdict applied".into());
    }
    let named: Vec<String> = failing
        .iter()
        .map(|f| {
            format!(
                "{} ({} on {}, {} attempts since {}: {})",
                f.id,
                f.kind,
                f.provider,
                f.attempts,
                f.failing_since
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                f.error
            )
        })
        .collect();
    Err(format!(
        "quota verdicts the provider keeps failing to apply (GET /admin/quota): {}",
        named.join("; ")
    ))
}

async fn timed(
    name: String,
    check: impl Future<Output = Result<String, String>>,
) -> (String, bool, Check) {
    let started = Instant::now();
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (ok, status, message) = match outcome {
        Ok(message) => (true, "ok", message),
        Err(message) => (false, "failed", message),
    };
    let last_checked = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    (
        name,
        ok,
        Check {
            status: status.into(),
            latency_ms,
            last_checked,
            message,
        },
    )
}
