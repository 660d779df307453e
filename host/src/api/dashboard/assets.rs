//! The dashboard's stylesheet, under a name that changes whenever it does, so browsers may
//! keep it for good.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::views::layout::STYLESHEET_PATH;
use super::views::style::STYLESHEET;
use crate::api::error::ApiError;

#[utoipa::path(get, path = "/dashboard/assets/{file}", tag = "dashboard",
    operation_id = "dashboardAsset",
    summary = "The dashboard's stylesheet (its name carries its hash)",
    responses(
        (status = 200, description = "The stylesheet.", body = String, content_type = "text/css"),
        (status = 404, description = "No such asset (an old hash, or another name).", body = crate::api::schema::ErrorBody),
    ))]
pub async fn serve(Path(file): Path<String>) -> Response {
    if STYLESHEET_PATH.rsplit('/').next() != Some(file.as_str()) {
        return ApiError::not_found("Asset").into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        STYLESHEET,
    )
        .into_response()
}
