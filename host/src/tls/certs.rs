//! The certificates this replica serves, picked by the name a client asks for (SNI).
//!
//! They live in the metadata database, so every replica serves the same ones; this is the
//! in-memory copy the handshake reads, replaced whole when anything changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use chrono::{DateTime, Utc};
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
    /// What the database held at the last load: unchanged, nothing is unsealed again.
    loaded: Mutex<Option<(i64, Option<DateTime<Utc>>)>>,
}

impl CertStore {
    pub fn new(provider: Arc<CryptoProvider>, fallback: Option<Arc<CertifiedKey>>) -> Self {
        Self {
            provider,
            by_name: RwLock::default(),
            fallback,
            loaded: Mutex::default(),
        }
    }

    /// The crypto provider certificates are loaded with, for the listener to use too.
    pub fn provider(&self) -> Arc<CryptoProvider> {
        self.provider.clone()
    }

    /// Replaces what is served with every valid certificate in the metadata database, if
    /// anything changed there since the last load.
    pub async fn reload(&self, store: &Store, sealer: &Sealer) -> anyhow::Result<()> {
        let version = store.certificates_version().await?;
        if *self.loaded.lock().expect("version poisoned") == Some(version) {
            return Ok(());
        }
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
        *self.by_name.write().expect("certificate map poisoned") = by_name;
        *self.loaded.lock().expect("version poisoned") = Some(version);
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(names: &[&str]) -> Arc<CertifiedKey> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let generated = rcgen::generate_simple_self_signed(names).unwrap();
        let provider = rustls::crypto::ring::default_provider();
        Arc::new(
            certified_key(
                &provider,
                generated.cert.pem().as_bytes(),
                generated.signing_key.serialize_pem().as_bytes(),
            )
            .unwrap(),
        )
    }

    #[test]
    fn a_wildcard_covers_one_label_and_an_own_certificate_wins() {
        let store = CertStore::new(Arc::new(rustls::crypto::ring::default_provider()), None);
        let wildcard = self_signed(&["*.apps.test"]);
        let own = self_signed(&["shop.apps.test"]);
        store.by_name.write().unwrap().extend([
            ("*.apps.test".to_string(), wildcard.clone()),
            ("shop.apps.test".to_string(), own.clone()),
        ]);
        let found = |name: &str| store.find(name).map(|key| key.cert[0].clone());
        assert_eq!(found("a.apps.test"), Some(wildcard.cert[0].clone()));
        assert_eq!(found("A.Apps.Test."), Some(wildcard.cert[0].clone()));
        assert_eq!(found("shop.apps.test"), Some(own.cert[0].clone()));
        assert_eq!(found("a.b.apps.test"), None, "one label only");
        assert_eq!(found("apps.test"), None);
        assert_eq!(found("a.apps.test.evil"), None);
    }

    #[test]
    fn a_key_that_does_not_fit_its_certificate_is_refused() {
        let one = rcgen::generate_simple_self_signed(vec!["a.test".into()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["a.test".into()]).unwrap();
        let provider = rustls::crypto::ring::default_provider();
        assert!(
            certified_key(
                &provider,
                one.cert.pem().as_bytes(),
                other.signing_key.serialize_pem().as_bytes()
            )
            .is_err()
        );
    }
}
