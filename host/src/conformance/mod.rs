//! `instanode provider check`: the conformance suite a provider author runs against the real
//! backend before shipping a component.
//!
//! It loads the component exactly as the host would (same config, same grants, same
//! refusals), then walks one resource through the whole contract: describe, check,
//! provision, the credentials through the backend's own client, usage, suspend and resume,
//! deprovision twice, the credentials gone, and create-or-adopt. Each step is one row of
//! the report; after the first failure only the cleanup still runs, so a broken provider
//! leaves nothing behind.

pub mod probes;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::config::Config;
use crate::contract::types::{ProviderError, ProvisionRequest, ResourceRef};
use crate::kinds::Service as _;
use crate::lifecycle::provision::check_answer;
use crate::registry::{CallError, Loaded, Registry};
use crate::store::{Sealer, Store};
use crate::tenancy::plans::{self, Plans};
use probes::Probe;

/// What `instanode provider check` was asked to do.
#[derive(Debug, Default)]
pub struct Args {
    /// The component under test.
    pub component: PathBuf,
    /// The host config naming the provider's grants, backends and settings.
    pub config: Option<PathBuf>,
    /// Which configured provider the component is a version of.
    pub provider: Option<String>,
    /// The kind to provision (default: the provider's first configured kind).
    pub kind: Option<String>,
    /// Print a JSON report instead of the table.
    pub json: bool,
}

/// Every step, in the order it runs.
pub const STEPS: [&str; 13] = [
    "load",
    "describe",
    "check",
    "provision",
    "credentials",
    "usage",
    "suspend",
    "resume",
    "deprovision",
    "deprovision-again",
    "credentials-gone",
    "adopt",
    "cleanup",
];

/// Runs the suite and prints its report; whether every step passed (or was skipped by
/// design). Errors are only for a check that could not start (config, provider choice).
pub async fn run(args: &Args) -> anyhow::Result<bool> {
    let mut config = Config::load(args.config.as_deref())?;
    let name = choose_provider(&config, args)?;
    let mut provider = config
        .providers
        .remove(&name)
        .expect("chosen among the configured providers");
    if let Some(kind) = &args.kind
        && !provider.kinds.contains(kind)
    {
        // Loading then also proves the component serves it.
        provider.kinds.push(kind.clone());
    }
    let kind = match (&args.kind, provider.kinds.first()) {
        (Some(kind), _) | (None, Some(kind)) => kind.clone(),
        (None, None) => bail!("provider `{name}` has no kinds configured; pass --kind"),
    };
    provider.component = args.component.clone();
    config.providers.clear();
    config.providers.insert(name.clone(), provider);
    // No providers directory: an upload kept there must not stand in for the file under test.
    config.providers_dir = Some(PathBuf::new());
    let limits = Plans::load(config.plans.as_deref())?
        .tier(plans::ANONYMOUS)
        .context("the plans have no anonymous tier")?
        .limits_for(&kind);

    let mut report = Report::default();
    let loaded = report.attempt("load", load(&config, &name)).await;
    match loaded {
        Some((registry, loaded)) => {
            let mut check = Check {
                _registry: registry,
                loaded,
                kind: kind.clone(),
                limits,
                live: Vec::new(),
            };
            check.run(&mut report).await;
        }
        None => {
            for step in &STEPS[1..] {
                report.skip(step, "");
            }
        }
    }

    let passed = report.first_failure().is_none();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.json(&name, &kind, args))?
        );
    } else {
        print!("{}", report.table(&name, &kind, args));
    }
    Ok(passed)
}

