//! How results reach the terminal: readable lines, or the host's JSON with `--json`.
//! Progress goes to stderr so stdout holds only the result.

use serde_json::{Value, json};

use super::client::Failure;
use super::progress::Spinner;

pub struct Output {
    json: bool,
    spinner: Spinner,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Self {
            json,
            spinner: Spinner::default(),
        }
    }

    /// Also shows a spinner (on a terminal) until the result is printed: for commands that
    /// wait a long time.
    pub fn with_spinner(self) -> Self {
        Self {
            spinner: Spinner::on_terminal(),
            ..self
        }
    }

    /// Names what is under way next to the spinner, without a line of its own.
    pub fn working(&self, what: &str) {
        self.spinner.set_message(what);
    }

    pub fn progress(&self, line: &str) {
        self.spinner.suspend(|| eprintln!("==> {line}"));
        self.spinner.set_message(line);
    }

    pub fn log_line(&self, line: &str) {
        self.spinner.suspend(|| eprintln!("  | {line}"));
    }

    /// The result: a headline and the answer's fields, or the answer as JSON.
    pub fn done(&self, headline: &str, answer: &Value) {
        self.spinner.clear();
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

    /// Whether `--json` was given, for a command that prints its result itself.
    pub fn json(&self) -> bool {
        self.json
    }

    pub fn failure(&self, failure: &Failure) {
        self.spinner.clear();
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
    pub fn fail_local(&self, code: &str, message: &str, action: &str) {
        self.failure(&Failure::Api {
            status: 0,
            body: json!({"ok": false, "error": code, "message": message, "agent_action": action}),
        });
    }

    /// The id the host answered in `field`, fit to be placed in a path; else says so.
    pub fn id_in(&self, answer: &Value, field: &str) -> Option<String> {
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
    pub fn autopsy(&self, item: &Value, events: &Value) {
        self.spinner.clear();
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
