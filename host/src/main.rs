//! The `instanode` binary: loads the config and serves the API; with a client command, a
//! client of any instanode host instead (see `instanode --help`).

use instanode::cli::args::{
    AdminCommand, Cli, Command, ConfigCommand, HostCommand, LocalConfigArgs, ProviderCommand,
    SetTierArgs,
};
use instanode::{api, app, config, conformance};

use anyhow::Context;
use clap::Parser as _;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let command = match cli.command {
        Some(Command::Client(command)) => std::process::exit(instanode::cli::run(command).await),
        Some(Command::New(words)) => std::process::exit(instanode::cli::run_new(&words).await),
        Some(Command::Completions { shell }) => {
            instanode::cli::completions::print(shell);
            return Ok(());
        }
        Some(Command::Config {
            command: ConfigCommand::Local(args),
        }) => {
            print!("{}", local_config(&args)?);
            return Ok(());
        }
        Some(Command::Host(command)) => Some(command),
        None => None,
    };
    // `--config` after the command (`provider check FILE --config PATH`) or before it.
    let config_path = command
        .as_ref()
        .and_then(HostCommand::config)
        .or(cli.config);

    // A check's report is what matters; the host's own progress lines would only bury it.
    let default_log = if matches!(command, Some(HostCommand::Provider { .. })) {
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

    match command {
        Some(HostCommand::Provider {
            command: ProviderCommand::Check(check),
        }) => {
            let passed = conformance::run(&conformance::Args {
                component: check.component,
                config: config_path,
                provider: check.provider,
                kind: check.kind,
                json: check.json,
            })
            .await?;
            std::io::Write::flush(&mut std::io::stdout())?;
            std::process::exit(if passed { 0 } else { 1 });
        }
        Some(HostCommand::NatsServerConfig(_)) => {
            let config = config::Config::load(config_path.as_deref())?;
            print!("{}", app::nats_server_trust(&config).await?);
            Ok(())
        }
        Some(HostCommand::Admin {
            command: AdminCommand::SetTier(args),
        }) => {
            let config = config::Config::load(config_path.as_deref())?;
            set_tier(&config, &args).await
        }
        None => serve(&config::Config::load(config_path.as_deref())?).await,
    }
}

/// `admin set-tier`: moves a team to a tier and prints what changed as JSON.
async fn set_tier(config: &config::Config, args: &SetTierArgs) -> anyhow::Result<()> {
    let app = app::App::start(config).await?;
    let (team, tier) = (&args.team, &args.tier);
    let (team_id, _) = app
        .store
        .find_team(team)
        .await?
        .with_context(|| format!("no team has the id or member email {team:?}"))?;
    let change = instanode::lifecycle::tiers::set_team_tier(&app, team_id, tier).await?;
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
    Ok(())
}

/// Serves the API (and the apps' proxy) until SIGINT or SIGTERM.
async fn serve(config: &config::Config) -> anyhow::Result<()> {
    let app = app::App::start(config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let https = match config.tls.listen {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} for HTTPS"))?,
        ),
        None => None,
    };
    tracing::info!(listen = %listener.local_addr()?, https = ?config.tls.listen, public_url = %config.public_url, "instanode ready");
    let router = instanode::proxy::route(api::router(app.clone()), app::app_proxy(&app));
    // Both listeners stop together.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stopping = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let plain = instanode::serve::serve(
        listener,
        router.clone(),
        &config.http,
        None,
        stopping(stopped.clone()),
    );
    let secure = async {
        if let Some(listener) = https {
            let acceptor = app.tls.acceptor()?;
            instanode::serve::serve(
                listener,
                router.clone(),
                &config.http,
                Some(acceptor),
                stopping(stopped.clone()),
            )
            .await;
        }
        anyhow::Ok(())
    };
    let signal = async {
        shutdown_signal().await;
        let _ = stop.send(true);
    };
    let ((), secure, ()) = tokio::join!(plain, secure, signal);
    secure
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

/// `instanode config local`: the whole product on this machine, as TOML.
fn local_config(args: &LocalConfigArgs) -> anyhow::Result<String> {
    use instanode::local_config::{LocalSecrets, Ports, local, to_toml};
    let data_dir = std::path::absolute(&args.data_dir).context("--data-dir")?;
    let secrets = LocalSecrets::read(&data_dir.join("secrets"))?;
    let ports = Ports {
        postgres: args.postgres_port,
        redis: args.redis_port,
        mongo: args.mongo_port,
        nats: args.nats_port,
        s3: args.s3_port,
        smtp: args.smtp_port,
    };
    to_toml(&local(
        &data_dir,
        args.listen,
        ports,
        &args.bucket,
        &secrets,
    ))
}