/// `--provider`, else the configured provider whose component file has the same name as
/// the file under test, else the only configured provider.
fn choose_provider(config: &Config, args: &Args) -> anyhow::Result<String> {
    let names = || {
        config
            .providers
            .keys()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = &args.provider {
        if config.providers.contains_key(name) {
            return Ok(name.clone());
        }
        bail!(
            "no provider `{name}` in the config; configured: {}",
            names()
        );
    }
    let file_name = args.component.file_name();
    let same_file: Vec<_> = config
        .providers
        .iter()
        .filter(|(_, p)| file_name.is_some() && p.component.file_name() == file_name)
        .map(|(name, _)| name.clone())
        .collect();
    if let [name] = same_file.as_slice() {
        return Ok(name.clone());
    }
    let mut all = config.providers.keys();
    match (all.next(), all.next()) {
        (Some(only), None) => Ok(only.clone()),
        (None, _) => bail!("the config has no providers: add a [providers.NAME] section"),
        _ => bail!(
            "which provider is {}? pass --provider NAME; configured: {}",
            args.component.display(),
            names()
        ),
    }
}

/// Loads the component as the host would: a refusal (capability not granted, wrong world,
/// unsupported contract version, kind mismatch, ...) fails the step with its reason.
async fn load(config: &Config, name: &str) -> Result<((Registry, Arc<Loaded>), String), String> {
    let store = Store::connect(
        config.metadata.url.expose(),
        config.metadata.max_connections,
    )
    .await
    .map_err(|e| format!("metadata database: {e:#}"))?;
    let sealer =
        Sealer::from_hex(config.secrets.seal_key.expose()).map_err(|e| format!("{e:#}"))?;
    let keys = Arc::new(store.key_ring(sealer));
    let registry = Registry::load(config, &store, keys)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let loaded = registry
        .get(name)
        .ok_or_else(|| format!("provider `{name}` is not live after loading"))?;
    let detail = format!(
        "{} (sha256 {}) from {}",
        loaded.label(),
        &loaded.sha256[..12.min(loaded.sha256.len())],
        loaded.source
    );
    Ok(((registry, loaded), detail))
}

/// One resource's identity, kept until it is removed so cleanup can find it.
struct Live {
    label: &'static str,
    target: ResourceRef,
}

/// The steps after `load`, against one loaded version.
struct Check {
    /// Keeps the engine the version runs in.
    _registry: Registry,
    loaded: Arc<Loaded>,
    kind: String,
    limits: Vec<(String, u64)>,
    /// What provision may have created and no deprovision removed yet.
    live: Vec<Live>,
}

impl Check {
    async fn run(&mut self, report: &mut Report) {
        let loaded = self.loaded.clone();
        let kind = self.kind.clone();
        let no_probe = format!("no credentials to probe for kind {kind}");

        report
            .attempt("describe", async {
                let info = loaded
                    .describe("conformance-describe")
                    .await
                    .map_err(|e| format!("describe produced no answer: {e}"))?;
                if info.version.trim().is_empty() {
                    return Err("describe names no version".to_string());
                }
                let kinds: Vec<&String> = info.kinds.iter().map(|k| &k.name).collect();
                if let Some(missing) = loaded.kinds.iter().find(|k| !kinds.contains(k)) {
                    return Err(format!(
                        "configured kind `{missing}` is not among the kinds it serves: {kinds:?}"
                    ));
                }
                Ok((
                    (),
                    format!("{} {}, kinds {kinds:?}", info.name, info.version),
                ))
            })
            .await;

        report
            .attempt("check", async {
                let message = answered("check", loaded.check("conformance-check").await)?;
                Ok(((), message))
            })
            .await;

        // Provision A. Each resource is registered for cleanup before its first provision:
        // a provision that fails half-way may still have created something.
        let a = self.target();
        let first = report
            .attempt("provision", async {
                self.register("A", &a);
                let answer = answered(
                    "provision",
                    loaded
                        .provision("conformance-provision", &self.request(&a))
                        .await,
                )?;
                self.keep_state("A", &answer.state);
                check_answer(&answer)
                    .map_err(|e| format!("the answer fails the host's own check: {e}"))?;
                let detail = format!(
                    "resource {}; fields {:?}",
                    a.resource_id,
                    answer.fields.iter().map(|(k, _)| k).collect::<Vec<_>>()
                );
                Ok((answer, detail))
            })
            .await;
        let a = self.current("A").unwrap_or(a);

        let probe = first
            .as_ref()
            .map(|answer| Probe::for_answer(answer, &loaded, &a));
        let probe = match probe {
            None => {
                report.skip("credentials", "");
                None
            }
            Some(Err(e)) => {
                report.fail("credentials", Instant::now(), e);
                None
            }
            Some(Ok(None)) => {
                report.skip("credentials", &no_probe);
                None
            }
            Some(Ok(Some(probe))) => {
                let ok = report
                    .attempt("credentials", async {
                        let wrote = probe.write(1).await?;
                        let read = probe.read(1).await?;
                        Ok(((), format!("{}: {wrote}; {read}", probe.backend())))
                    })
                    .await;
                ok.map(|()| probe)
            }
        };

        report
            .attempt("usage", async {
                let usage = answered("usage", loaded.usage("conformance-usage", &a).await)?;
                let extra = usage
                    .extra
                    .iter()
                    .map(|(k, v)| format!(", {k} {v}"))
                    .collect::<String>();
                Ok((
                    (),
                    format!(
                        "storage_bytes {}, connections {}{extra}",
                        usage.storage_bytes, usage.connections
                    ),
                ))
            })
            .await;

        report
            .attempt("suspend", async {
                answered("suspend", loaded.suspend("conformance-suspend", &a).await)?;
                match &probe {
                    Some(probe) if probe.refuses_growth() => match probe.write(2).await {
                        Ok(wrote) => Err(format!(
                            "suspend answered Ok, but a new write still succeeded ({wrote})"
                        )),
                        Err(refused) => Ok(((), format!("answered Ok; a new write is refused: {refused}"))),
                    },
                    Some(probe) => Ok((
                        (),
                        format!(
                            "answered Ok ({} credentials cannot refuse a write: only the call is checked)",
                            probe.backend()
                        ),
                    )),
                    None => Ok(((), format!("answered Ok ({no_probe}: only the call is checked)"))),
                }
            })
            .await;

        report
            .attempt("resume", async {
                answered("resume", loaded.resume("conformance-resume", &a).await)?;
                match &probe {
                    Some(probe) => {
                        let wrote = probe.write(3).await.map_err(|e| {
                            format!("resume answered Ok, but a write still fails: {e}")
                        })?;
                        Ok(((), format!("answered Ok; a write works again ({wrote})")))
                    }
                    None => Ok(((), format!("answered Ok ({no_probe})"))),
                }
            })
            .await;

        let removed = report
            .attempt("deprovision", async {
                answered(
                    "deprovision",
                    loaded.deprovision("conformance-deprovision", &a).await,
                )?;
                Ok(((), "answered Ok".to_string()))
            })
            .await;
        if removed.is_some() {
            self.forget("A");
        }

        report
            .attempt("deprovision-again", async {
                answered(
                    "deprovision of a resource already removed",
                    loaded
                        .deprovision("conformance-deprovision-again", &a)
                        .await,
                )?;
                Ok(((), "answered Ok (delete-if-present)".to_string()))
            })
            .await;

        match &probe {
            Some(probe) => {
                report
                    .attempt("credentials-gone", async {
                        let how = probe.gone(1).await.map_err(|still| {
                            format!("the credentials still work after deprovision: {still}")
                        })?;
                        Ok(((), format!("no longer work: {how}")))
                    })
                    .await;
            }
            None if first.is_some() && report.first_failure().is_none() => {
                report.skip("credentials-gone", &no_probe);
            }
            None => report.skip("credentials-gone", ""),
        }

        // Create or adopt: the host retries a provision with the same id, and the retry
        // must succeed with credentials that work.
        let b = self.target();
        report
            .attempt("adopt", async {
                self.register("B", &b);
                let request = self.request(&b);
                let first = answered(
                    "provision of a new id",
                    loaded.provision("conformance-adopt-1", &request).await,
                )?;
                self.keep_state("B", &first.state);
                let second = answered(
                    "provision of an existing id",
                    loaded.provision("conformance-adopt-2", &request).await,
                )?;
                self.keep_state("B", &second.state);
                check_answer(&second)
                    .map_err(|e| format!("the second answer fails the host's own check: {e}"))?;
                let detail = match Probe::for_answer(&second, &loaded, &b)? {
                    Some(probe) => {
                        let unusable =
                            |e| format!("the second answer's credentials do not work: {e}");
                        probe.write(4).await.map_err(unusable)?;
                        probe.read(4).await.map_err(unusable)?;
                        format!(
                            "both answered Ok; the second answer's credentials work ({})",
                            probe.backend()
                        )
                    }
                    None => format!("both answered Ok ({no_probe})"),
                };
                Ok(((), detail))
            })
            .await;

        self.cleanup(report).await;
    }

    /// Deprovisions whatever is still live, whatever failed before.
    async fn cleanup(&mut self, report: &mut Report) {
        if self.live.is_empty() {
            report.skip("cleanup", "nothing left to remove");
            return;
        }
        let started = Instant::now();
        let mut removed = Vec::new();
        let mut failed = Vec::new();
        for live in std::mem::take(&mut self.live) {
            let answer = self
                .loaded
                .deprovision("conformance-cleanup", &live.target)
                .await;
            match answered("deprovision", answer) {
                Ok(()) => removed.push(format!("{} ({})", live.label, live.target.resource_id)),
                Err(e) => failed.push(format!(
                    "{} ({}) may be left behind: {e}",
                    live.label, live.target.resource_id
                )),
            }
        }
        if failed.is_empty() {
            report.pass(
                "cleanup",
                started,
                format!("removed {}", removed.join(", ")),
            );
        } else {
            report.fail("cleanup", started, failed.join("; "));
        }
    }

    /// A new resource id.
    fn target(&self) -> ResourceRef {
        ResourceRef {
            resource_id: uuid::Uuid::new_v4().simple().to_string(),
            kind: self.kind.clone(),
            tier: plans::ANONYMOUS.to_string(),
            limits: self.limits.clone(),
            state: String::new(),
        }
    }

    /// Registers `target` for cleanup, before the provision that may create it.
    fn register(&mut self, label: &'static str, target: &ResourceRef) {
        self.live.push(Live {
            label,
            target: target.clone(),
        });
    }

    fn request(&self, target: &ResourceRef) -> ProvisionRequest {
        let is_app = self
            .loaded
            .kind_info
            .iter()
            .any(|k| k.name == self.kind && crate::kinds::is_app(k));
        let options = if is_app {
            // What the host hands a deploy provider: the URL it will route to the app.
            vec![("url".to_string(), "http://conformance.invalid".to_string())]
        } else {
            vec![]
        };
        ProvisionRequest {
            resource_id: target.resource_id.clone(),
            name: "conformance".into(),
            kind: self.kind.clone(),
            tier: target.tier.clone(),
            limits: target.limits.clone(),
            options,
        }
    }

    /// Later calls carry the state of the last successful provision, as the host's would.
    fn keep_state(&mut self, label: &str, state: &str) {
        if let Some(live) = self.live.iter_mut().find(|l| l.label == label) {
            live.target.state = state.to_string();
        }
    }

    fn current(&self, label: &str) -> Option<ResourceRef> {
        self.live
            .iter()
            .find(|l| l.label == label)
            .map(|l| l.target.clone())
    }

    fn forget(&mut self, label: &str) {
        self.live.retain(|l| l.label != label);
    }
}

/// A provider call's answer, or what went wrong, phrased for the report.
fn answered<T>(
    call: &str,
    answer: Result<Result<T, ProviderError>, CallError>,
) -> Result<T, String> {
    match answer {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("{call} answered {}", provider_error(&e))),
        Err(e) => Err(format!("{call} produced no answer: {e}")),
    }
}

