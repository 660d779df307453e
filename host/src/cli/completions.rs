//! `instanode completions SHELL`: a completion script made from the same description as
//! `--help`, so the two cannot drift apart.

use clap::CommandFactory as _;
use clap_complete::Shell;

use super::args::Cli;

/// Writes the script for `shell` to stdout.
pub fn print(shell: Shell) {
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "instanode",
        &mut std::io::stdout(),
    );
}
