//! The command-line client, in the same binary as the host: `instanode db new --name x`,
//! `instanode deploy ./dir --name app`, `resources`, `login`, `claim`. Every command is one
//! or a few REST calls; `--json` prints the host's answers as they are, for scripts.

mod client;
mod deploy;
mod login;

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{Value, json};

use client::{Client, Failure};

pub const USAGE: &str = "client commands (against INSTANODE_URL, default http://127.0.0.1:8080):
  instanode <kind> new --name NAME [--env ENV]   db, vector, cache, nosql, queue, storage, webhook, ...
  instanode deploy DIR [--name APP] [--port PORT] [--var KEY=VALUE]... [--redeploy] [--timeout SECONDS]
  instanode resources                            the signed-in team's resources
  instanode resource TOKEN                       one resource's status, limits and usage
  instanode delete TOKEN                         deletes a resource
  instanode claim --token UPGRADE_JWT --email EMAIL
  instanode login                                device sign-in; keeps an API key for later commands
options: --json (the host's answers as JSON), --url URL, --token TOKEN (else INSTANODE_TOKEN,
         else the key `login` kept)";

/// Commands that make the binary a client rather than a host.
const COMMANDS: [&str; 6] = [
    "deploy",
    "resources",
    "resource",
    "delete",
    "claim",
    "login",
];

/// Whether `args` (without the program name) is a client command.
pub fn is_client_command(args: &[String]) -> bool {
    match args.first() {
        Some(first) => {
            COMMANDS.contains(&first.as_str()) || args.get(1).is_some_and(|second| second == "new")
        }
        None => false,
    }
}

#[derive(Default)]
pub struct Options {
    pub json: bool,
    pub name: Option<String>,
    pub env: Option<String>,
    pub port: Option<u16>,
    pub vars: Vec<(String, String)>,
    pub redeploy: bool,
    pub timeout_seconds: u64,
    pub email: Option<String>,
    pub upgrade_token: Option<String>,
    url: Option<String>,
    token: Option<String>,
    positional: Vec<String>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        timeout_seconds: 600,
        ..Options::default()
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match arg.as_str() {
            "--json" => options.json = true,
            "--redeploy" => options.redeploy = true,
            "--name" => options.name = Some(value(arg)?),
            "--env" => options.env = Some(value(arg)?),
            "--email" => options.email = Some(value(arg)?),
            "--url" => options.url = Some(value(arg)?),
            "--token" => {
                // `claim --token` is the upgrade token being claimed; elsewhere the caller's.
                let token = value(arg)?;
                options.upgrade_token = Some(token.clone());
                options.token = Some(token);
            }
            "--port" => {
                let port = value(arg)?;
                options.port = Some(
                    port.parse()
                        .map_err(|_| format!("--port {port}: not a port number"))?,
                );
            }
            "--timeout" => {
                let seconds = value(arg)?;
                options.timeout_seconds = seconds
                    .parse()
                    .map_err(|_| format!("--timeout {seconds}: not a number of seconds"))?;
            }
            "--var" => {
                let pair = value(arg)?;
                let (key, val) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("--var {pair}: write KEY=VALUE"))?;
                options.vars.push((key.to_string(), val.to_string()));
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ => options.positional.push(arg.clone()),
        }
    }
    Ok(options)
}

/// Runs a client command; the process's exit code (0 done, 1 refused or failed, 2 usage).
pub async fn run(args: &[String]) -> i32 {
    let options = match parse(args) {
        Ok(options) => options,
        Err(problem) => {
            eprintln!("{problem}\n\n{USAGE}");
            return 2;
        }
    };
    let out = Output { json: options.json };
    let words: Vec<&str> = options.positional.iter().map(String::as_str).collect();
    // `claim --token` names the claimed token, not the caller.
    let caller_token = if words.first() == Some(&"claim") {
        None
    } else {
        options.token.clone()
    };
    let client = Client::new(options.url.clone(), caller_token);
    let outcome = match words.as_slice() {
        [kind, "new"] => create(&client, &out, kind, &options).await,
        ["deploy", dir] => deploy::run(&client, &out, &PathBuf::from(dir), &options).await,
        ["deploy"] => deploy::run(&client, &out, &PathBuf::from("."), &options).await,
        ["resources"] => resources(&client, &out).await,
        ["resource", token] => {
            with_token(token, &out, |path| show(&client, &out, Method::GET, path)).await
        }
        ["delete", token] => {
            with_token(token, &out, |path| {
                show(&client, &out, Method::DELETE, path)
            })
            .await
        }
        ["claim"] => claim(&client, &out, &options).await,
        ["login"] => login::run(&client, &out).await,
        _ => {
            eprintln!("{USAGE}");
            return 2;
        }
    };
    match outcome {
        Ok(code) => code,
        Err(failure) => {
            out.failure(&failure);
            1
        }
    }
}

