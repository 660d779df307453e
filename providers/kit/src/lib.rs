//! Helpers every provider component shares. Errors are plain strings; each provider maps
//! them onto its `provider-error`.

pub mod endpoint;
#[cfg(feature = "nats")]
pub mod nats_jwt;

/// The host's resource id, checked: 32 lowercase hex characters, so every backend name
/// derived from it is a safe identifier without quoting tricks.
pub fn resource_hex(resource_id: &str) -> Result<&str, String> {
    let is_hex = resource_id.len() == 32
        && resource_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if is_hex {
        Ok(resource_id)
    } else {
        Err(format!(
            "resource id must be 32 lowercase hex characters, got {resource_id:?}"
        ))
    }
}

/// `N` random bytes from the host (WASI random).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(bytes)
}

/// 32 characters from `[A-Za-z0-9]`: about 190 bits, safe in any URL without escaping.
pub fn random_password() -> Result<String, String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut password = String::new();
    while password.len() < 32 {
        // Rejection sampling keeps every character equally likely.
        password.extend(
            random_bytes::<64>()?
                .iter()
                .filter(|b| usize::from(**b) < 248)
                .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char),
        );
    }
    password.truncate(32);
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids_must_be_hex() {
        assert!(resource_hex(&"a1".repeat(16)).is_ok());
        assert!(resource_hex("A1").is_err());
        assert!(resource_hex(&"g1".repeat(16)).is_err());
        assert!(resource_hex(&format!("{}\"", "a".repeat(31))).is_err());
    }

    #[test]
    fn passwords_are_long_and_url_safe() {
        let p = random_password().unwrap();
        assert_eq!(p.len(), 32);
        assert!(p.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(p, random_password().unwrap());
    }
}
