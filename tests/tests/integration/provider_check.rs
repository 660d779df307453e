//! `instanode provider check`: the conformance suite provider authors run, as the real binary
//! against the real backends. Every shipped provider passes it; the example provider, broken
//! on purpose, fails at the step that catches each fault.

use std::path::{Path, PathBuf};

use instanode::conformance::STEPS;
use instanode_tests::nats::TestNats;
use instanode_tests::{HostFiles, HostOptions, ProviderSpec, superuser};
use serde_json::Value;

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests through ./scripts/test"))
}

/// A built component under `INSTANODE_TEST_PROVIDERS_DIR`.
fn component(file: &str) -> PathBuf {
    PathBuf::from(env("INSTANODE_TEST_PROVIDERS_DIR")).join(file)
}

/// What one run of the command printed.
struct Checked {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Checked {
    /// The table's rows as `(step, result)`.
    fn rows(&self) -> Vec<(String, String)> {
        self.stdout
            .lines()
            .filter_map(|line| {
                let mut cells = line.split(" | ").map(str::trim);
                let (step, result) = (cells.next()?, cells.next()?);
                (step != "step").then(|| (step.to_string(), result.to_string()))
            })
            .collect()
    }

    /// The step the last line names as the first failure.
    fn failed_at(&self) -> Option<String> {
        let last = self.stdout.lines().last()?;
        let rest = last.strip_prefix("FAIL at ")?;
        Some(
            rest.split_once(':')
                .map_or(rest, |(step, _)| step)
                .to_string(),
        )
    }

    /// Every step ran in order and passed, except `skipped`, which were skipped.
    fn assert_passed(&self, skipped: &[&str]) {
        assert!(self.success, "{self}");
        let expected: Vec<(String, String)> = STEPS
            .iter()
            .map(|step| {
                let result = if skipped.contains(step) {
                    "skip"
                } else {
                    "pass"
                };
                (step.to_string(), result.to_string())
            })
            .collect();
        assert_eq!(self.rows(), expected, "{self}");
        assert!(
            self.stdout.lines().last().unwrap().starts_with("PASS"),
            "{self}"
        );
    }

    /// The command failed, first at `step`, and the table agrees.
    fn assert_failed_at(&self, step: &str) {
        assert!(!self.success, "{self}");
        assert_eq!(self.failed_at().as_deref(), Some(step), "{self}");
        let first_fail = self.rows().into_iter().find(|(_, result)| result == "FAIL");
        assert_eq!(first_fail.map(|(s, _)| s).as_deref(), Some(step), "{self}");
    }
}

impl std::fmt::Display for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }
}

