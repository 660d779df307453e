//! The `instant.yaml` stack manifest: which services a stack deploy builds, how they are
//! reached, and what each one is given.
//!
//! The YAML is walked by hand rather than derived, so every mistake gets a message naming the
//! service and key at fault, unknown keys become warnings instead of silent no-ops, and env
//! values written as YAML numbers or booleans (`PORT: 3000`) are taken as the text they look like.

use std::collections::{BTreeMap, BTreeSet};

use yaml_serde::{Mapping, Value};

/// Largest accepted manifest text.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;
/// Most services in one stack.
pub const MAX_SERVICES: usize = 10;
/// Most `needs` entries per service.
pub const MAX_NEEDS: usize = 10;
/// Largest env value, in bytes.
pub const MAX_ENV_VALUE_BYTES: usize = 4 * 1024;
/// The port a service listens on when the manifest does not say.
pub const DEFAULT_PORT: u16 = 8080;
/// Longest service name: it becomes a container hostname.
const MAX_SERVICE_NAME: usize = 32;
/// How an env value points at another service of the stack.
const SERVICE_REF: &str = "service://";

/// A parsed, checked stack manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Services by name; each name is also the multipart field carrying its tar.gz.
    pub services: BTreeMap<String, Service>,
}

/// One service of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Build-context directory inside the service's tarball, relative; `.` is its root.
    pub build: String,
    /// The port the service listens on.
    pub port: u16,
    /// Whether the service gets a public URL.
    pub expose: bool,
    /// Tokens of provisioned resources whose URLs are injected as env.
    pub needs: Vec<String>,
    /// Env as written; `service://name` references are still unresolved.
    pub env: BTreeMap<String, String>,
}

impl Default for Service {
    fn default() -> Self {
        Self {
            build: ".".into(),
            port: DEFAULT_PORT,
            expose: false,
            needs: Vec::new(),
            env: BTreeMap::new(),
        }
    }
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The manifest is malformed; the message says what and where.
    #[error("{0}")]
    InvalidManifest(String),
    /// An env key that is not a portable variable name.
    #[error(
        "service `{service}`: env key `{key}` is not a valid variable name; use upper-case letters, digits and `_`, not starting with a digit"
    )]
    InvalidEnvKey { service: String, key: String },
}

impl ManifestError {
    /// The stable code agents branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidManifest(_) => "invalid_manifest",
            Self::InvalidEnvKey { .. } => "invalid_env_key",
        }
    }

    /// One sentence telling an agent how to fix its manifest.
    pub fn agent_action(&self) -> &'static str {
        match self {
            Self::InvalidManifest(_) => {
                "Fix instant.yaml as the message says: a non-empty `services` map of up to 10 DNS-label names, each with optional `build` (relative path), `port` (1-65535), `expose` (true/false), `needs` (list of resource tokens) and `env` (map)."
            }
            Self::InvalidEnvKey { .. } => {
                "Rename the env key to upper-case letters, digits and underscores, starting with a letter or underscore (e.g. DATABASE_URL)."
            }
        }
    }
}

fn invalid(message: impl Into<String>) -> ManifestError {
    ManifestError::InvalidManifest(message.into())
}

