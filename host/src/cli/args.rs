//! The `instanode` command line, described once with clap: the host's own commands, the
//! client commands and `completions`. `--help`, usage errors and completion scripts all come
//! from this description. Parsing only: `main.rs` runs the host's commands, the other `cli`
//! modules run the client's.

use std::path::PathBuf;

use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use clap_complete::Shell;

/// `--version`: the package version and the commit it was built from, as `/healthz` says.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("INSTANODE_COMMIT_ID"),
    ")"
);

const LONG_ABOUT: &str = "\
Real infrastructure for coding agents through single HTTP calls.

Without a command, starts the instanode host. Settings come from --config PATH (default:
./instanode.toml when present) and INSTANODE_* environment variables; see
instanode.example.toml. With a client command, talks to a running host instead.";

/// Resource kinds are whatever the host's providers serve, so `<KIND> new` cannot be listed
/// as a subcommand; this text stands in for it in `--help`.
const AFTER_HELP: &str = "\
Creating resources:
  instanode <KIND> new --name NAME [--env ENV]
      KIND: db, vector, cache, nosql, queue, storage, webhook, or a kind a provider adds
      (see `instanode db new --help`)

Client commands talk to --url, else INSTANODE_URL, else the host `login` used, else
http://127.0.0.1:8080; as --token, else INSTANODE_TOKEN, else the API key `login` kept.";

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "instanode",
    // The same in usage lines and completion scripts whatever the file is called.
    bin_name = "instanode",
    version = VERSION,
    about = "Real infrastructure for coding agents through single HTTP calls",
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// The host's config file [default: ./instanode.toml when present]
    #[arg(long, value_name = "PATH", env = "INSTANODE_CONFIG")]
    pub config: Option<PathBuf>,

    // Without one, the host serves the API.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Host(HostCommand),

    #[command(flatten)]
    Client(ClientCommand),

    /// Prints a completion script for SHELL
    ///
    /// For example: instanode completions bash > /etc/bash_completion.d/instanode
    Completions {
        /// The shell the script is for
        shell: Shell,
    },

    /// Writes host configs
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },

    /// `<KIND> new ...` as written, since a kind is any word a provider serves; clap falls
    /// back to it only for words that are no other command. [`NewArgs::parse`] reads it.
    #[command(external_subcommand)]
    New(Vec<String>),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Prints the config of the whole product on this machine
    ///
    /// Every backend on 127.0.0.1 at the given ports, every shipped provider with its
    /// component under DATA_DIR/providers, secrets read from DATA_DIR/secrets (one file
    /// each: seal_key, jwt_secret, admin_token, pg_superuser_password, pg_instanode_password,
    /// redis_admin_password, mongo_admin_password, s3_access_key, s3_secret_key). This is
    /// the config `scripts/up` runs with.
    Local(LocalConfigArgs),
}

#[derive(Debug, Args)]
pub struct LocalConfigArgs {
    /// The host's data directory
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// The address the API listens on
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    #[arg(long, default_value_t = 55432)]
    pub postgres_port: u16,
    #[arg(long, default_value_t = 56379)]
    pub redis_port: u16,
    #[arg(long, default_value_t = 57017)]
    pub mongo_port: u16,
    #[arg(long, default_value_t = 54222)]
    pub nats_port: u16,
    #[arg(long, default_value_t = 59000)]
    pub s3_port: u16,
    #[arg(long, default_value_t = 2525)]
    pub smtp_port: u16,
    /// The S3 bucket the storage provider keeps objects in
    #[arg(long, default_value = "instanode")]
    pub bucket: String,
}

/// Commands that run the host's code against its config.
#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Prints the lines a NATS server's config needs to trust this host
    ///
    /// The lines name the operator and the system account; the host's NATS keys are created
    /// on first use.
    NatsServerConfig(ConfigArg),

    /// Operator commands
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },

    /// Commands for provider authors
    Provider {
        #[command(subcommand)]
        command: ProviderCommand,
    },
}

