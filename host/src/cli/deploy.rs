//! `instanode deploy DIR --name APP`: packs the folder, uploads it, follows the build log,
//! then waits until the app is healthy (exit 0, its URL) or failed (exit 1, the autopsy).

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use super::args::DeployArgs;
use super::client::{Client, Failure};
use super::output::Output;

/// Folders never worth uploading: version control and build output.
const SKIPPED: [&str; 3] = [".git", "target", "node_modules"];
const POLL: Duration = Duration::from_millis(500);

pub async fn run(client: &Client, out: &Output, options: &DeployArgs) -> Result<i32, Failure> {
    let dir = options.dir.as_path();
    let name = options
        .name
        .clone()
        .or_else(|| {
            dir.canonicalize()
                .ok()?
                .file_name()?
                .to_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "app".into());
    if !dir.join("Dockerfile").is_file() {
        out.fail_local(
            "missing_dockerfile",
            &format!("{} has no Dockerfile at its top.", dir.display()),
            "Add a Dockerfile to the folder (the app must listen on 0.0.0.0 and the port given with --port, 8080 by default).",
        );
        return Ok(1);
    }
    out.working(&format!("packing {}", dir.display()));
    let tarball = match pack(dir) {
        Ok(bytes) => bytes,
        Err(e) => {
            out.fail_local(
                "unreadable_folder",
                &format!("cannot pack {}: {e}", dir.display()),
                "Check the folder exists and is readable.",
            );
            return Ok(1);
        }
    };
    out.progress(&format!(
        "packed {} ({} KiB gzipped)",
        dir.display(),
        tarball.len().div_ceil(1024)
    ));

    let mut fields = vec![("name".to_string(), name.clone())];
    if let Some(port) = options.port {
        fields.push(("port".into(), port.to_string()));
    }
    if !options.vars.is_empty() {
        let vars: serde_json::Map<String, Value> = options
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        fields.push(("env_vars".into(), Value::Object(vars).to_string()));
    }
    if options.redeploy {
        fields.push(("redeploy".into(), "true".into()));
    }
    let (content_type, body) = crate::wire::multipart(&fields, &[("tarball".into(), tarball)]);
    out.working("uploading");
    let accepted = client.upload("/deploy/new", &content_type, body).await?;
    let Some(id) = out.id_in(&accepted, "id") else {
        return Ok(1);
    };
    out.progress(&format!(
        "uploaded: deployment {id}, building {}",
        accepted["url"].as_str().unwrap_or_default()
    ));
    out.working("building");

    // The build log as it runs (the stream ends after the build and the app's first lines).
    client
        .follow(&format!("/deploy/{id}/logs"), |line| {
            if line == "[end]" {
                return false;
            }
            out.log_line(line);
            true
        })
        .await?;

    let deadline = Instant::now() + Duration::from_secs(options.timeout);
    let mut last_status = String::new();
    loop {
        let item = client
            .call(Method::GET, &format!("/api/v1/deployments/{id}"), None)
            .await?["item"]
            .clone();
        let status = item["status"].as_str().unwrap_or_default().to_string();
        if status != last_status {
            out.progress(&format!("status: {status}"));
            last_status = status.clone();
        }
        match status.as_str() {
            "healthy" => {
                out.done(
                    &format!("live at {}", item["url"].as_str().unwrap_or_default()),
                    &item,
                );
                return Ok(0);
            }
            "failed" | "stopped" => {
                let events = client
                    .call(
                        Method::GET,
                        &format!("/api/v1/deployments/{id}/events"),
                        None,
                    )
                    .await?;
                out.autopsy(&item, &events);
                return Ok(1);
            }
            _ if Instant::now() > deadline => {
                out.fail_local(
                    "deploy_timeout",
                    &format!(
                        "deployment {id} was still `{status}` after {} s",
                        options.timeout
                    ),
                    &format!(
                        "Check it later with GET /api/v1/deployments/{id}, or raise --timeout."
                    ),
                );
                return Ok(1);
            }
            _ => tokio::time::sleep(POLL).await,
        }
    }
}

/// A gzipped tar of the folder's contents (paths relative to it), skipping [`SKIPPED`]
/// folders; symlinks are stored as links, as the host expects them.
fn pack(dir: &Path) -> std::io::Result<Vec<u8>> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut archive = tar::Builder::new(encoder);
    archive.follow_symlinks(false);
    add_folder(&mut archive, dir, Path::new(""))?;
    archive.into_inner()?.finish()
}

fn add_folder<W: std::io::Write>(
    archive: &mut tar::Builder<W>,
    root: &Path,
    relative: &Path,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(root.join(relative))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name();
        if SKIPPED.iter().any(|s| name == *s) {
            continue;
        }
        let path = relative.join(&name);
        if entry.file_type()?.is_dir() {
            add_folder(archive, root, &path)?;
        } else {
            archive.append_path_with_name(root.join(&path), &path)?;
        }
    }
    Ok(())
}