/// Parses and checks an `instant.yaml`. Returns the manifest and warnings (unknown keys,
/// reference cycles) worth showing the caller but not worth refusing the deploy over.
pub fn parse(text: &str) -> Result<(Manifest, Vec<String>), ManifestError> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(invalid(format!(
            "the manifest is {} bytes; the limit is {MAX_MANIFEST_BYTES}",
            text.len()
        )));
    }
    let mut doc: Value = yaml_serde::from_str(text)
        .map_err(|e| invalid(format!("the manifest is not valid YAML: {e}")))?;
    // `<<: *defaults` is common in compose files; honour it rather than warn about `<<`.
    doc.apply_merge()
        .map_err(|e| invalid(format!("the manifest is not valid YAML: {e}")))?;
    let Value::Mapping(top) = doc else {
        return Err(invalid(
            "the manifest must be a YAML map with a `services` key",
        ));
    };

    let mut warnings = Vec::new();
    for key in top.keys() {
        if key.as_str() != Some("services") {
            warnings.push(format!("unknown key `{}` ignored", describe_key(key)));
        }
    }
    let declared = match top.get("services") {
        Some(Value::Mapping(services)) => services,
        None | Some(Value::Null) => return Err(invalid("the manifest has no `services` map")),
        Some(other) => {
            return Err(invalid(format!(
                "`services` must be a map of service name to settings, not {}",
                describe(other)
            )));
        }
    };
    if declared.is_empty() {
        return Err(invalid("`services` is empty; declare at least one service"));
    }
    if declared.len() > MAX_SERVICES {
        return Err(invalid(format!(
            "the manifest declares {} services; at most {MAX_SERVICES} are allowed",
            declared.len()
        )));
    }

    let mut services = BTreeMap::new();
    for (key, body) in declared {
        let name = service_name(key)?;
        let service = parse_service(&name, body, &mut warnings)?;
        services.insert(name, service);
    }
    let manifest = Manifest { services };
    let graph = manifest.references()?;
    warnings.extend(cycle_warnings(&graph));
    Ok((manifest, warnings))
}

impl Manifest {
    /// The env of `service` with every `service://name` replaced by `http://name:<port of name>`;
    /// empty for an unknown service.
    pub fn resolved_env(&self, service: &str) -> BTreeMap<String, String> {
        let Some(found) = self.services.get(service) else {
            return BTreeMap::new();
        };
        found
            .env
            .iter()
            .map(|(key, value)| (key.clone(), self.resolve(value)))
            .collect()
    }

    fn resolve(&self, value: &str) -> String {
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some((before, name, after)) = next_reference(rest) {
            out.push_str(before);
            match self.services.get(name) {
                Some(target) => out.push_str(&format!("http://{name}:{}", target.port)),
                // Only reachable for a hand-built manifest: `parse` refuses unknown names.
                None => {
                    out.push_str(SERVICE_REF);
                    out.push_str(name);
                }
            }
            rest = after;
        }
        out.push_str(rest);
        out
    }

    /// Which services each service references through its env; refuses unknown names.
    fn references(&self) -> Result<BTreeMap<&str, BTreeSet<&str>>, ManifestError> {
        let mut graph = BTreeMap::new();
        for (name, service) in &self.services {
            let mut targets = BTreeSet::new();
            for (key, value) in &service.env {
                let mut rest = value.as_str();
                while let Some((_, target, after)) = next_reference(rest) {
                    if target.is_empty() {
                        return Err(invalid(format!(
                            "service `{name}`: env `{key}` has `{SERVICE_REF}` without a service name"
                        )));
                    }
                    if !self.services.contains_key(target) {
                        return Err(invalid(format!(
                            "service `{name}` references unknown service `{target}` in env `{key}`"
                        )));
                    }
                    targets.insert(target);
                    rest = after;
                }
            }
            graph.insert(name.as_str(), targets);
        }
        Ok(graph)
    }
}

/// Env var name for the n-th (0-based) needed resource of a kind whose provider names its
/// variable `base` (`DATABASE_URL` for `db`): the second of a kind gets `_2`, the third `_3`.
pub fn needs_env_name(base: &str, ordinal: usize) -> String {
    if ordinal == 0 {
        base.to_string()
    } else {
        format!("{base}_{}", ordinal + 1)
    }
}

/// The variable for a kind no live provider describes any more: `<KIND>_URL`, always a
/// valid env key.
pub fn fallback_env_var(kind: &str) -> String {
    format!("{}_URL", env_word(kind))
}

/// `kind` as an upper-case env word: other characters become `_`, never a leading digit.
fn env_word(kind: &str) -> String {
    let word: String = kind
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    match word.chars().next() {
        None => "RESOURCE".into(),
        Some(first) if first.is_ascii_digit() => format!("_{word}"),
        Some(_) => word,
    }
}

