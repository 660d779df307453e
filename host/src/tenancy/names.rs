//! Parsed request fields: a value of these types has passed validation.

use std::fmt;

/// A resource's human label: 1..=64 characters matching `^[A-Za-z0-9][A-Za-z0-9 _-]*$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceName(String);

/// Why a name was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum NameError {
    Missing,
    Invalid,
}

impl ResourceName {
    pub fn parse(value: &str) -> Result<Self, NameError> {
        if value.is_empty() {
            return Err(NameError::Missing);
        }
        let mut chars = value.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '-'));
        if first_ok && rest_ok && value.len() <= 64 {
            Ok(Self(value.to_string()))
        } else {
            Err(NameError::Invalid)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A deployment environment label: `^[a-z0-9-]{1,32}$`, `development` by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvName(String);

impl EnvName {
    pub fn parse(value: &str) -> Option<Self> {
        let ok = (1..=32).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        ok.then(|| Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for EnvName {
    fn default() -> Self {
        Self("development".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        for ok in ["prod-db", "a", "My App DB", "x_1-2", &"a".repeat(64)] {
            assert!(ResourceName::parse(ok).is_ok(), "{ok:?}");
        }
        assert_eq!(ResourceName::parse(""), Err(NameError::Missing));
        for bad in [
            "-db",
            " db",
            "db!",
            "d\u{e9}j\u{e0}",
            "a\nb",
            "a'; DROP",
            &"a".repeat(65),
        ] {
            assert_eq!(ResourceName::parse(bad), Err(NameError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn envs_follow_the_rule() {
        assert!(EnvName::parse("production").is_some());
        assert!(EnvName::parse("Prod").is_none());
        assert!(EnvName::parse("").is_none());
        assert!(EnvName::parse(&"a".repeat(33)).is_none());
    }
}
