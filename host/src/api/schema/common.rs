//! Pieces every answer shares: the `ok` flag and the error envelope.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// A boolean that is always one value: `ok` is `true` on every success and `false` in the
/// error envelope, so a reader can branch on it and the document can say so.
macro_rules! constant_bool {
    ($name:ident, $value:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name;

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bool($value)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                match bool::deserialize(deserializer)? {
                    $value => Ok($name),
                    other => Err(serde::de::Error::custom(format!(
                        "expected {}, found {other}",
                        $value
                    ))),
                }
            }
        }

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .enum_values(Some([$value]))
                    .into()
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

constant_bool!(True, true, "Always `true`: the request succeeded.");
constant_bool!(
    False,
    false,
    "Always `false`: the request was refused or failed."
);

/// The error envelope. Stable `error` codes include invalid_name, invalid_body,
/// invalid_query, unsupported_media_type, payload_too_large, not_found, method_not_allowed,
/// rate_limited, provision_limit_reached, resource_count_limit_exceeded,
/// invalid_resource_token, nothing_to_claim, upgrade_token_claimed, resource_not_found,
/// resource_deleted, invalid_token, unauthorized, provider_failed, provider_unavailable,
/// provider_busy, metadata_unavailable, deployment_limit_reached, tarball_too_large,
/// dockerfile_remote_source, event_expired, invalid_form, admin_disabled and the provider
/// refusals (invalid_component, wrong_world, unsupported_contract_version,
/// capability_not_granted, describe_failed, kind_mismatch, provider_not_found,
/// no_previous_version, provider_not_loaded).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub ok: False,
    /// A stable, machine-readable code.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
    /// Quote it when reporting a problem.
    pub request_id: String,
    /// How long to wait before retrying (also the `Retry-After` header).
    pub retry_after_seconds: Option<u64>,
    /// What an agent should do next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub agent_action: Option<String>,
    /// Fields some refusals add: the `claim_url` or `limit` of a cap, a deleted resource's
    /// `ended_at`, the `service` of a stack an upload was refused for.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ErrorBody {
    /// The envelope's own field names, which an extra field never replaces.
    pub const FIELDS: [&'static str; 6] = [
        "ok",
        "error",
        "message",
        "request_id",
        "retry_after_seconds",
        "agent_action",
    ];
}