impl HostCommand {
    /// The `--config` given after the command, if any.
    pub fn config(&self) -> Option<PathBuf> {
        match self {
            Self::NatsServerConfig(arg) => arg.config.clone(),
            Self::Admin {
                command: AdminCommand::SetTier(args),
            } => args.config.config.clone(),
            Self::Provider {
                command: ProviderCommand::Check(args),
            } => args.config.config.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Moves a team to a tier of the plans
    ///
    /// The team's resources take the tier's limits and lifetime. Prints a JSON report.
    SetTier(SetTierArgs),
}

#[derive(Debug, Args)]
pub struct SetTierArgs {
    /// The team: its id, or a member's email
    #[arg(long)]
    pub team: String,

    /// The tier's name in the plans
    #[arg(long)]
    pub tier: String,

    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// Runs the conformance suite against the real backends of the config
    ///
    /// Loads FILE.wasm as a version of a configured provider, then provisions, probes,
    /// suspends, resumes, deprovisions and adopts test resources. Prints a table (or with
    /// --json a JSON report); exits 1 when a step fails.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The component under test
    #[arg(value_name = "FILE.wasm")]
    pub component: PathBuf,

    /// The configured provider it is a version of [default: the provider whose component has
    /// the same file name, or the only one]
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,

    /// The kind of test resources [default: the provider's first kind]
    #[arg(long)]
    pub kind: Option<String>,

    /// Print a JSON report instead of the table
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub config: ConfigArg,
}

/// `--config` may also follow a host command (`provider check FILE.wasm --config PATH`).
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The host's config file [default: the one given before the command]
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// Commands that call a running host over HTTP.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Deploys a folder with a Dockerfile and waits until the app is healthy
    ///
    /// Packs DIR, uploads it, follows the build log, then exits 0 with `live at <url>` once
    /// the app is healthy, or 1 with the failure's autopsy.
    Deploy(DeployArgs),

    /// Lists the signed-in team's resources
    Resources(Caller),

    /// Shows one resource's status, limits and usage
    Resource(TokenArgs),

    /// Deletes a resource
    Delete(TokenArgs),

    /// Sends a link that claims an anonymous resource for an account
    Claim(ClaimArgs),

    /// Signs in from a browser and keeps an API key for later commands
    Login(Caller),
}

/// Output and host options every client command takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Print the host's answers (and error envelopes) as JSON on stdout
    #[arg(long)]
    pub json: bool,

    /// The host's address [default: INSTANODE_URL, else the host `login` used, else
    /// http://127.0.0.1:8080]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

/// Who calls: the common options and the caller's token.
#[derive(Debug, Clone, Args)]
pub struct Caller {
    #[command(flatten)]
    pub common: Common,

    /// An API key or upgrade token [default: INSTANODE_TOKEN, else the API key `login` kept]
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The folder to deploy, with a Dockerfile at its top
    #[arg(default_value = ".")]
    pub dir: PathBuf,

    /// The app's name [default: the folder's name]
    #[arg(long)]
    pub name: Option<String>,

    /// The port the app listens on [default: 8080]
    #[arg(long)]
    pub port: Option<u16>,

    /// An environment variable for the app (repeatable)
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = key_value)]
    pub vars: Vec<(String, String)>,

    /// Replace the running app of the same name
    #[arg(long)]
    pub redeploy: bool,

    /// How long to wait for the app to be healthy
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub timeout: u64,

    #[command(flatten)]
    pub caller: Caller,
}

fn key_value(pair: &str) -> Result<(String, String), String> {
    let (key, value) = pair
        .split_once('=')
        .ok_or_else(|| format!("{pair}: write KEY=VALUE"))?;
    Ok((key.to_string(), value.to_string()))
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The resource's token, as a create command printed it
    #[arg(value_name = "TOKEN")]
    pub resource: String,

    #[command(flatten)]
    pub caller: Caller,
}

#[derive(Debug, Args)]
pub struct ClaimArgs {
    /// The upgrade token (`upgrade_jwt`) a create command printed
    #[arg(long, value_name = "UPGRADE_JWT")]
    pub token: Option<String>,

    /// Where the claim link goes
    #[arg(long)]
    pub email: Option<String>,

    #[command(flatten)]
    pub common: Common,
}

// `instanode <KIND> new`, read from the words `Command::New` passed through.
#[derive(Debug, Parser)]
#[command(name = "instanode <KIND>")]
struct KindCommand {
    #[command(subcommand)]
    action: KindAction,
}

