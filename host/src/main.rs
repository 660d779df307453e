//! The `instanode` binary: loads the config and serves the API.

use instanode::{api, app, config, conformance};
use std::path::PathBuf;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: instanode [--config PATH] [nats-server-config
                                     | admin set-tier --team TEAM --tier TIER
                                     | provider check FILE.wasm [--provider NAME] [--kind KIND] [--json]]

Starts the instanode host. Settings come from PATH (default: ./instanode.toml when present)
and INSTANODE_* environment variables; see instanode.example.toml.

nats-server-config  prints the lines a NATS server's config needs to trust this host
                    (operator, system account), creating the host's NATS keys on first use.
admin set-tier      moves a team (its id, or a member's email) to a tier of the plans: its
                    resources take the tier's limits and lifetime; prints a JSON report.
provider check      runs the conformance suite against the real backends of the config:
                    loads FILE.wasm as a version of provider NAME (default: the provider
                    whose component has the same file name, or the only one), then
                    provisions, probes, suspends, resumes, deprovisions and adopts test
                    resources of KIND (default: its first kind). Prints a table (or with
                    --json a JSON report); exits 1 when a step fails.";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let words: Vec<String> = std::env::args().skip(1).collect();
    if instanode::cli::is_client_command(&words) {
        let code = instanode::cli::run(&words).await;
        std::process::exit(code);
    }
    let mut config_path = std::env::var_os("INSTANODE_CONFIG").map(PathBuf::from);
    let mut args = std::env::args().skip(1);
    let mut nats_server_config = false;
    let mut set_tier: Option<(Option<String>, Option<String>)> = None;
    let mut provider_check: Option<conformance::Args> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "nats-server-config" => nats_server_config = true,
            "provider" => {
                anyhow::ensure!(
                    args.next().as_deref() == Some("check"),
                    "provider takes one command: check\n\n{USAGE}"
                );
                let file = args
                    .next()
                    .context("provider check needs the component file (.wasm)")?;
                provider_check
                    .get_or_insert_with(Default::default)
                    .component = file.into();
            }
            "--provider" => {
                let name = args.next().context("--provider needs a provider name")?;
                provider_check.get_or_insert_with(Default::default).provider = Some(name);
            }
            "--kind" => {
                let kind = args.next().context("--kind needs a resource kind")?;
                provider_check.get_or_insert_with(Default::default).kind = Some(kind);
            }
            "--json" => provider_check.get_or_insert_with(Default::default).json = true,
            "admin" => {
                anyhow::ensure!(
                    args.next().as_deref() == Some("set-tier"),
                    "admin takes one command: set-tier\n\n{USAGE}"
                );
                set_tier = Some((None, None));
            }
            "--team" => {
                let team = args.next().context("--team needs a team id or email")?;
                set_tier.get_or_insert((None, None)).0 = Some(team);
            }
            "--tier" => {
                let tier = args.next().context("--tier needs a tier name")?;
                set_tier.get_or_insert((None, None)).1 = Some(tier);
            }
            "--config" => config_path = Some(args.next().context("--config needs a path")?.into()),
            "--version" => {
                println!(
                    "instanode {} ({})",
                    env!("CARGO_PKG_VERSION"),
                    api::COMMIT_ID
                );
                return Ok(());
            }
            "-h" | "--help" => {
                println!("{USAGE}\n\n{}", instanode::cli::USAGE);
                return Ok(());
            }
            other => anyhow::bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    // A check's report is what matters; the host's own progress lines would only bury it.
    let default_log = if provider_check.is_some() {
        "warn,sqlx::query=error,async_nats::connector=off"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("INSTANODE_LOG")
                .unwrap_or_else(|_| EnvFilter::new(default_log)),
        )
        // stdout is reserved for what a subcommand prints.
        .with_writer(std::io::stderr)
        .init();

    if let Some(mut check) = provider_check {
        anyhow::ensure!(
            !check.component.as_os_str().is_empty(),
            "--provider, --kind and --json belong to `provider check FILE.wasm`\n\n{USAGE}"
        );
        check.config = config_path;
        let passed = conformance::run(&check).await?;
        std::io::Write::flush(&mut std::io::stdout())?;
        std::process::exit(if passed { 0 } else { 1 });
    }
    let config = config::Config::load(config_path.as_deref())?;
    if nats_server_config {
        print!("{}", app::nats_server_trust(&config).await?);
        return Ok(());
    }
    let app = app::App::start(&config).await?;
    if let Some((team, tier)) = set_tier {
        let (team, tier) = (
            team.context("admin set-tier needs --team")?,
            tier.context("admin set-tier needs --tier")?,
        );
        let (team_id, _) = app
            .store
            .find_team(&team)
            .await?
            .with_context(|| format!("no team has the id or member email {team:?}"))?;
        let change = instanode::lifecycle::tiers::set_team_tier(&app, team_id, &tier).await?;
        println!(
            "{}",
            serde_json::json!({
                "ok": change.failed.is_empty(),
                "team_id": team_id,
                "tier": tier,
                "resources": change.resources,
                "failed": change.failed,
            })
        );
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(listen = %listener.local_addr()?, public_url = %config.public_url, "instanode ready");
    instanode::serve::serve(
        listener,
        instanode::proxy::route(api::router(app.clone()), app::app_proxy(&app)),
        &config.http,
        shutdown_signal(),
    )
    .await;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
}
