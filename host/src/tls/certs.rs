//! The certificates this replica serves, picked by the name a client asks for (SNI).
//!
//! They live in the metadata database, so every replica serves the same ones; this is the
//! in-memory copy the handshake reads, replaced whole when anything changed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::store::{HeldCertificate, Sealer, Store};

/// What sealed private keys are bound to, so a sealed key cannot pass for another secret.
pub const KEY_AAD: &[u8] = b"tls-private-key";

#[derive(Debug)]
pub struct CertStore {
    provider: Arc<CryptoProvider>,
    /// By lowercase name: `app.apps.example.com`, or `*.apps.example.com` for a wildcard.
    by_name: RwLock<HashMap<String, Arc<CertifiedKey>>>,
    /// Served when no certificate names the host asked for (the operator's own, if any).
    fallback: Option<Arc<CertifiedKey>>,
}

impl CertStore {
    pub fn new(provider: Arc<CryptoProvider>, fallback: Option<Arc<CertifiedKey>>) -> Self {
        Self {
            provider,
            by_name: RwLock::default(),
            fallback,
        }
    }

    /// Replaces what is served with every valid certificate in the metadata database.
    pub async fn reload(&self, store: &Store, sealer: &Sealer) -> anyhow::Result<usize> {
        let held = store.held_certificates().await?;
        let mut by_name = HashMap::with_capacity(held.len());
        for certificate in held {
            match self.certified_key(&certificate, sealer) {
                Ok(key) => {
                    by_name.insert(certificate.name.to_ascii_lowercase(), Arc::new(key));
                }
                // One bad row must not take every other name down with it.
                Err(e) => {
                    tracing::warn!(name = %certificate.name, error = %format!("{e:#}"), "cannot serve a stored certificate")
                }
            }
        }
        let count = by_name.len();
        *self.by_name.write().expect("certificate map poisoned") = by_name;
        Ok(count)
    }

    fn certified_key(
        &self,
        certificate: &HeldCertificate,
        sealer: &Sealer,
    ) -> anyhow::Result<CertifiedKey> {
        let key_pem = sealer.open(&certificate.key_sealed, KEY_AAD)?;
        certified_key(&self.provider, certificate.chain_pem.as_bytes(), &key_pem)
    }

    /// The certificate for `name`: its own, else a wildcard one level up.
    pub fn find(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let by_name = self.by_name.read().expect("certificate map poisoned");
        if let Some(key) = by_name.get(&name) {
            return Some(key.clone());
        }
        let (_, parent) = name.split_once('.')?;
        by_name.get(&format!("*.{parent}")).cloned()
    }

    /// Whether a certificate for `name` is served (the operator's fallback aside).
    pub fn serves(&self, name: &str) -> bool {
        self.find(name).is_some()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        hello
            .server_name()
            .and_then(|name| self.find(name))
            .or_else(|| self.fallback.clone())
    }
}

/// A chain and its key, both PEM, as rustls serves them.
pub fn certified_key(
    provider: &CryptoProvider,
    chain_pem: &[u8],
    key_pem: &[u8],
) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .context("the certificate chain is not PEM")?;
    anyhow::ensure!(!chain.is_empty(), "the certificate chain is empty");
    let key = PrivateKeyDer::from_pem_slice(key_pem).context("the private key is not PEM")?;
    CertifiedKey::from_der(chain, key, provider).context("the key does not fit the certificate")
}
