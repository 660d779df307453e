//! What a Dockerfile may fetch. Builds run without a network, but the engine itself
//! downloads `ADD <url>` sources and pulls missing base images, from inside the host's own
//! network namespace: such instructions are refused before anything is built.

use std::collections::HashMap;

/// An instruction that would make the engine fetch something over the network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile line {line}: `{instruction}` {reason}")]
pub struct RemoteFetch {
    pub line: usize,
    /// The instruction as written, shortened for the message.
    pub instruction: String,
    pub reason: &'static str,
}

/// Checks every instruction of a Dockerfile (continuation lines joined, comments skipped).
pub fn check(text: &str) -> Result<(), RemoteFetch> {
    let escape = escape_character(text);
    // Global `ARG`s (before the first `FROM`) are the only values `FROM` may expand: the
    // host passes no build arguments, so their defaults are final.
    let mut global_args: HashMap<String, String> = HashMap::new();
    let mut seen_from = false;
    for (line, instruction) in instructions(text, escape) {
        let refuse = |reason| RemoteFetch {
            line,
            instruction: super::printable(&instruction, 120),
            reason,
        };
        let (keyword, rest) = split_keyword(&instruction);
        let (keyword, rest) = if keyword == "ONBUILD" {
            split_keyword(rest)
        } else {
            (keyword, rest)
        };
        match keyword.as_str() {
            "ARG" if !seen_from => {
                for declaration in rest.split_whitespace() {
                    let (name, value) = declaration.split_once('=').unwrap_or((declaration, ""));
                    let value = unquoted(value);
                    let value = expand(value, &global_args);
                    global_args.insert(name.to_string(), value);
                }
            }
            "FROM" => {
                seen_from = true;
                let image = rest
                    .split_whitespace()
                    .find(|word| !word.starts_with("--"))
                    .unwrap_or_default();
                if names_a_registry(&expand(image, &global_args)) {
                    return Err(refuse(
                        "names an image on a registry host; builds use only the images this platform provides",
                    ));
                }
            }
            "ADD" | "COPY" => {
                let (flags, sources) = flags_and_sources(rest);
                for flag in flags {
                    if let Some(from) = flag.strip_prefix("--from=")
                        && (from.contains('$') || names_a_registry(from))
                    {
                        return Err(refuse(
                            "copies from an image on a registry host; use a build stage or a platform image",
                        ));
                    }
                }
                if keyword == "ADD" && sources.iter().any(|source| remote_source(source)) {
                    return Err(refuse(
                        "fetches a URL, a git repository or a variable source; builds have no network",
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The `# escape=` parser directive, if the file starts with one (default `\`).
fn escape_character(text: &str) -> char {
    for line in text.lines() {
        let Some(comment) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = comment.split_once('=') else {
            break;
        };
        if key.trim().eq_ignore_ascii_case("escape") && value.trim() == "`" {
            return '`';
        }
    }
    '\\'
}

/// Instructions with their first line number, continuation lines joined.
fn instructions(text: &str, escape: char) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        // Comment lines are dropped, even in the middle of a continued instruction.
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_none()) {
            continue;
        }
        let (body, continues) = match trimmed.strip_suffix(escape) {
            Some(body) => (body, true),
            None => (trimmed, false),
        };
        let entry = current.get_or_insert_with(|| (index + 1, String::new()));
        if !entry.1.is_empty() {
            entry.1.push(' ');
        }
        entry.1.push_str(body);
        if !continues && let Some(done) = current.take() {
            out.push(done);
        }
    }
    out.extend(current);
    out
}

fn split_keyword(instruction: &str) -> (String, &str) {
    let instruction = instruction.trim_start();
    let end = instruction
        .find(char::is_whitespace)
        .unwrap_or(instruction.len());
    (
        instruction[..end].to_ascii_uppercase(),
        instruction[end..].trim(),
    )
}

/// `--flag`s, then every argument but the destination (JSON or shell form).
fn flags_and_sources(rest: &str) -> (Vec<String>, Vec<String>) {
    let mut words: Vec<String> = Vec::new();
    let mut flags = Vec::new();
    let mut remaining = rest.trim();
    while let Some(flag) = remaining.strip_prefix("--") {
        let end = flag.find(char::is_whitespace).unwrap_or(flag.len());
        flags.push(format!("--{}", &flag[..end]));
        remaining = flag[end..].trim_start();
    }
    if remaining.starts_with('[')
        && let Ok(list) = serde_json::from_str::<Vec<String>>(remaining)
    {
        words = list;
    } else {
        words.extend(remaining.split_whitespace().map(str::to_string));
    }
    words.pop();
    (flags, words)
}

fn remote_source(source: &str) -> bool {
    let lower = source.to_ascii_lowercase();
    lower.contains("://") || lower.starts_with("git@") || source.contains('$')
}

/// Whether an image reference names a registry host (`host:port/x`, `a.b/x`,
/// `localhost/x`): the engine would connect there itself.
fn names_a_registry(image: &str) -> bool {
    let image = unquoted(image);
    match image.split_once('/') {
        Some((first, _)) => {
            first.contains(['.', ':', '$', '[']) || first.eq_ignore_ascii_case("localhost")
        }
        None => image.contains('$'),
    }
}

fn unquoted(value: &str) -> &str {
    let value = value.trim();
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value)
}

/// Expands `$NAME`, `${NAME}`, `${NAME:-word}` and `${NAME:+word}` from `args`; unknown
/// names expand to nothing, as in the engine.
fn expand(text: &str, args: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(braced) = after.strip_prefix('{') {
            let Some(end) = braced.find('}') else {
                // Unbalanced: keep the `$` so the caller still sees a variable.
                out.push_str(&rest[at..]);
                return out;
            };
            let inner = &braced[..end];
            let value = if let Some((name, word)) = inner.split_once(":-") {
                args.get(name)
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .unwrap_or_else(|| word.to_string())
            } else if let Some((name, word)) = inner.split_once(":+") {
                if args.get(name).is_some_and(|v| !v.is_empty()) {
                    word.to_string()
                } else {
                    String::new()
                }
            } else {
                args.get(inner).cloned().unwrap_or_default()
            };
            out.push_str(&value);
            rest = &braced[end + 1..];
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if end == 0 {
                out.push('$');
            } else {
                out.push_str(args.get(&after[..end]).map_or("", String::as_str));
            }
            rest = &after[end..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> RemoteFetch {
        check(text).expect_err(text)
    }

    #[test]
    fn ordinary_dockerfiles_pass() {
        for text in [
            "FROM instanode/python:3-bookworm\nCOPY . /app\nADD app.tar.gz /srv/\nCMD [\"python\", \"app.py\"]\n",
            "ARG VERSION=3.12\nFROM python:${VERSION}-slim AS build\nRUN make\nFROM scratch\nCOPY --from=build /out /\n",
            "FROM busybox\nADD [\"a b.txt\", \"/data/\"]\nADD --chown=1:1 src/ /src/\n",
            "# syntax comment\nFROM busybox\nRUN echo http://example.com \\\n  && true\n",
            "FROM library/python\n",
        ] {
            assert_eq!(check(text), Ok(()), "{text}");
        }
    }

    #[test]
    fn add_of_a_url_or_repository_is_refused() {
        for (text, line) in [
            ("FROM busybox\nADD http://127.0.0.1:8222/connz /x\n", 2),
            ("FROM busybox\nadd HTTPS://example.com/a /a\n", 2),
            (
                "FROM busybox\nADD --chmod=644 \\\n  http://169.254.169.254/ /m\n",
                2,
            ),
            ("FROM busybox\nADD [\"http://10.0.0.1/x\", \"/x\"]\n", 2),
            ("FROM busybox\nADD git@github.com:a/b.git /b\n", 2),
            ("FROM busybox\nARG U=http://127.0.0.1/\nADD $U /x\n", 3),
            ("FROM busybox\nONBUILD ADD http://127.0.0.1/ /x\n", 2),
            (
                "# escape=`\nFROM busybox\nADD `\n http://127.0.0.1/ /x\n",
                3,
            ),
        ] {
            assert_eq!(refused(text).line, line, "{text}");
        }
    }

    #[test]
    fn images_from_registry_hosts_are_refused() {
        for text in [
            "FROM 127.0.0.1:5000/other-tenant\n",
            "FROM localhost/x\n",
            "FROM registry.internal/x:1\n",
            "FROM [::1]:5000/x\n",
            "ARG R=127.0.0.1:5000\nFROM $R/x\n",
            "ARG R=127.0.0.1:5000/x\nFROM ${R}\n",
            "FROM busybox\nCOPY --from=10.0.0.1:5000/x /a /a\n",
            "FROM busybox\nCOPY --from=$IMG /a /a\n",
        ] {
            refused(text);
        }
    }

    #[test]
    fn the_message_names_the_line_and_instruction() {
        let error = refused("FROM busybox\n\nADD http://127.0.0.1:4222/ /x\n");
        assert_eq!(error.line, 3);
        assert!(error.to_string().contains("ADD http://127.0.0.1:4222/ /x"));
    }
}
