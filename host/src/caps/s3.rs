//! `s3`: objects in the S3 bucket bound to a provider. The host holds the only key; what a
//! tenant gets are URLs presigned (SigV4) for one object, one method and a short time.
//! Works against any S3-compatible server (path-style URLs), through the AWS SDK.

mod transport;

use std::time::Duration;

use anyhow::Context;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use super::{HostState, cap_error};
use crate::config::S3Binding;
use crate::contract::instanode::provider::s3::{Host, Object, Page};
use crate::contract::instanode::provider::types::CapabilityError;
pub use crate::contract::types::ObjectMethod;
use transport::ReqwestTransport;

/// The longest a presigned URL may live.
pub const MAX_PRESIGN: Duration = Duration::from_secs(3600);
/// The most keys one listing answers and one batch delete takes (S3's own limit for both).
const PAGE_SIZE: usize = 1000;
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
    bucket: String,
    /// Reached by the host: listing and deleting.
    client: aws_sdk_s3::Client,
    /// Named in the URLs tenants get.
    public_client: aws_sdk_s3::Client,
}

impl S3Backend {
    pub fn new(binding: &S3Binding) -> anyhow::Result<Self> {
        let public_endpoint = binding
            .public_endpoint
            .as_deref()
            .unwrap_or(&binding.endpoint);
        // The SDK reads its endpoint only when it first signs or sends: refuse a bad one now.
        for endpoint in [&binding.endpoint, public_endpoint] {
            url::Url::parse(endpoint).context("s3 endpoint is not a URL")?;
        }
        let timeouts = TimeoutConfig::builder()
            .operation_timeout(REQUEST_TIMEOUT)
            .build();
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(ReqwestTransport::new(&timeouts)?)
            .timeout_config(timeouts)
            // One attempt: the meter and the reaper come back on their own schedule, and
            // a provider's caller sees a failure within the timeout.
            .retry_config(RetryConfig::disabled())
            .credentials_provider(Credentials::new(
                binding.access_key.expose(),
                binding.secret_key.expose(),
                None,
                None,
                "instanode-config",
            ))
            .region(Region::new(binding.region.clone()))
            .force_path_style(true)
            .endpoint_url(&binding.endpoint);
        let public_config = config.clone().endpoint_url(public_endpoint);
        Ok(Self {
            bucket: binding.bucket.clone(),
            client: aws_sdk_s3::Client::from_conf(config.build()),
            public_client: aws_sdk_s3::Client::from_conf(public_config.build()),
        })
    }

    /// A URL allowing `method` on `key` for `expires_in` (at most an hour).
    pub async fn presign(
        &self,
        method: ObjectMethod,
        key: &str,
        expires_in: Duration,
    ) -> Result<String, CapabilityError> {
        let signing = PresigningConfig::expires_in(expires_in.min(MAX_PRESIGN))
            .map_err(|e| cap_error("internal", e))?;
        let (client, bucket) = (&self.public_client, &self.bucket);
        // Signing only: the key is static, so nothing is sent anywhere.
        let signed: PresignedRequest = match method {
            ObjectMethod::Get => client
                .get_object()
                .bucket(bucket)
                .key(key)
                .presigned(signing)
                .await
                .map_err(sdk_error)?,
            ObjectMethod::Put => client
                .put_object()
                .bucket(bucket)
                .key(key)
                .presigned(signing)
                .await
                .map_err(sdk_error)?,
            ObjectMethod::Head => client
                .head_object()
                .bucket(bucket)
                .key(key)
                .presigned(signing)
                .await
                .map_err(sdk_error)?,
            ObjectMethod::Delete => client
                .delete_object()
                .bucket(bucket)
                .key(key)
                .presigned(signing)
                .await
                .map_err(sdk_error)?,
        };
        Ok(signed.uri().to_string())
    }

    /// Up to 1000 objects under `prefix`, after the key `after`.
    pub async fn list(&self, prefix: &str, after: Option<&str>) -> Result<Page, CapabilityError> {
        let listing = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .max_keys(PAGE_SIZE as i32)
            .set_start_after(after.map(str::to_string))
            .send()
            .await
            .map_err(sdk_error)?;
        let objects: Vec<Object> = listing
            .contents()
            .iter()
            .filter_map(|o| Some((o.key()?, o.size())))
            // Keys are the server's word; never act on one outside the prefix asked for
            // or one that climbs out of it.
            .filter(|(key, _)| {
                key.starts_with(prefix)
                    && !key
                        .split('/')
                        .any(|segment| segment == ".." || segment == ".")
            })
            .map(|(key, size)| Object {
                key: key.to_string(),
                size: size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            })
            .collect();
        let truncated = listing.is_truncated() == Some(true)
            || listing.next_continuation_token().is_some()
            || objects.len() >= PAGE_SIZE;
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
            deleted += self.delete_keys(page.objects).await?;
        }
    }

    /// Deletes one page of objects in one request; how many were deleted.
    async fn delete_keys(&self, objects: Vec<Object>) -> Result<u64, CapabilityError> {
        let count = objects.len() as u64;
        let identifiers = objects
            .into_iter()
            .map(|o| ObjectIdentifier::builder().key(o.key).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cap_error("internal", e))?;
        let batch = Delete::builder()
            .set_objects(Some(identifiers))
            // Only failures are listed in the answer.
            .quiet(true)
            .build()
            .map_err(|e| cap_error("internal", e))?;
        let answer = self
            .client
            .delete_objects()
            .bucket(&self.bucket)
            .delete(batch)
            .send()
            .await
            .map_err(sdk_error)?;
        match answer.errors().first() {
            None => Ok(count),
            Some(refused) => {
                let code = refused.code().unwrap_or("unknown");
                let message = format!(
                    "S3 refused to delete {}: {code}: {}",
                    refused.key().unwrap_or("?"),
                    refused.message().unwrap_or("")
                );
                Err(match code {
                    // The server's own trouble, as a 5xx answer would be.
                    "InternalError" | "ServiceUnavailable" | "SlowDown" => {
                        cap_error("unavailable", message)
                    }
                    code => cap_error(code, message),
                })
            }
        }
    }
}

/// A failed SDK call as the contract's error: timeouts, an unreachable server, a server
/// error (5xx: unavailable) and any other refusal (`http-<status>`, as the server said it).
fn sdk_error<E>(e: SdkError<E, HttpResponse>) -> CapabilityError
where
    E: std::error::Error + 'static,
{
    match &e {
        SdkError::TimeoutError(_) => cap_error("timeout", DisplayErrorContext(&e)),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => {
            cap_error("timeout", DisplayErrorContext(&e))
        }
        SdkError::DispatchFailure(_) => cap_error(
            "unavailable",
            format!("S3 unreachable: {}", DisplayErrorContext(&e)),
        ),
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => match e.raw_response() {
            Some(raw) if !raw.status().is_success() => {
                let status = raw.status();
                let body = raw.body().bytes().map(String::from_utf8_lossy);
                let code = if status.is_server_error() {
                    "unavailable".to_string()
                } else {
                    format!("http-{}", status.as_u16())
                };
                let answered = format!(
                    "S3 answered {}: {}",
                    status.as_u16(),
                    body.as_deref().unwrap_or_default()
                );
                cap_error(&code, answered)
            }
            _ => cap_error(
                "internal",
                format!("unreadable S3 answer: {}", DisplayErrorContext(&e)),
            ),
        },
        _ => cap_error("internal", DisplayErrorContext(&e)),
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
        self.s3()?
            .presign(
                method,
                &key,
                Duration::from_secs(u64::from(expires_in_seconds)),
            )
            .await
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
