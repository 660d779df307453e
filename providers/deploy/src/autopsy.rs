//! Classifying a failed rollout into the reasons agents branch on, with a remedy each.

use instanode_provider_kit::deployer::{Failure, FailureReason};

/// Why a rollout failed.
#[derive(Debug, Clone, Copy)]
pub enum Reason {
    BuildFailed,
    DeadlineExceeded,
    CrashLoopBackOff,
    OomKilled,
    /// Running, but never answered HTTP on its port.
    NotAnswering,
    /// The engine could not start the image's command at all.
    StartFailed,
    /// A prebuilt image could not be fetched.
    PullFailed,
}

/// The most output lines a failure carries.
const MAX_LINES: usize = 200;

pub fn failure(reason: Reason, exit_code: Option<i64>, output: Vec<String>, port: u16) -> Failure {
    let skip = output.len().saturating_sub(MAX_LINES);
    let (name, hint) = match reason {
        Reason::BuildFailed => (
            FailureReason::BuildFailed,
            "The image build failed: read last_lines for the failing Dockerfile step (syntax, a COPY source missing from the tarball, a RUN command that exits non-zero, or a FROM image that is not available on this host), fix it and redeploy.".to_string(),
        ),
        Reason::DeadlineExceeded => (
            FailureReason::DeadlineExceeded,
            "The build ran past its deadline: use a smaller base image, drop slow steps, and redeploy.".to_string(),
        ),
        Reason::CrashLoopBackOff => (
            FailureReason::CrashLoopBackOff,
            format!("The app exited right after starting: read last_lines for the error (a missing env var, a startup exception, a wrong command), make it run in the foreground listening on 0.0.0.0:{port}, and redeploy."),
        ),
        Reason::OomKilled => (
            FailureReason::OomKilled,
            "The app used more memory than its tier allows and was killed: reduce its memory use (fewer workers, smaller caches) or upgrade the tier, then redeploy.".to_string(),
        ),
        Reason::StartFailed => (
            FailureReason::StartFailed,
            "The container could not start its command: the program CMD or ENTRYPOINT names is missing from the image, not executable, or built for another CPU (last_lines has the engine's words). Fix the Dockerfile (install the program, use its full path, chmod +x a script, or match the base image's architecture) and redeploy; retrying unchanged fails the same way.".to_string(),
        ),
        Reason::PullFailed => (
            FailureReason::BuildFailed,
            "The prebuilt image could not be pulled: read last_lines for the registry's answer, check the reference (registry, repository, tag or sha256 digest) and that the image was pushed, then redeploy.".to_string(),
        ),
        Reason::NotAnswering => (
            FailureReason::Error,
            format!("The app started but never answered HTTP on port {port}: listen on 0.0.0.0 (not 127.0.0.1) at the `port` you deployed with, and redeploy."),
        ),
    };
    Failure {
        reason: name,
        exit_code,
        last_lines: output.into_iter().skip(skip).collect(),
        hint,
    }
}
