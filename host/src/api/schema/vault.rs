//! The vault: a team's versioned secrets.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::True;

/// The body of `PUT /api/v1/vault/{env}/{key}` and its rotation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VaultValue {
    /// The secret, at most 32 KiB of text.
    pub value: String,
}

/// A stored version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VaultWritten {
    pub ok: True,
    pub env: String,
    pub key: String,
    pub version: i32,
}

/// A secret's value (each read is recorded).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VaultSecret {
    pub ok: True,
    pub env: String,
    pub key: String,
    pub value: String,
    pub version: i32,
}

/// The names in one env of the vault (never their values).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VaultNames {
    pub ok: True,
    pub env: String,
    pub keys: Vec<String>,
}