/// Runs `instanode provider check FILE --config CONFIG ARGS...`.
async fn run_check(config: &Path, file: &Path, args: &[&str]) -> Checked {
    let out = tokio::process::Command::new(env("INSTANODE_BIN"))
        .arg("provider")
        .arg("check")
        .arg(file)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("INSTANODE_CONFIG")
        .kill_on_drop(true)
        .output()
        .await
        .expect("the host binary runs");
    Checked {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Checks `spec`'s own component against a fresh host config holding only `spec`.
async fn check(spec: ProviderSpec) -> Checked {
    let file = component(spec.component);
    let nats = spec.nats;
    let files = HostFiles::create(&HostOptions::only(spec), 0)
        .await
        .expect("host files");
    // The NATS server trusts the keys of this config's metadata database, so it can only
    // start once the files exist; it lives until the check is done.
    let _nats = match nats {
        Some(ports) => Some(
            TestNats::start(&files.config_path(), ports)
                .await
                .expect("NATS server starts"),
        ),
        None => None,
    };
    run_check(&files.config_path(), &file, &[]).await
}

/// Checks the example provider, broken by `fault`, in a database of its own: the cluster's
/// `postgres` database is closed to tenants, and the example keeps its tenants' schemas in
/// the database they connect to.
async fn check_example(fault: Option<&str>) -> Checked {
    let database = format!("example_{}", uuid::Uuid::new_v4().simple());
    let mut admin = superuser("postgres").await;
    sqlx::query(&format!("CREATE DATABASE \"{database}\""))
        .execute(&mut admin)
        .await
        .expect("a database for the example");
    let checked = check(ProviderSpec::example_in(fault, &database)).await;
    let _ = sqlx::query(&format!("DROP DATABASE \"{database}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await;
    checked
}

#[tokio::test]
async fn the_postgres_provider_passes() {
    check(ProviderSpec::postgres(&["db"]))
        .await
        .assert_passed(&[]);
}

#[tokio::test]
async fn the_redis_provider_passes() {
    check(ProviderSpec::redis()).await.assert_passed(&[]);
}

#[tokio::test]
async fn the_mongo_provider_passes() {
    check(ProviderSpec::mongo()).await.assert_passed(&[]);
}

#[tokio::test]
async fn the_nats_provider_passes() {
    check(ProviderSpec::nats()).await.assert_passed(&[]);
}

#[tokio::test]
async fn the_spaces_provider_passes() {
    check(ProviderSpec::spaces()).await.assert_passed(&[]);
}

#[tokio::test]
async fn the_deploy_provider_passes_without_credentials_to_probe() {
    let checked = check(ProviderSpec::deploy()).await;
    checked.assert_passed(&["credentials", "credentials-gone"]);
    assert!(
        checked
            .stdout
            .contains("no credentials to probe for kind deploy"),
        "{checked}"
    );
}

#[tokio::test]
async fn the_example_provider_passes_without_a_fault() {
    check_example(None).await.assert_passed(&[]);
}

#[tokio::test]
async fn an_example_that_cannot_adopt_fails_at_adopt() {
    let checked = check_example(Some("adopt")).await;
    checked.assert_failed_at("adopt");
    assert!(checked.stdout.contains("already exists"), "{checked}");
    // Whatever the failure, what the check created is removed.
    let cleanup = checked.rows().into_iter().find(|(s, _)| s == "cleanup");
    assert_eq!(
        cleanup,
        Some(("cleanup".into(), "pass".into())),
        "{checked}"
    );
}

#[tokio::test]
async fn an_example_that_cannot_deprovision_twice_fails_at_deprovision_again() {
    check_example(Some("deprovision-twice"))
        .await
        .assert_failed_at("deprovision-again");
}

#[tokio::test]
async fn an_example_whose_suspend_does_nothing_fails_at_suspend() {
    let checked = check_example(Some("suspend")).await;
    checked.assert_failed_at("suspend");
    // The resource it could not suspend is still removed.
    let cleanup = checked.rows().into_iter().find(|(s, _)| s == "cleanup");
    assert_eq!(
        cleanup,
        Some(("cleanup".into(), "pass".into())),
        "{checked}"
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_component_fails_at_load() {
    let files = HostFiles::create(&HostOptions::only(ProviderSpec::example(None)), 0)
        .await
        .expect("host files");
    let bogus = files.dir.join("bogus.wasm");
    std::fs::write(&bogus, b"not a WebAssembly component").unwrap();

    let checked = run_check(&files.config_path(), &bogus, &[]).await;
    checked.assert_failed_at("load");
    assert!(
        checked.stdout.contains("not a WebAssembly component"),
        "{checked}"
    );
    let rest: Vec<_> = checked.rows().into_iter().skip(1).collect();
    assert!(rest.iter().all(|(_, result)| result == "skip"), "{checked}");

    // The same with --json: one document, failing at load.
    let json = run_check(&files.config_path(), &bogus, &["--json"]).await;
    assert!(!json.success, "{json}");
    let report: Value = serde_json::from_str(&json.stdout).expect("a JSON report");
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["provider"], "example", "{report}");
    assert_eq!(report["failed_at"]["step"], "load", "{report}");
    assert_eq!(report["steps"].as_array().unwrap().len(), STEPS.len());
}