fn parse_service(
    name: &str,
    body: &Value,
    warnings: &mut Vec<String>,
) -> Result<Service, ManifestError> {
    let empty = Mapping::new();
    let fields = match body {
        Value::Null => &empty,
        Value::Mapping(fields) => fields,
        other => {
            return Err(invalid(format!(
                "service `{name}` must be a map of settings, not {}",
                describe(other)
            )));
        }
    };
    let mut service = Service::default();
    for (key, value) in fields {
        // An explicit null (`port:`) means the same as leaving the key out.
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            Some("build") => service.build = parse_build(name, value)?,
            Some("port") => service.port = parse_port(name, value)?,
            Some("expose") => {
                service.expose = value.as_bool().ok_or_else(|| {
                    invalid(format!(
                        "service `{name}`: `expose` must be true or false, not {}",
                        describe(value)
                    ))
                })?;
            }
            Some("needs") => service.needs = parse_needs(name, value, warnings)?,
            Some("env") => service.env = parse_env(name, value)?,
            _ => warnings.push(format!(
                "service `{name}`: unknown key `{}` ignored",
                describe_key(key)
            )),
        }
    }
    Ok(service)
}

/// Service names become container hostnames: DNS labels of at most 32 characters.
fn service_name(key: &Value) -> Result<String, ManifestError> {
    let name = match key {
        Value::String(name) => name.clone(),
        // `123:` is a YAML number but a fine hostname.
        Value::Number(number) => number.to_string(),
        other => {
            return Err(invalid(format!(
                "service names must be strings, not {}",
                describe(other)
            )));
        }
    };
    let bytes = name.as_bytes();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    let valid = !bytes.is_empty()
        && bytes.len() <= MAX_SERVICE_NAME
        && bytes.iter().all(allowed)
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-');
    if !valid {
        return Err(invalid(format!(
            "service name `{name}` is not a valid hostname; use 1-32 lower-case letters, digits and `-`, starting and ending with a letter or digit"
        )));
    }
    Ok(name)
}

fn parse_build(service: &str, value: &Value) -> Result<String, ManifestError> {
    let Some(build) = value.as_str() else {
        return Err(invalid(format!(
            "service `{service}`: `build` must be a path string, not {}",
            describe(value)
        )));
    };
    let problem = if build.starts_with('/') {
        Some("must be relative to the service's tarball")
    } else if build.split('/').any(|part| part == "..") {
        Some("must not contain `..`")
    } else if build.chars().any(|c| c.is_control() || c == '\\') {
        Some("must not contain backslashes or control characters")
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(invalid(format!(
            "service `{service}`: `build` path `{}` {problem}",
            truncated(build)
        )));
    }
    Ok(if build.is_empty() { "." } else { build }.to_string())
}

fn parse_port(service: &str, value: &Value) -> Result<u16, ManifestError> {
    let out_of_range = || {
        invalid(format!(
            "service `{service}`: `port` must be a whole number from 1 to 65535 (or omitted for {DEFAULT_PORT}), not {}",
            describe(value)
        ))
    };
    let port = value.as_i64().ok_or_else(out_of_range)?;
    match port {
        0 => Ok(DEFAULT_PORT),
        _ => u16::try_from(port).map_err(|_| out_of_range()),
    }
}

fn parse_needs(
    service: &str,
    value: &Value,
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, ManifestError> {
    let Value::Sequence(items) = value else {
        return Err(invalid(format!(
            "service `{service}`: `needs` must be a list of resource tokens, not {}",
            describe(value)
        )));
    };
    if items.len() > MAX_NEEDS {
        return Err(invalid(format!(
            "service `{service}`: `needs` lists {} resources; at most {MAX_NEEDS} are allowed",
            items.len()
        )));
    }
    let mut needs: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let token = item.as_str().map(str::trim).unwrap_or_default();
        if token.is_empty() {
            return Err(invalid(format!(
                "service `{service}`: every `needs` entry must be a non-empty resource token, not {}",
                describe(item)
            )));
        }
        if needs.iter().any(|seen| seen == token) {
            warnings.push(format!(
                "service `{service}`: `needs` lists `{token}` twice; it will be injected twice"
            ));
        }
        needs.push(token.to_string());
    }
    Ok(needs)
}

