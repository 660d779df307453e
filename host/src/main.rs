//! The `instanode` binary: loads the config and serves the API.

use instanode::{api, app, config};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: instanode [--config PATH] [nats-server-config]

Starts the instanode host. Settings come from PATH (default: ./instanode.toml when present)
and INSTANODE_* environment variables; see instanode.example.toml.

nats-server-config  prints the lines a NATS server's config needs to trust this host
                    (operator, system account), creating the host's NATS keys on first use.";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut config_path = std::env::var_os("INSTANODE_CONFIG").map(PathBuf::from);
    let mut args = std::env::args().skip(1);
    let mut nats_server_config = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "nats-server-config" => nats_server_config = true,
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
