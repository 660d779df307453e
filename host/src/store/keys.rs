//! The host's own signing keys: generated on first use, kept sealed in the metadata
//! database, so every replica signs with the same keys and none ever leaves the host.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use nkeys::{KeyPair, KeyPairType};
use sqlx::PgPool;

use super::Sealer;

/// The keys the host knows how to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostKey {
    /// Signs NATS account JWTs; every NATS server the host drives trusts it.
    NatsOperator,
    /// The NATS system account, whose users the host connects as.
    NatsSystem,
}

impl HostKey {
    pub fn name(self) -> &'static str {
        match self {
            Self::NatsOperator => "nats-operator",
            Self::NatsSystem => "nats-system",
        }
    }

    fn key_type(self) -> KeyPairType {
        match self {
            Self::NatsOperator => KeyPairType::Operator,
            Self::NatsSystem => KeyPairType::Account,
        }
    }
}

impl FromStr for HostKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::NatsOperator, Self::NatsSystem]
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("`{s}` is not a host key (known: nats-operator, nats-system)"))
    }
}

impl fmt::Display for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Loads (or creates) host keys and keeps them in memory once opened.
pub struct KeyRing {
    pool: PgPool,
    sealer: Sealer,
    open: Mutex<HashMap<HostKey, Arc<KeyPair>>>,
}

impl KeyRing {
    pub(super) fn new(pool: PgPool, sealer: Sealer) -> Self {
        Self {
            pool,
            sealer,
            open: Mutex::default(),
        }
    }

    /// The key pair, created and stored on first use. Replicas racing to create it agree
    /// on the first one stored.
    pub async fn get(&self, key: HostKey) -> anyhow::Result<Arc<KeyPair>> {
        if let Some(pair) = self.open.lock().expect("key ring lock").get(&key) {
            return Ok(pair.clone());
        }
        let aad = format!("host_key:{key}");
        let fresh = KeyPair::new(key.key_type());
        let seed = fresh.seed().context("a new key has a seed")?;
        sqlx::query(
            "INSERT INTO host_keys (name, public_key, sealed_seed) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(key.name())
        .bind(fresh.public_key())
        .bind(self.sealer.seal(seed.as_bytes(), aad.as_bytes())?)
        .execute(&self.pool)
        .await
        .with_context(|| format!("cannot store host key {key}"))?;
        let sealed: Vec<u8> =
            sqlx::query_scalar("SELECT sealed_seed FROM host_keys WHERE name = $1")
                .bind(key.name())
                .fetch_one(&self.pool)
                .await
                .with_context(|| format!("cannot read host key {key}"))?;
        let seed = self
            .sealer
            .open(&sealed, aad.as_bytes())
            .with_context(|| format!("host key {key} does not open with this seal key"))?;
        let pair = Arc::new(KeyPair::from_seed(
            std::str::from_utf8(&seed).context("host key seed is not text")?,
        )?);
        self.open
            .lock()
            .expect("key ring lock")
            .insert(key, pair.clone());
        Ok(pair)
    }
}
