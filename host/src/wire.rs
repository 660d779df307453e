//! Building calls of the REST API, shared by the two clients inside the binary: the MCP
//! server (which calls the host's own routes) and the CLI.

/// A token or id about to be placed in a path: plain characters only, so it names one
/// resource and can never reach another route (`..`, `/`, `?`, `%`).
pub fn plain_segment(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 512
        && !value.starts_with('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Encodes plain `fields` and `files` (name, gzipped tarball bytes); returns the
/// `Content-Type` value (with its boundary) and the body.
pub fn multipart(fields: &[(String, String)], files: &[(String, Vec<u8>)]) -> (String, Vec<u8>) {
    let boundary = format!("instanode-{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (name, bytes) in files {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.tar.gz\"\r\nContent-Type: application/gzip\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_cannot_leave_their_route() {
        assert!(plain_segment("abc-DEF_1.2"));
        for bad in [
            "",
            "..",
            "../admin/providers",
            "a/b",
            "a?b",
            "a%2Fb",
            ".hidden",
        ] {
            assert!(!plain_segment(bad), "{bad}");
        }
    }
}
