//! The documentation agents read: `/llms.txt` and the docs pages as Markdown. They are
//! compiled into the binary and name this host's own URLs, so a self-hosted install
//! describes itself rather than some other deployment.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::app::SharedApp;

const LLMS_TXT: &str = include_str!("../../../docs/llms.txt");

/// Docs pages served under `/docs/`, by file name.
const PAGES: [(&str, &str); 3] = [
    ("providers.md", include_str!("../../../docs/providers.md")),
    ("operators.md", include_str!("../../../docs/operators.md")),
    ("llms.md", LLMS_TXT),
];

#[utoipa::path(get, path = "/llms.txt", tag = "docs", operation_id = "llmsTxt",
    summary = "What agents read first",
    responses((status = 200, description = "Markdown, served as plain text.", body = String, content_type = "text/plain")))]
pub async fn llms_txt(State(app): State<SharedApp>) -> Response {
    text(&app, LLMS_TXT, "text/plain; charset=utf-8")
}

#[utoipa::path(get, path = "/llms-full.txt", tag = "docs", operation_id = "llmsFullTxt",
    summary = "Every docs page in one document",
    responses((status = 200, description = "Markdown, served as plain text.", body = String, content_type = "text/plain")))]
pub async fn llms_full_txt(State(app): State<SharedApp>) -> Response {
    let mut full = String::from(LLMS_TXT);
    for (name, body) in PAGES.iter().filter(|(_, body)| *body != LLMS_TXT) {
        full.push_str(&format!("\n\n---\n\n<!-- /docs/{name} -->\n\n{body}"));
    }
    text(&app, &full, "text/plain; charset=utf-8")
}

#[utoipa::path(get, path = "/docs/{page}", tag = "docs", operation_id = "docsPage",
    summary = "A docs page as Markdown (providers.md, operators.md, llms.md; the .md may be left off)",
    responses((status = 200, description = "Markdown.", body = String, content_type = "text/markdown")))]
pub async fn page(State(app): State<SharedApp>, Path(name): Path<String>) -> Response {
    let wanted = name.strip_suffix(".md").unwrap_or(&name);
    match PAGES
        .iter()
        .find(|(page, _)| page.strip_suffix(".md") == Some(wanted))
    {
        Some((_, body)) => text(&app, body, "text/markdown; charset=utf-8"),
        None => ApiError::not_found(&format!("Docs page `{name}`")).into_response(),
    }
}

/// Fills in the placeholders the docs are written with.
fn text(app: &SharedApp, body: &str, content_type: &'static str) -> Response {
    let body = body
        .replace("{public_url}", &app.public_url)
        .replace("{apps_url}", &app.apps.url("*"));
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}
