//! Reading what the host mailed: the SMTP sink `scripts/test` runs keeps every message in
//! a Maildir (`INSTANODE_TEST_MAILDIR`).

use std::time::{Duration, Instant};

/// The path and query of the sign-in or claim link in the newest message to `to` (e.g.
/// `/auth/email/callback?t=...`), waiting up to 10 s for it to arrive.
pub async fn link_sent_to(to: &str) -> String {
    link_to(to, "/auth/email/callback?t=").await
}

/// The path and query of the link starting with `path` in the newest message to `to`,
/// waiting up to 10 s for it to arrive.
pub async fn link_to(to: &str, path: &str) -> String {
    let dir = std::path::PathBuf::from(super::env("INSTANODE_TEST_MAILDIR")).join("new");
    let started = Instant::now();
    loop {
        let mut found: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let text = std::fs::read_to_string(entry.path()).ok()?;
                let modified = entry.metadata().ok()?.modified().ok()?;
                let addressed = text
                    .lines()
                    .any(|l| l.to_ascii_lowercase().starts_with("to:") && l.contains(to));
                addressed.then_some((modified, text))
            })
            .collect();
        found.sort_by_key(|(at, _)| *at);
        if let Some((_, text)) = found.last() {
            // Undo quoted-printable soft breaks and `=3D` in case the body was encoded.
            let body = text
                .replace("=\r\n", "")
                .replace("=\n", "")
                .replace("=3D", "=");
            let start = body.find(path).expect("a link in the message");
            let link: String = body[start..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            return link;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no message to {to} in {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
