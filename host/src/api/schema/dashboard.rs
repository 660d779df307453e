//! The dashboard's browser forms (`application/x-www-form-urlencoded`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A dashboard form that acts on something.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CsrfForm {
    /// The form token of the page the form is on.
    pub csrf: String,
}

/// The operator sign-in form.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OperatorSignInForm {
    /// The host's admin token.
    pub token: String,
}