fn provider_error(e: &ProviderError) -> String {
    let (case, message) = match e {
        ProviderError::InvalidRequest(m) => ("InvalidRequest", m),
        ProviderError::QuotaExceeded(m) => ("QuotaExceeded", m),
        ProviderError::BackendUnavailable(m) => ("BackendUnavailable", m),
        ProviderError::Conflict(m) => ("Conflict", m),
        ProviderError::Internal(m) => ("Internal", m),
    };
    format!("{case}({message:?})")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pass,
    Fail,
    Skip,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "FAIL",
            Self::Skip => "skip",
        }
    }
}

struct Row {
    step: &'static str,
    outcome: Outcome,
    ms: u128,
    detail: String,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// Runs `step` unless an earlier step failed (then it is skipped); its value on a pass.
    async fn attempt<T>(
        &mut self,
        step: &'static str,
        run: impl Future<Output = Result<(T, String), String>>,
    ) -> Option<T> {
        if self.first_failure().is_some() {
            self.skip(step, "");
            return None;
        }
        let started = Instant::now();
        match run.await {
            Ok((value, detail)) => {
                self.pass(step, started, detail);
                Some(value)
            }
            Err(detail) => {
                self.fail(step, started, detail);
                None
            }
        }
    }

    fn pass(&mut self, step: &'static str, started: Instant, detail: String) {
        self.push(step, Outcome::Pass, started.elapsed().as_millis(), detail);
    }