fn parse_env(service: &str, value: &Value) -> Result<BTreeMap<String, String>, ManifestError> {
    let Value::Mapping(pairs) = value else {
        return Err(invalid(format!(
            "service `{service}`: `env` must be a map of KEY: value, not {}",
            describe(value)
        )));
    };
    let mut env = BTreeMap::new();
    for (key, value) in pairs {
        let key = match key {
            Value::String(key) if valid_env_key(key) => key.clone(),
            other => {
                return Err(ManifestError::InvalidEnvKey {
                    service: service.to_string(),
                    key: describe_key(other),
                });
            }
        };
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            Value::Null => {
                return Err(invalid(format!(
                    "service `{service}`: env `{key}` has no value; write \"\" for an empty one"
                )));
            }
            other => {
                return Err(invalid(format!(
                    "service `{service}`: env `{key}` must be a string, not {}",
                    describe(other)
                )));
            }
        };
        if text.len() > MAX_ENV_VALUE_BYTES {
            return Err(invalid(format!(
                "service `{service}`: env `{key}` is {} bytes; values are limited to {MAX_ENV_VALUE_BYTES}",
                text.len()
            )));
        }
        env.insert(key, text);
    }
    Ok(env)
}

/// `^[A-Z_][A-Z0-9_]*$`, by hand.
fn valid_env_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_uppercase() || b == b'_');
    first_ok && bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// The next `service://name` in `text` as (text before, name, text after). The name is the
/// run of DNS-label characters after the scheme, so `service://api/v1` names `api`.
fn next_reference(text: &str) -> Option<(&str, &str, &str)> {
    let start = text.find(SERVICE_REF)?;
    let after_scheme = &text[start + SERVICE_REF.len()..];
    let name_len = after_scheme
        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
        .unwrap_or(after_scheme.len());
    Some((
        &text[..start],
        &after_scheme[..name_len],
        &after_scheme[name_len..],
    ))
}

/// One warning per group of services that reference each other in a loop (a self-reference
/// included): allowed, but no start order satisfies them, so each must tolerate the others
/// coming up late.
fn cycle_warnings(graph: &BTreeMap<&str, BTreeSet<&str>>) -> Vec<String> {
    let reach: BTreeMap<&str, BTreeSet<&str>> = graph
        .keys()
        .map(|&start| (start, reachable(graph, start)))
        .collect();
    let mut warned: BTreeSet<&str> = BTreeSet::new();
    let mut warnings = Vec::new();
    for (&name, from_name) in &reach {
        if warned.contains(name) || !from_name.contains(name) {
            continue;
        }
        let group: Vec<&str> = from_name
            .iter()
            .copied()
            .filter(|other| reach.get(other).is_some_and(|back| back.contains(name)))
            .collect();
        warned.extend(group.iter().copied());
        warnings.push(if group.len() == 1 {
            format!("service `{name}` references itself through `{SERVICE_REF}{name}`")
        } else {
            let names: Vec<String> = group.iter().map(|n| format!("`{n}`")).collect();
            format!(
                "services {} reference each other in a cycle; they start in no particular order, so each must retry until the others answer",
                names.join(", ")
            )
        });
    }
    warnings
}

/// Every service reachable from `start` by one or more references.
fn reachable<'a>(
    graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
    start: &'a str,
) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&str> = graph.get(start).into_iter().flatten().copied().collect();
    while let Some(next) = stack.pop() {
        if seen.insert(next) {
            stack.extend(graph.get(next).into_iter().flatten().copied());
        }
    }
    seen
}

/// What a YAML value is, for messages: the scalar itself, or its kind.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(flag) => format!("`{flag}`"),
        Value::Number(number) => format!("`{number}`"),
        Value::String(text) => format!("`{}`", truncated(text)),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a map".into(),
        Value::Tagged(tagged) => format!("a value tagged `{}`", tagged.tag),
    }
}

