//! The dashboard's static files (its stylesheet and icon), each under a name that carries
//! its hash, so browsers may keep them for good and a change gets a new name.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::views::style::{ICON, STYLESHEET};
use crate::api::error::ApiError;

/// Where every asset is served under.
pub const ASSETS_PREFIX: &str = "/dashboard/assets/";

/// One file: where it is served, what it is, its bytes.
struct Asset {
    path: String,
    content_type: &'static str,
    body: &'static str,
}

impl Asset {
    /// `stem-<first 12 hex of its SHA-256>.extension` under `/dashboard/assets/`.
    fn new(stem: &str, extension: &str, content_type: &'static str, body: &'static str) -> Self {
        let digest = hex::encode(Sha256::digest(body.as_bytes()));
        Self {
            path: format!("{ASSETS_PREFIX}{stem}-{}.{extension}", &digest[..12]),
            content_type,
            body,
        }
    }
}

static STYLESHEET_ASSET: LazyLock<Asset> =
    LazyLock::new(|| Asset::new("app", "css", "text/css; charset=utf-8", STYLESHEET));
static ICON_ASSET: LazyLock<Asset> =
    LazyLock::new(|| Asset::new("icon", "svg", "image/svg+xml", ICON));

/// Where the stylesheet is served.
pub fn stylesheet_path() -> &'static str {
    &STYLESHEET_ASSET.path
}

/// Where the icon is served.
pub fn icon_path() -> &'static str {
    &ICON_ASSET.path
}

#[utoipa::path(get, path = "/dashboard/assets/{file}", tag = "dashboard",
    operation_id = "dashboardAsset",
    summary = "The dashboard's stylesheet and icon (their names carry their hash)",
    responses(
        (status = 200, description = "The file.", body = String, content_type = "text/css"),
        (status = 404, description = "No such asset (an old hash, or another name).", body = crate::api::schema::ErrorBody),
    ))]
pub async fn serve(Path(file): Path<String>) -> Response {
    let wanted = format!("{ASSETS_PREFIX}{file}");
    let Some(asset) = [&*STYLESHEET_ASSET, &*ICON_ASSET]
        .into_iter()
        .find(|asset| asset.path == wanted)
    else {
        return ApiError::not_found("Asset").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        asset.body,
    )
        .into_response()
}
