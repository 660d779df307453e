//! Sealing secrets at rest with AES-256-GCM.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use anyhow::{Context, anyhow};

const NONCE_LEN: usize = 12;

/// Seals and opens byte strings. Each sealed value is `nonce || ciphertext`, bound to an
/// `aad` (the resource id) so a sealed blob cannot be moved to another row.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl Sealer {
    /// A sealer from 64 hex characters.
    pub fn from_hex(key: &str) -> anyhow::Result<Self> {
        let bytes = hex::decode(key).context("seal key is not hexadecimal")?;
        anyhow::ensure!(bytes.len() == 32, "seal key must be 32 bytes");
        Ok(Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
        })
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> anyhow::Result<Vec<u8>> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| anyhow!("sealing failed"))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> anyhow::Result<Vec<u8>> {
        anyhow::ensure!(sealed.len() > NONCE_LEN, "sealed value is too short");
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| anyhow!("sealed value does not open with this key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn round_trip_and_binding() {
        let sealer = Sealer::from_hex(KEY).unwrap();
        let sealed = sealer.seal(b"postgres://u:secret@h/db", b"row-1").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            sealer.open(&sealed, b"row-1").unwrap(),
            b"postgres://u:secret@h/db"
        );
        assert!(sealer.open(&sealed, b"row-2").is_err(), "aad binds the row");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer.open(&tampered, b"row-1").is_err());
    }
}
