//! The vault's rules shared by its API and the rollouts that read it: what a name and a
//! reference look like, how values are sealed, and how an app's `vault://` references
//! become values at rollout (never before, so no plain value is ever stored with the app).

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::services::Services;
use crate::store::{VaultEvent, VaultKey};

/// The prefix of an env value that names a vault entry: `vault://KEY` (in the app's own
/// env) or `vault://<env>/KEY`.
pub const PREFIX: &str = "vault://";

/// A vault entry an env value refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub env: String,
    pub key: String,
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PREFIX}{}/{}", self.env, self.key)
    }
}

/// Whether `key` may name a vault entry: what an env var name may be, up to 128 bytes.
pub fn valid_key(key: &str) -> bool {
    (1..=128).contains(&key.len())
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The entry `value` refers to, if it is a `vault://` reference; `Err` when it is one but
/// malformed.
pub fn reference(value: &str, app_env: &str) -> Option<Result<Reference, String>> {
    let rest = value.strip_prefix(PREFIX)?;
    let (env, key) = match rest.split_once('/') {
        Some((env, key)) => (env, key),
        None => (app_env, rest),
    };
    let valid = crate::tenancy::names::EnvName::parse(env).is_some() && valid_key(key);
    Some(if valid {
        Ok(Reference {
            env: env.to_string(),
            key: key.to_string(),
        })
    } else {
        Err(format!("`{value}` is not vault://KEY or vault://<env>/KEY"))
    })
}

/// Every reference among `env_vars`' values, or the first malformed one.
pub fn references(
    env_vars: &BTreeMap<String, String>,
    app_env: &str,
) -> Result<Vec<Reference>, String> {
    env_vars
        .values()
        .filter_map(|value| reference(value, app_env))
        .collect()
}

/// The associated data a value is sealed with: it cannot be moved to another entry.
fn aad(entry: VaultKey<'_>) -> Vec<u8> {
    [
        entry.team_id.as_bytes().as_slice(),
        entry.env.as_bytes(),
        b"\0".as_slice(),
        entry.key.as_bytes(),
    ]
    .concat()
}

pub fn seal(services: &Services, entry: VaultKey<'_>, value: &str) -> anyhow::Result<Vec<u8>> {
    services.sealer.seal(value.as_bytes(), &aad(entry))
}

pub fn open(services: &Services, entry: VaultKey<'_>, sealed: &[u8]) -> anyhow::Result<String> {
    Ok(String::from_utf8(
        services.sealer.open(sealed, &aad(entry))?,
    )?)
}

/// Replaces each `vault://` value of an app's `env` with the entry's newest value, recording
/// each read. `Err` names the first reference that cannot be resolved.
pub async fn resolve(
    services: &Services,
    team_id: Option<Uuid>,
    app_env: &str,
    env: &mut [(String, String)],
    request_id: &str,
) -> Result<(), String> {
    for (name, value) in env.iter_mut() {
        let Some(reference) = reference(value, app_env) else {
            continue;
        };
        let reference = reference.map_err(|e| format!("{name}: {e}"))?;
        let team_id = team_id.ok_or_else(|| {
            format!("{name}: {reference} needs a team's app; anonymous apps have no vault")
        })?;
        let entry = VaultKey {
            team_id,
            env: &reference.env,
            key: &reference.key,
        };
        let found = services
            .store
            .read_vault(entry, None)
            .await
            .map_err(|e| format!("{name}: the vault could not be read: {e}"))?;
        let (version, sealed) =
            found.ok_or_else(|| format!("{name}: {reference} is not in the team's vault"))?;
        *value = open(services, entry, &sealed)
            .map_err(|e| format!("{name}: {reference} could not be opened: {e}"))?;
        let event = VaultEvent {
            entry,
            version: Some(version),
            actor: "rollout",
            action: "resolve",
            request_id,
            at: services.clock.now(),
        };
        if let Err(e) = services.store.record_vault_event(&event).await {
            tracing::warn!(error = %e, "cannot record a vault read");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_an_env_or_take_the_apps() {
        let at = |env: &str, key: &str| {
            Some(Ok(Reference {
                env: env.into(),
                key: key.into(),
            }))
        };
        assert_eq!(
            reference("vault://DB_PASSWORD", "production"),
            at("production", "DB_PASSWORD")
        );
        assert_eq!(
            reference("vault://staging/TOKEN", "production"),
            at("staging", "TOKEN")
        );
        assert_eq!(reference("postgres://x", "production"), None);
        for bad in [
            "vault://",
            "vault://Staging/X",
            "vault://a/b/c",
            "vault://1ABC",
        ] {
            assert!(
                matches!(reference(bad, "production"), Some(Err(_))),
                "{bad}"
            );
        }
    }
}
