//! `s3`: objects in the S3 bucket bound to a provider. The host holds the only key; what a
//! tenant gets are URLs presigned (SigV4) for one object, one method and a short time.
//! Works against any S3-compatible server (path-style URLs).

use std::time::Duration;

use anyhow::Context;
use rusty_s3::actions::{ListObjectsV2, ListObjectsV2Response};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use super::{HostState, cap_error};
use crate::config::S3Binding;
use crate::contract::instanode::provider::s3::{Host, Object, Page};
use crate::contract::instanode::provider::types::CapabilityError;
pub use crate::contract::types::ObjectMethod;

/// The longest a presigned URL may live.
pub const MAX_PRESIGN: Duration = Duration::from_secs(3600);
/// How long a listing or delete URL used by the host itself stays valid.
const INTERNAL_URL_LIFETIME: Duration = Duration::from_secs(60);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl ObjectMethod {
    /// The HTTP method a presigned URL allows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Put => "PUT",
            Self::Head => "HEAD",
            Self::Delete => "DELETE",
        }
    }
}

/// One bucket on one S3 server, with the host's key.
pub struct S3Backend {
    /// Reached by the host: listing and deleting.
    bucket: Bucket,
    /// Named in the URLs tenants get.
    public_bucket: Bucket,
    credentials: Credentials,
    http: reqwest::Client,
}

impl S3Backend {
    pub fn new(binding: &S3Binding) -> anyhow::Result<Self> {
        let bucket_at = |endpoint: &str| -> anyhow::Result<Bucket> {
            let url = endpoint.parse().context("s3 endpoint is not a URL")?;
            Bucket::new(
                url,
                UrlStyle::Path,
                binding.bucket.clone(),
                binding.region.clone(),
            )
            .context("s3 bucket settings")
        };
        Ok(Self {
            bucket: bucket_at(&binding.endpoint)?,
            public_bucket: bucket_at(
                binding
                    .public_endpoint
                    .as_deref()
                    .unwrap_or(&binding.endpoint),
            )?,
            credentials: Credentials::new(binding.access_key.expose(), binding.secret_key.expose()),
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()?,
        })
    }

    /// A URL allowing `method` on `key` for `expires_in` (at most an hour).
    pub fn presign(&self, method: ObjectMethod, key: &str, expires_in: Duration) -> String {
        let expires_in = expires_in.min(MAX_PRESIGN);
        self.sign(&self.public_bucket, method, key, expires_in)
    }

    fn sign(
        &self,
        bucket: &Bucket,
        method: ObjectMethod,
        key: &str,
        expires_in: Duration,
    ) -> String {
        let credentials = Some(&self.credentials);
        let url = match method {
            ObjectMethod::Get => bucket.get_object(credentials, key).sign(expires_in),
            ObjectMethod::Put => bucket.put_object(credentials, key).sign(expires_in),
            ObjectMethod::Head => bucket.head_object(credentials, key).sign(expires_in),
            ObjectMethod::Delete => bucket.delete_object(credentials, key).sign(expires_in),
        };
        url.to_string()
    }

    /// Up to 1000 objects under `prefix`, after the key `after`.
    pub async fn list(&self, prefix: &str, after: Option<&str>) -> Result<Page, CapabilityError> {
        let mut action = self.bucket.list_objects_v2(Some(&self.credentials));
        action.with_prefix(prefix);
        action.with_max_keys(1000);
        if let Some(after) = after {
            action.with_start_after(after);
        }
        let url = action.sign(INTERNAL_URL_LIFETIME);
        let response = self.http.get(url).send().await.map_err(http_error)?;
        let body = checked(response).await?;
        let parsed: ListObjectsV2Response = ListObjectsV2::parse_response(&body)
            .map_err(|e| cap_error("internal", format!("unreadable listing: {e}")))?;
        let objects: Vec<Object> = parsed
            .contents
            .into_iter()
            // Keys are URL-decoded by the client whether or not the server encoded them;
            // never act on one that decodes outside the prefix asked for.
            .filter(|o| {
                o.key.starts_with(prefix)
                    && !o
                        .key
                        .split('/')
                        .any(|segment| segment == ".." || segment == ".")
            })
            .map(|o| Object {
                key: o.key,
                size: o.size.unwrap_or(0),
            })
            .collect();
        let truncated = parsed.next_continuation_token.is_some() || objects.len() >= 1000;
        let next = truncated
            .then(|| objects.last().map(|o| o.key.clone()))
            .flatten();
        Ok(Page { objects, next })
    }

    /// Deletes every object under `prefix`; how many were deleted.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64, CapabilityError> {
        if prefix.is_empty() {
            return Err(cap_error("invalid", "refusing to delete the whole bucket"));
        }
        let mut deleted = 0;
        let mut previous_first: Option<String> = None;
        // Deleting shrinks the listing, so always read the first page again.
        loop {
            let page = self.list(prefix, None).await?;
            let Some(first) = page.objects.first().map(|o| o.key.clone()) else {
                return Ok(deleted);
            };
            if previous_first.as_ref() == Some(&first) {
                return Err(cap_error(
                    "internal",
                    format!("deleting {first} did not remove it; giving up on {prefix}"),
                ));
            }
            previous_first = Some(first);
            for object in page.objects {
                let url = self.sign(
                    &self.bucket,
                    ObjectMethod::Delete,
                    &object.key,
                    INTERNAL_URL_LIFETIME,
                );
                let response = self.http.delete(url).send().await.map_err(http_error)?;
                checked(response).await?;
                deleted += 1;
            }
        }
    }
}

async fn checked(response: reqwest::Response) -> Result<String, CapabilityError> {
    let status = response.status();
    let body = response.text().await.map_err(http_error)?;
    if status.is_success() {
        Ok(body)
    } else {
        let code = if status.is_server_error() {
            "unavailable".to_string()
        } else {
            format!("http-{}", status.as_u16())
        };
        Err(cap_error(&code, format!("S3 answered {status}: {body}")))
    }
}

fn http_error(e: reqwest::Error) -> CapabilityError {
    if e.is_timeout() {
        cap_error("timeout", e)
    } else {
        cap_error("unavailable", format!("S3 unreachable: {e}"))
    }
}

impl HostState {
    fn s3(&self) -> Result<&S3Backend, CapabilityError> {
        self.bindings
            .s3
            .as_ref()
            .ok_or_else(|| cap_error("not-granted", "s3 is not granted"))
    }
}

impl Host for HostState {
    async fn presign(
        &mut self,
        method: ObjectMethod,
        key: String,
        expires_in_seconds: u32,
    ) -> Result<String, CapabilityError> {
        if !(1..=3600).contains(&expires_in_seconds) {
            return Err(cap_error("invalid", "expires-in-seconds must be 1..=3600"));
        }
        Ok(self.s3()?.presign(
            method,
            &key,
            Duration::from_secs(u64::from(expires_in_seconds)),
        ))
    }

    async fn list_objects(
        &mut self,
        prefix: String,
        after: Option<String>,
    ) -> Result<Page, CapabilityError> {
        self.s3()?.list(&prefix, after.as_deref()).await
    }

    async fn delete_prefix(&mut self, prefix: String) -> Result<u64, CapabilityError> {
        self.s3()?.delete_prefix(&prefix).await
    }
}
