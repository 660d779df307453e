//! The `instanode` binary: loads the config and serves the API.

use instanode::{api, app, config};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

const USAGE: &str =
    "usage: instanode [--config PATH] [nats-server-config | admin set-tier --team TEAM --tier TIER]

Starts the instanode host. Settings come from PATH (default: ./instanode.toml when present)
and INSTANODE_* environment variables; see instanode.example.toml.

nats-server-config  prints the lines a NATS server's config needs to trust this host
                    (operator, system account), creating the host's NATS keys on first use.
admin set-tier      moves a team (its id, or a member's email) to a tier of the plans: its
                    resources take the tier's limits and lifetime; prints a JSON report.";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut config_path = std::env::var_os("INSTANODE_CONFIG").map(PathBuf::from);
    let mut args = std::env::args().skip(1);
    let mut nats_server_config = false;
    let mut set_tier: Option<(Option<String>, Option<String>)> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "nats-server-config" => nats_server_config = true,
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
                println!("{USAGE}");
                return Ok(());
            }
            other => anyhow::bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("INSTANODE_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        // stdout is reserved for what a subcommand prints.
        .with_writer(std::io::stderr)
        .init();

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
    axum::serve(
        listener,
        instanode::proxy::route(api::router(app.clone()), app::app_proxy(&app))
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
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