    fn fail(&mut self, step: &'static str, started: Instant, detail: String) {
        self.push(step, Outcome::Fail, started.elapsed().as_millis(), detail);
    }

    /// A step not run: `why`, or (empty) the earlier failure that made it pointless.
    fn skip(&mut self, step: &'static str, why: &str) {
        let detail = match (why, self.first_failure()) {
            ("", Some(failed)) => format!("after the failure at {}", failed.step),
            ("", None) => "not applicable".to_string(),
            (why, _) => why.to_string(),
        };
        self.push(step, Outcome::Skip, 0, detail);
    }

    fn push(&mut self, step: &'static str, outcome: Outcome, ms: u128, detail: String) {
        self.rows.push(Row {
            step,
            outcome,
            ms,
            // One row per step, whatever the backend's error messages look like.
            detail: detail.split_whitespace().collect::<Vec<_>>().join(" "),
        });
    }

    fn first_failure(&self) -> Option<&Row> {
        self.rows.iter().find(|r| r.outcome == Outcome::Fail)
    }

    fn table(&self, provider: &str, kind: &str, args: &Args) -> String {
        use std::fmt::Write as _;
        let width = STEPS.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut out = format!(
            "provider `{provider}` (kind `{kind}`) from {}\n\n",
            args.component.display()
        );
        let _ = writeln!(out, "{:width$} | result | {:>6} | detail", "step", "ms");
        for row in &self.rows {
            let _ = writeln!(
                out,
                "{:width$} | {:6} | {:>6} | {}",
                row.step,
                row.outcome.label(),
                row.ms,
                row.detail
            );
        }
        out.push('\n');
        match self.first_failure() {
            Some(failed) => {
                let _ = writeln!(out, "FAIL at {}: {}", failed.step, failed.detail);
            }
            None => {
                let skipped = self
                    .rows
                    .iter()
                    .filter(|r| r.outcome == Outcome::Skip)
                    .count();
                let _ = writeln!(
                    out,
                    "PASS: {} steps passed, {skipped} skipped",
                    self.rows.len() - skipped
                );
            }
        }
        out
    }

    fn json(&self, provider: &str, kind: &str, args: &Args) -> serde_json::Value {
        let steps: Vec<_> = self
            .rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "step": r.step,
                    "result": r.outcome.label().to_lowercase(),
                    "ms": r.ms,
                    "detail": r.detail,
                })
            })
            .collect();
        serde_json::json!({
            "ok": self.first_failure().is_none(),
            "provider": provider,
            "kind": kind,
            "component": args.component.display().to_string(),
            "failed_at": self.first_failure().map(|r| serde_json::json!({
                "step": r.step,
                "detail": r.detail,
            })),
            "steps": steps,
        })
    }
}