async fn create(
    client: &Client,
    out: &Output,
    kind: &str,
    options: &Options,
) -> Result<i32, Failure> {
    let Some(name) = &options.name else {
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
    if let Some(env) = &options.env {
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
    if out.json {
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

async fn with_token<F, Fut>(token: &str, out: &Output, then: F) -> Result<i32, Failure>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<i32, Failure>>,
{
    if !crate::wire::plain_segment(token) {
        out.fail_local(
            "invalid_token",
            "that is not a resource token",
            "Pass the token a create command printed.",
        );
        return Ok(2);
    }
    then(format!("/api/v1/resources/{token}")).await
}

async fn show(client: &Client, out: &Output, method: Method, path: String) -> Result<i32, Failure> {
    let deleting = method == Method::DELETE;
    let answer = client.call(method, &path, None).await?;
    let headline = if deleting { "deleted" } else { "resource" };
    out.done(headline, answer.get("item").unwrap_or(&answer));
    Ok(0)
}

async fn claim(client: &Client, out: &Output, options: &Options) -> Result<i32, Failure> {
    let (Some(token), Some(email)) = (&options.upgrade_token, &options.email) else {
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

/// How results reach the terminal: readable lines, or the host's JSON with `--json`.
/// Progress goes to stderr so stdout holds only the result.
pub struct Output {
    json: bool,
}

impl Output {
    fn progress(&self, line: &str) {
        eprintln!("==> {line}");
    }

    fn log_line(&self, line: &str) {
        eprintln!("  | {line}");
    }

    /// The result: a headline and the answer's fields, or the answer as JSON.
    fn done(&self, headline: &str, answer: &Value) {
        if self.json {
            println!("{answer}");
            return;
        }
        println!("{headline}");
        if let Some(fields) = answer.as_object() {
            for (key, value) in fields {
                match value {
                    Value::Null => {}
                    Value::Bool(_) if key == "ok" => {}
                    Value::String(text) => println!("  {key:<16} {text}"),
                    other => println!("  {key:<16} {other}"),
                }
            }
        }
    }

    fn failure(&self, failure: &Failure) {
        let envelope = failure.envelope();
        if self.json {
            println!("{envelope}");
            return;
        }
        let field = |k: &str| envelope[k].as_str().unwrap_or_default().to_string();
        let status = match failure {
            Failure::Api { status, .. } if *status > 0 => format!(" (HTTP {status})"),
            _ => String::new(),
        };
        eprintln!("error: {}{status}: {}", field("error"), field("message"));
        if !field("agent_action").is_empty() {
            eprintln!("what to do: {}", field("agent_action"));
        }
        if !field("request_id").is_empty() {
            eprintln!("request_id: {}", field("request_id"));
        }
    }

    /// A refusal decided here, before any call, in the same envelope as the host's.
    fn fail_local(&self, code: &str, message: &str, action: &str) {
        self.failure(&Failure::Api {
            status: 0,
            body: json!({"ok": false, "error": code, "message": message, "agent_action": action}),
        });
    }

    /// The id the host answered in `field`, fit to be placed in a path; else says so.
    fn id_in(&self, answer: &Value, field: &str) -> Option<String> {
        let id = answer[field].as_str().unwrap_or_default();
        if crate::wire::plain_segment(id) {
            return Some(id.to_string());
        }
        self.fail_local(
            "unexpected_answer",
            &format!("the host answered without a usable `{field}`"),
            "Report this to the host's operator.",
        );
        None
    }

    /// Why a deployment failed: the host's autopsy (reason, exit code, last lines, hint).
    fn autopsy(&self, item: &Value, events: &Value) {
        if self.json {
            println!(
                "{}",
                json!({"ok": false, "item": item, "events": events["events"]})
            );
            return;
        }
        let autopsy = &events["events"][0];
        let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
        eprintln!("deployment failed: {}", text(&item["error"]));
        eprintln!("  reason     {}", text(&autopsy["reason"]));
        eprintln!("  exit code  {}", autopsy["exit_code"]);
        eprintln!("  hint       {}", text(&autopsy["hint"]));
        if let Some(lines) = autopsy["last_lines"].as_array() {
            eprintln!("  last lines:");
            for line in lines {
                eprintln!("  | {}", text(line));
            }
        }
    }
}
