//! The command-line client, in the same binary as the host: `instanode db new --name x`,
//! `instanode deploy ./dir --name app`, `resources`, `login`, `claim`. Every command is one
//! or a few REST calls; `--json` prints the host's answers as they are, for scripts.
//! [`args`] describes the whole command line, the host's commands included.

pub mod args;
mod client;
pub mod completions;
mod deploy;
mod login;
mod output;
mod progress;

use reqwest::Method;
use serde_json::json;

use args::{Caller, ClaimArgs, ClientCommand, NewArgs};
use client::{Client, Failure};
use output::Output;

/// Runs `instanode <KIND> new ...` from its words; the process's exit code (0 done, 1
/// refused or failed, 2 usage).
pub async fn run_new(words: &[String]) -> i32 {
    match NewArgs::parse(words) {
        Ok((kind, new)) => {
            let (client, out) = connect(&new.caller);
            finish(&out, create(&client, &out, &kind, &new).await)
        }
        Err(usage) => {
            let _ = usage.print();
            usage.exit_code()
        }
    }
}

/// Runs a client command; the process's exit code (0 done, 1 refused or failed, 2 usage).
pub async fn run(command: ClientCommand) -> i32 {
    match command {
        ClientCommand::Deploy(deploy) => {
            let (client, out) = connect(&deploy.caller);
            let out = out.with_spinner();
            finish(&out, deploy::run(&client, &out, &deploy).await)
        }
        ClientCommand::Resources(caller) => {
            let (client, out) = connect(&caller);
            finish(&out, resources(&client, &out).await)
        }
        ClientCommand::Resource(args) => {
            let (client, out) = connect(&args.caller);
            finish(&out, show(&client, &out, Method::GET, &args.resource).await)
        }
        ClientCommand::Delete(args) => {
            let (client, out) = connect(&args.caller);
            finish(
                &out,
                show(&client, &out, Method::DELETE, &args.resource).await,
            )
        }
        ClientCommand::Claim(claim_args) => {
            // `claim --token` names the claimed token, not the caller.
            let (client, out) = connect(&Caller {
                common: claim_args.common.clone(),
                token: None,
            });
            finish(&out, claim(&client, &out, &claim_args).await)
        }
        ClientCommand::Login(caller) => {
            let (client, out) = connect(&caller);
            finish(&out, login::run(&client, &out).await)
        }
    }
}

/// The host and output the caller's options name.
fn connect(caller: &Caller) -> (Client, Output) {
    (
        Client::new(caller.common.url.clone(), caller.token.clone()),
        Output::new(caller.common.json),
    )
}

/// The command's exit code, or 1 once its failure is printed.
fn finish(out: &Output, outcome: Result<i32, Failure>) -> i32 {
    match outcome {
        Ok(code) => code,
        Err(failure) => {
            out.failure(&failure);
            1
        }
    }
}

async fn create(client: &Client, out: &Output, kind: &str, new: &NewArgs) -> Result<i32, Failure> {
    let Some(name) = &new.name else {
        out.fail_local(
            "missing_name",
            "--name is required",
            &format!("Run `instanode {kind} new --name my-{kind}`."),
        );
        return Ok(2);
    };
    if !crate::wire::plain_segment(kind) {
        out.fail_local("unknown_kind", &format!("`{kind}` is not a resource kind"), "Run `instanode db new --name NAME` (or cache, nosql, queue, storage, webhook, vector).");
        return Ok(2);
    }
    let mut body = json!({ "name": name });
    if let Some(env) = &new.env {
        body["env"] = json!(env);
    }
    let created = client
        .call(Method::POST, &format!("/{kind}/new"), Some(body))
        .await?;
    out.done(&format!("{kind} `{name}` is ready"), &created);
    Ok(0)
}

async fn resources(client: &Client, out: &Output) -> Result<i32, Failure> {
    let listed = client.call(Method::GET, "/api/v1/resources", None).await?;
    if out.json() {
        println!("{listed}");
        return Ok(0);
    }
    let items = listed["items"].as_array().cloned().unwrap_or_default();
    println!(
        "{:<38} {:<8} {:<24} {:<10} expires",
        "token", "kind", "name", "status"
    );
    for item in &items {
        let field = |k: &str| item[k].as_str().unwrap_or("-").to_string();
        println!(
            "{:<38} {:<8} {:<24} {:<10} {}",
            field("token"),
            field("kind"),
            field("name"),
            field("status"),
            field("expires_at")
        );
    }
    println!("{} resource(s)", items.len());
    Ok(0)
}

/// `resource TOKEN` or `delete TOKEN`.
async fn show(client: &Client, out: &Output, method: Method, token: &str) -> Result<i32, Failure> {
    if !crate::wire::plain_segment(token) {
        out.fail_local(
            "invalid_token",
            "that is not a resource token",
            "Pass the token a create command printed.",
        );
        return Ok(2);
    }
    let deleting = method == Method::DELETE;
    let answer = client
        .call(method, &format!("/api/v1/resources/{token}"), None)
        .await?;
    let headline = if deleting { "deleted" } else { "resource" };
    out.done(headline, answer.get("item").unwrap_or(&answer));
    Ok(0)
}

async fn claim(client: &Client, out: &Output, args: &ClaimArgs) -> Result<i32, Failure> {
    let (Some(token), Some(email)) = (&args.token, &args.email) else {
        out.fail_local(
            "missing_arguments",
            "claim needs --token and --email",
            "Run `instanode claim --token <upgrade_jwt> --email you@example.com`.",
        );
        return Ok(2);
    };
    let answer = client
        .call(
            Method::POST,
            "/claim",
            Some(json!({ "token": token, "email": email })),
        )
        .await?;
    out.done(&format!("a claim link was sent to {email}"), &answer);
    Ok(0)
}
