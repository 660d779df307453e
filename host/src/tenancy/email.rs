//! Email addresses people type: accepted only when mail can really reach them.

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("the address is longer than 254 characters")]
    TooLong,
    #[error("the address is not of the form name@example.com")]
    Malformed,
}

/// The address in `input` (`a@b.example`, or `Name <a@b.example>`), lowercased.
///
/// The accepted form is RFC 5322's dot-atom `addr-spec` with a dotted domain of DNS
/// labels: what real mailboxes use. Quoted local parts, comments, IP-literal domains and
/// addresses with inner whitespace are refused.
pub fn parse(input: &str) -> Result<String, EmailError> {
    let input = input.trim();
    let address = match (input.rfind('<'), input.strip_suffix('>')) {
        (Some(open), Some(inner)) => &inner[open + 1..],
        _ => input,
    };
    if address.len() > 254 {
        return Err(EmailError::TooLong);
    }
    let (local, domain) = address.rsplit_once('@').ok_or(EmailError::Malformed)?;
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let local_ok = (1..=64).contains(&local.len())
        && local
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(atext));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()));
    if local_ok && domain_ok {
        Ok(address.to_ascii_lowercase())
    } else {
        Err(EmailError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_addresses_pass_and_are_lowercased() {
        assert_eq!(parse("Ada@Example.COM").unwrap(), "ada@example.com");
        assert_eq!(
            parse("Ada Lovelace <ada.l+x@mail.example.org>").unwrap(),
            "ada.l+x@mail.example.org"
        );
        assert_eq!(
            parse("  ops@a-b.example.io ").unwrap(),
            "ops@a-b.example.io"
        );
    }

    #[test]
    fn everything_else_is_refused() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "ada@",
            "ada@localhost",
            "ada@example",
            "ada @example.com",
            "ada@exa mple.com",
            "a..b@example.com",
            ".a@example.com",
            "a.@example.com",
            "ada@-x.example.com",
            "ada@example.123",
            "ada@[127.0.0.1]",
            "\"a b\"@example.com",
            "ada@@example.com",
            "ada@example..com",
        ] {
            assert_eq!(parse(bad), Err(EmailError::Malformed), "{bad:?}");
        }
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(190));
        assert_eq!(parse(&long), Err(EmailError::TooLong));
    }
}