/// A map key as text, for messages.
fn describe_key(key: &Value) -> String {
    match key {
        Value::String(text) => truncated(text),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        other => describe(other),
    }
}

/// `text` fit for a message: control characters escaped, at most 100 characters.
fn truncated(text: &str) -> String {
    super::printable(text, 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> (Manifest, Vec<String>) {
        match parse(text) {
            Ok(parsed) => parsed,
            Err(error) => panic!("refused: {error}\n{text}"),
        }
    }

    fn refused(text: &str) -> ManifestError {
        match parse(text) {
            Ok(parsed) => panic!("accepted: {parsed:?}\n{text}"),
            Err(error) => error,
        }
    }

    fn message(text: &str) -> String {
        let error = refused(text);
        assert_eq!(error.code(), "invalid_manifest", "{error}");
        error.to_string()
    }

    /// A one-service manifest whose service body is `body` (indented under `api:`).
    fn api(body: &str) -> String {
        let indented: String = body.lines().map(|line| format!("    {line}\n")).collect();
        format!("services:\n  api:\n{indented}")
    }

    #[test]
    fn a_full_stack_parses() {
        let (manifest, warnings) = ok("
services:
  web:
    build: ./frontend
    port: 3000
    expose: true
    env:
      API_URL: service://api
      NODE_ENV: production
  api:
    needs: [tok_db_1, tok_cache_1]
    env:
      LOG_LEVEL: debug
");
        assert!(warnings.is_empty(), "{warnings:?}");
        let web = &manifest.services["web"];
        assert_eq!(web.build, "./frontend");
        assert_eq!(web.port, 3000);
        assert!(web.expose);
        assert_eq!(web.env["API_URL"], "service://api");
        let api = &manifest.services["api"];
        assert_eq!(
            api,
            &Service {
                needs: vec!["tok_db_1".into(), "tok_cache_1".into()],
                env: BTreeMap::from([("LOG_LEVEL".into(), "debug".into())]),
                ..Service::default()
            }
        );
    }

    #[test]
    fn omitted_and_null_settings_take_defaults() {
        for text in [
            "services:\n  api: {}\n",
            "services:\n  api:\n",
            &api("build:\nport:\nexpose:\nneeds:\nenv:"),
            &api("port: 0"),
            &api("build: ''"),
        ] {
            let (manifest, _) = ok(text);
            assert_eq!(manifest.services["api"], Service::default(), "{text}");
        }
        assert_eq!(Service::default().build, ".");
        assert_eq!(Service::default().port, 8080);
    }

    #[test]
    fn unknown_keys_are_ignored_with_a_warning() {
        let (manifest, warnings) = ok("
version: 2
services:
  api:
    expoes: true
    image: nginx
");
        assert!(!manifest.services["api"].expose);
        assert_eq!(
            warnings,
            vec![
                "unknown key `version` ignored",
                "service `api`: unknown key `expoes` ignored",
                "service `api`: unknown key `image` ignored",
            ]
        );
    }

    #[test]
    fn yaml_merge_keys_are_honoured() {
        let (manifest, warnings) = ok("
x-common: &common
  port: 9000
  env: {REGION: eu}
services:
  api:
    <<: *common
    expose: true
");
        let api = &manifest.services["api"];
        assert_eq!((api.port, api.expose), (9000, true));
        assert_eq!(api.env["REGION"], "eu");
        assert_eq!(warnings, vec!["unknown key `x-common` ignored"]);
    }

    #[test]
    fn the_document_must_be_yaml_with_services() {
        assert!(message("services: [").contains("not valid YAML"));
        assert!(message("").contains("must be a YAML map"));
        assert!(message("- api\n- web\n").contains("must be a YAML map"));
        assert!(message("just text").contains("must be a YAML map"));
        assert_eq!(message("name: x\n"), "the manifest has no `services` map");
        assert_eq!(message("services:\n"), "the manifest has no `services` map");
        assert_eq!(
            message("services: [api, web]\n"),
            "`services` must be a map of service name to settings, not a list"
        );
        assert_eq!(
            message("services: {}\n"),
            "`services` is empty; declare at least one service"
        );
    }

    #[test]
    fn yaml_alias_bombs_and_deep_nesting_are_refused() {
        let mut bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n".to_string();
        for i in 1..10 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [{}]\n",
                vec![format!("*a{p}"); 10].join(", ")
            ));
        }
        bomb.push_str("services:\n  api: {}\n");
        assert!(message(&bomb).contains("not valid YAML"));
        let deep = api(&format!("env: {}{}", "[".repeat(5000), "]".repeat(5000)));
        assert!(message(&deep).contains("not valid YAML"));
    }

    #[test]
    fn at_most_ten_services() {
        let stack = |n: usize| {
            let mut text = "services:\n".to_string();
            for i in 0..n {
                text.push_str(&format!("  s{i}: {{}}\n"));
            }
            text
        };
        assert_eq!(ok(&stack(10)).0.services.len(), 10);
        assert_eq!(
            message(&stack(11)),
            "the manifest declares 11 services; at most 10 are allowed"
        );
    }

    #[test]
    fn the_manifest_text_is_limited_to_64_kib() {
        let mut text = api("port: 80");
        text.push('#');
        text.push_str(&"x".repeat(MAX_MANIFEST_BYTES - text.len()));
        assert_eq!(text.len(), MAX_MANIFEST_BYTES);
        ok(&text);
        text.push('x');
        assert_eq!(
            message(&text),
            "the manifest is 65537 bytes; the limit is 65536"
        );
    }

    #[test]
    fn service_names_are_dns_labels() {
        let longest = "a".repeat(32);
        for name in ["a", "api", "web-2", "0", "123", "a-b-c", longest.as_str()] {
            ok(&format!("services:\n  {name}: {{}}\n"));
        }
        let too_long = "a".repeat(33);
        for name in [
            "Api",
            "-api",
            "api-",
            "my_api",
            "api.web",
            "\"\"",
            "\"a b\"",
            "ápi",
            too_long.as_str(),
        ] {
            let text = format!("services:\n  {name}: {{}}\n");
            assert!(message(&text).contains("is not a valid hostname"), "{name}");
        }
        assert_eq!(
            message("services:\n  true: {}\n"),
            "service names must be strings, not `true`"
        );
    }

    #[test]
    fn a_service_body_must_be_a_map() {
        assert_eq!(
            message("services:\n  api: nginx\n"),
            "service `api` must be a map of settings, not `nginx`"
        );
    }

    #[test]
    fn build_is_a_safe_relative_path() {
        for build in [".", "./", "api", "./services/api", "services/api/"] {
            let (manifest, _) = ok(&api(&format!("build: '{build}'")));
            assert_eq!(manifest.services["api"].build, build);
        }
        for (build, problem) in [
            ("/srv/api", "must be relative"),
            ("../api", "must not contain `..`"),
            ("services/../../api", "must not contain `..`"),
            ("..", "must not contain `..`"),
            ("a\\\\b", "must not contain backslashes"),
            (
                "a\\tb",
                "must not contain backslashes or control characters",
            ),
        ] {
            let text = api(&format!("build: \"{build}\""));
            let message = message(&text);
            assert!(message.contains(problem), "{build}: {message}");
        }
        assert!(message(&api("build: [a]")).contains("`build` must be a path string"));
    }

    #[test]
    fn ports_are_1_to_65535_with_0_meaning_8080() {
        for (written, port) in [("1", 1), ("80", 80), ("65535", 65535), ("0", 8080)] {
            let (manifest, _) = ok(&api(&format!("port: {written}")));
            assert_eq!(manifest.services["api"].port, port);
        }
        for written in ["65536", "-1", "80.5", "'80'", "http", "[80]"] {
            let message = message(&api(&format!("port: {written}")));
            assert!(
                message.starts_with("service `api`: `port` must be a whole number from 1 to 65535"),
                "{written}: {message}"
            );
        }
        // Too big for YAML's own integers: still an invalid manifest, in the YAML parser's words.
        assert!(message(&api("port: 99999999999999999999")).contains("services.api.port"));
    }

    #[test]
    fn expose_is_a_boolean() {
        assert!(ok(&api("expose: true")).0.services["api"].expose);
        assert!(!ok(&api("expose: false")).0.services["api"].expose);
        assert_eq!(
            message(&api("expose: yes")),
            "service `api`: `expose` must be true or false, not `yes`"
        );
    }

    #[test]
    fn needs_are_up_to_ten_non_empty_tokens() {
        let (manifest, _) = ok(&api("needs:\n  - tok_a\n  - ' tok_b '"));
        assert_eq!(manifest.services["api"].needs, vec!["tok_a", "tok_b"]);
        let ten: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
        ok(&api(&format!("needs: [{}]", ten.join(", "))));
        let eleven: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
        assert_eq!(
            message(&api(&format!("needs: [{}]", eleven.join(", ")))),
            "service `api`: `needs` lists 11 resources; at most 10 are allowed"
        );
        for needs in ["['']", "['  ']", "[1]", "[[a]]", "[null]"] {
            let message = message(&api(&format!("needs: {needs}")));
            assert!(
                message.contains("non-empty resource token"),
                "{needs}: {message}"
            );
        }
        assert!(message(&api("needs: tok_a")).contains("`needs` must be a list"));
        let (_, warnings) = ok(&api("needs: [tok_a, tok_a]"));
        assert_eq!(
            warnings,
            vec!["service `api`: `needs` lists `tok_a` twice; it will be injected twice"]
        );
    }

    #[test]
    fn env_keys_must_be_upper_snake_case() {
        for key in ["A", "_", "_PRIVATE", "DATABASE_URL", "A1_B2"] {
            let (manifest, _) = ok(&api(&format!("env:\n  {key}: x")));
            assert_eq!(manifest.services["api"].env[key], "x");
        }
        for (written, key) in [
            ("lower", "lower"),
            ("Mixed", "Mixed"),
            ("1ST", "1ST"),
            ("WITH-DASH", "WITH-DASH"),
            ("WITH.DOT", "WITH.DOT"),
            ("'WITH SPACE'", "WITH SPACE"),
            ("''", ""),
            ("ÄPFEL", "ÄPFEL"),
            ("1", "1"),
        ] {
            let error = refused(&api(&format!("env:\n  {written}: x")));
            assert_eq!(error.code(), "invalid_env_key", "{written}");
            assert_eq!(
                error,
                ManifestError::InvalidEnvKey {
                    service: "api".into(),
                    key: key.into()
                }
            );
        }
        assert_eq!(
            refused(&api("env:\n  bad-key: x")).to_string(),
            "service `api`: env key `bad-key` is not a valid variable name; use upper-case letters, digits and `_`, not starting with a digit"
        );
    }

    #[test]
    fn env_scalars_are_taken_as_text() {
        let (manifest, _) = ok(&api(
            "env:\n  PORT: 3000\n  DEBUG: true\n  RATIO: 0.5\n  EMPTY: ''\n  QUOTED: '007'",
        ));
        let env = &manifest.services["api"].env;
        assert_eq!(env["PORT"], "3000");
        assert_eq!(env["DEBUG"], "true");
        assert_eq!(env["RATIO"], "0.5");
        assert_eq!(env["EMPTY"], "");
        assert_eq!(env["QUOTED"], "007");
        assert_eq!(
            message(&api("env:\n  TOKEN:")),
            "service `api`: env `TOKEN` has no value; write \"\" for an empty one"
        );
        assert!(message(&api("env:\n  LIST: [a, b]")).contains("must be a string, not a list"));
        assert!(message(&api("env: [A=1]")).contains("`env` must be a map"));
    }

    #[test]
    fn env_values_are_limited_to_4_kib() {
        let at_limit = "x".repeat(MAX_ENV_VALUE_BYTES);
        ok(&api(&format!("env:\n  BIG: {at_limit}")));
        let over = "x".repeat(MAX_ENV_VALUE_BYTES + 1);
        assert_eq!(
            message(&api(&format!("env:\n  BIG: {over}"))),
            "service `api`: env `BIG` is 4097 bytes; values are limited to 4096"
        );
    }

    #[test]
    fn service_references_must_name_declared_services() {
        assert_eq!(
            message(&api("env:\n  X_URL: service://x")),
            "service `api` references unknown service `x` in env `X_URL`"
        );
        assert_eq!(
            message(&api("env:\n  X_URL: 'service:///path'")),
            "service `api`: env `X_URL` has `service://` without a service name"
        );
        // The second reference in one value is checked too.
        let text =
            "services:\n  api:\n    env:\n      URLS: service://web,service://nope\n  web: {}\n";
        assert!(message(text).contains("unknown service `nope`"));
    }

    #[test]
    fn resolved_env_replaces_references_with_urls() {
        let (manifest, warnings) = ok("
services:
  web:
    env:
      API: service://api
      API_V1: service://api/v1
      BOTH: service://api,service://worker
      PLAIN: hello
  api:
    port: 9000
  worker: {}
");
        assert!(warnings.is_empty(), "{warnings:?}");
        let env = manifest.resolved_env("web");
        assert_eq!(env["API"], "http://api:9000");
        assert_eq!(env["API_V1"], "http://api:9000/v1");
        assert_eq!(env["BOTH"], "http://api:9000,http://worker:8080");
        assert_eq!(env["PLAIN"], "hello");
        // `env` itself keeps what was written.
        assert_eq!(manifest.services["web"].env["API"], "service://api");
        assert!(manifest.resolved_env("nope").is_empty());
        assert!(manifest.resolved_env("api").is_empty());
    }

    #[test]
    fn reference_cycles_are_allowed_with_a_warning() {
        let (manifest, warnings) = ok("
services:
  a:
    env: {B: 'service://b'}
  b:
    env: {A: 'service://a'}
  c:
    env: {A: 'service://a'}
");
        assert_eq!(
            warnings,
            vec![
                "services `a`, `b` reference each other in a cycle; they start in no particular order, so each must retry until the others answer"
            ]
        );
        assert_eq!(manifest.resolved_env("a")["B"], "http://b:8080");

        let (_, warnings) = ok("
services:
  a: {env: {N: 'service://b'}}
  b: {env: {N: 'service://c'}}
  c: {env: {N: 'service://a'}}
  d: {env: {SELF: 'service://d'}}
");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("services `a`, `b`, `c` reference each other"));
        assert_eq!(
            warnings[1],
            "service `d` references itself through `service://d`"
        );

        let (_, warnings) = ok("
services:
  a: {env: {N: 'service://b'}}
  b: {env: {N: 'service://c'}}
  c: {}
");
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn needs_env_names_follow_the_kind() {
        for (kind, name) in [
            ("DB", "DB_URL"),
            ("search", "SEARCH_URL"),
            ("time-series", "TIME_SERIES_URL"),
            ("3d", "_3D_URL"),
            ("", "RESOURCE_URL"),
        ] {
            assert_eq!(fallback_env_var(kind), name, "{kind}");
            assert!(valid_env_key(&fallback_env_var(kind)), "{kind}");
        }
        assert_eq!(needs_env_name("DATABASE_URL", 0), "DATABASE_URL");
        assert_eq!(needs_env_name("DATABASE_URL", 1), "DATABASE_URL_2");
        assert_eq!(needs_env_name("REDIS_URL", 2), "REDIS_URL_3");
    }

    #[test]
    fn errors_have_codes_and_actions() {
        let invalid = ManifestError::InvalidManifest("x".into());
        let key = ManifestError::InvalidEnvKey {
            service: "api".into(),
            key: "k".into(),
        };
        assert_eq!(invalid.code(), "invalid_manifest");
        assert_eq!(key.code(), "invalid_env_key");
        assert!(invalid.agent_action().ends_with('.'));
        assert!(key.agent_action().ends_with('.'));
    }
}