#[derive(Debug, Subcommand)]
enum KindAction {
    /// Creates a resource of this kind
    New(NewArgs),
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The resource's name
    #[arg(long)]
    pub name: Option<String>,

    /// The environment it belongs to, e.g. production [default: development]
    #[arg(long)]
    pub env: Option<String>,

    #[command(flatten)]
    pub caller: Caller,
}

impl NewArgs {
    /// The kind and options of `KIND new ...`; a usage error, or the help asked for, comes
    /// back as clap's error, to print and exit with.
    pub fn parse(words: &[String]) -> Result<(String, Self), clap::Error> {
        let kind = words.first().cloned().unwrap_or_default();
        if words.len() == 1 {
            // A lone unknown word is more likely a mistyped command than a kind.
            return Err(Cli::command().error(
                clap::error::ErrorKind::InvalidSubcommand,
                format!(
                    "unrecognized subcommand '{kind}' (a resource of that kind is created with \
                     `instanode {kind} new --name NAME`)"
                ),
            ));
        }
        let matches = KindCommand::command()
            .bin_name(format!("instanode {kind}"))
            .try_get_matches_from(words)?;
        let KindAction::New(args) = KindCommand::from_arg_matches(&matches)?.action;
        Ok((kind, args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("instanode").chain(words.iter().copied()))
            .unwrap_or_else(|e| panic!("{words:?}: {e}"))
    }

    #[test]
    fn the_description_is_consistent() {
        Cli::command().debug_assert();
        KindCommand::command().debug_assert();
    }

    #[test]
    fn no_command_serves() {
        let cli = parse(&["--config", "x.toml"]);
        assert!(cli.command.is_none());
        assert_eq!(cli.config, Some(PathBuf::from("x.toml")));
    }

    #[test]
    fn host_commands_are_not_taken_for_kinds() {
        assert!(matches!(
            parse(&["--config", "x.toml", "nats-server-config"]).command,
            Some(Command::Host(HostCommand::NatsServerConfig(_)))
        ));
        let Some(Command::Host(check)) = parse(&[
            "provider", "check", "p.wasm", "--config", "c.toml", "--json",
        ])
        .command
        else {
            panic!("not a host command");
        };
        assert_eq!(check.config(), Some(PathBuf::from("c.toml")));
        assert!(matches!(
            parse(&["completions", "bash"]).command,
            Some(Command::Completions { shell: Shell::Bash })
        ));
    }

    #[test]
    fn any_word_followed_by_new_creates_that_kind() {
        let Some(Command::New(words)) =
            parse(&["webhook", "new", "--name", "owner", "--json"]).command
        else {
            panic!("not `<kind> new`");
        };
        let (kind, new) = NewArgs::parse(&words).unwrap();
        assert_eq!(kind, "webhook");
        assert_eq!(new.name.as_deref(), Some("owner"));
        assert!(new.caller.common.json);
        assert!(NewArgs::parse(&["db".into(), "old".into()]).is_err());
        let lone = NewArgs::parse(&["resorces".into()]).unwrap_err();
        assert_eq!(lone.kind(), clap::error::ErrorKind::InvalidSubcommand);
    }

    #[test]
    fn deploy_takes_its_folder_and_repeated_vars() {
        let Some(Command::Client(ClientCommand::Deploy(deploy))) =
            parse(&["deploy", "--var", "A=1", "--var", "B=x=y", "--redeploy"]).command
        else {
            panic!("not deploy");
        };
        assert_eq!(deploy.dir, PathBuf::from("."));
        assert_eq!(
            deploy.vars,
            [("A".into(), "1".into()), ("B".into(), "x=y".into())]
        );
        assert_eq!(deploy.timeout, 600);
        assert!(Cli::try_parse_from(["instanode", "deploy", "--var", "A"]).is_err());
        assert!(Cli::try_parse_from(["instanode", "deploy", "--port", "http"]).is_err());
    }

    #[test]
    fn claim_token_is_the_claimed_one() {
        let Some(Command::Client(ClientCommand::Claim(claim))) =
            parse(&["claim", "--token", "jwt", "--email", "a@b.c"]).command
        else {
            panic!("not claim");
        };
        assert_eq!(claim.token.as_deref(), Some("jwt"));
    }
}
