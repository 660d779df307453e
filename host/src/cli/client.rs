//! The CLI's connection to a host: where it is, who the caller is, and how answers and
//! error envelopes come back.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{Value, json};

/// What the CLI keeps after `instanode login`.
const CREDENTIALS_FILE: &str = "credentials.json";
const DEFAULT_URL: &str = "http://127.0.0.1:8080";

pub struct Client {
    pub base: String,
    pub token: Option<String>,
    http: reqwest::Client,
}

/// A call that did not succeed: the host's error envelope, or why the host was not reached.
pub enum Failure {
    Api { status: u16, body: Value },
    Unreachable(String),
}

impl Failure {
    /// The failure as an error envelope, so `--json` callers parse one shape.
    pub fn envelope(&self) -> Value {
        match self {
            Self::Api { body, .. } => body.clone(),
            Self::Unreachable(message) => json!({
                "ok": false,
                "error": "host_unreachable",
                "message": message,
                "agent_action": "Check INSTANODE_URL (or --url) names a running instanode host.",
            }),
        }
    }
}

impl Client {
    /// `--url` / `--token`, else `INSTANODE_URL` / `INSTANODE_TOKEN`, else what `login`
    /// saved, else the local default address and no token.
    pub fn new(url: Option<String>, token: Option<String>) -> Self {
        let saved = saved_credentials();
        let base = url
            .or_else(|| std::env::var("INSTANODE_URL").ok())
            .or_else(|| saved["url"].as_str().map(str::to_string))
            .unwrap_or_else(|| DEFAULT_URL.to_string())
            .trim_end_matches('/')
            .to_string();
        let token = token
            .or_else(|| std::env::var("INSTANODE_TOKEN").ok())
            .or_else(|| saved["api_key"].as_str().map(str::to_string))
            .filter(|t| !t.is_empty());
        Self {
            base,
            token,
            http: reqwest::Client::new(),
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(
                reqwest::header::USER_AGENT,
                concat!("instanode-cli/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request
    }

    /// Sends `body` (if any) as JSON; the answer's JSON, or the failure.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        answer(request.send().await).await
    }

    /// Sends a ready-made body (e.g. a multipart form).
    pub async fn upload(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Value, Failure> {
        let request = self
            .request(Method::POST, path)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        answer(request.send().await).await
    }

    /// Follows a server-sent event stream, handing each `data:` line to `on_line` until the
    /// stream ends or `on_line` answers false.
    pub async fn follow(
        &self,
        path: &str,
        mut on_line: impl FnMut(&str) -> bool,
    ) -> Result<(), Failure> {
        let mut response = self
            .request(Method::GET, path)
            .send()
            .await
            .map_err(|e| Failure::Unreachable(e.to_string()))?;
        if !response.status().is_success() {
            return answer(Ok(response)).await.map(|_| ());
        }
        let mut pending = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Failure::Unreachable(e.to_string()))?
        {
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                if let Some(data) = line.trim_end_matches(['\r', '\n']).strip_prefix("data:")
                    && !on_line(data.strip_prefix(' ').unwrap_or(data))
                {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

async fn answer(sent: reqwest::Result<reqwest::Response>) -> Result<Value, Failure> {
    let response = sent.map_err(|e| Failure::Unreachable(e.to_string()))?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| Failure::Unreachable(e.to_string()))?;
    let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        json!({
            "ok": false,
            "error": "unexpected_answer",
            "message": format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes).trim()),
        })
    });
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        Err(Failure::Api { status, body })
    }
}

/// `$XDG_CONFIG_HOME/instanode/credentials.json` (or under `~/.config`).
pub fn credentials_path() -> Option<PathBuf> {
    let dir = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(dir.join("instanode").join(CREDENTIALS_FILE))
}

fn saved_credentials() -> Value {
    credentials_path()
        .and_then(|path| std::fs::read(path).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}

/// Keeps an API key for later commands, readable by this user only.
pub fn save_credentials(credentials: &Value) -> std::io::Result<PathBuf> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = credentials_path()
        .ok_or_else(|| std::io::Error::other("neither XDG_CONFIG_HOME nor HOME is set"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(serde_json::to_string_pretty(credentials)?.as_bytes())?;
    Ok(path)
}
