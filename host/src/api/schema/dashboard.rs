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

/// A delete the person confirmed by typing the name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfirmedDeleteForm {
    /// The form token of the page the form is on.
    pub csrf: String,
    /// The name of what is deleted, typed again.
    pub confirm: String,
}

/// The form that makes an API key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyForm {
    /// The form token of the page the form is on.
    pub csrf: String,
    /// A label for the key (1-120 characters).
    pub name: String,
}
