//! `POST /storage/{token}/presign`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::True;

/// What a presigned URL may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum PresignOperation {
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "HEAD")]
    Head,
}

/// The body of `POST /storage/{token}/presign`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PresignRequest {
    pub operation: PresignOperation,
    /// The object key under the resource's prefix.
    pub key: String,
    /// Seconds the URL works (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 1, maximum = 3600)]
    pub expires_in: Option<u64>,
}

/// A presigned URL for one object.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Presigned {
    pub ok: True,
    pub url: String,
    pub method: String,
    /// The key as asked for.
    pub key: String,
    /// The full S3 key, under the resource's prefix.
    pub object_key: String,
    pub expires_at: String,
}
