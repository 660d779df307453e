//! The spaces provider: every resource is a key prefix in one shared S3 bucket, reached
//! only through URLs the host presigns ("broker" mode), so no tenant ever holds an S3 key.
//!
//! Isolation: the host signs URLs only for keys under the resource's prefix (it checks the
//! key before signing), and the S3 server verifies every signature, so a URL edited to reach
//! another prefix is refused by the server itself.
//!
//! URLs: the host asks `objects.presign` for a key relative to the resource; the provider
//! places it under the resource's prefix and signs through the `s3` capability, whose key
//! never leaves the host.
//!
//! Limits: `usage` lists the prefix and sums object sizes (one request per 1000 objects).
//! Over the tier's storage the host suspends the resource, and a suspended resource gets no
//! upload URLs (downloads still work); nothing has to change in the bucket, so `suspend` and
//! `resume` have nothing to do here.

use instanode_provider_kit::errors::S3;
use instanode_provider_kit::objects::Presigned;
use instanode_provider_kit::s3;
use instanode_provider_kit::types::{
    CapabilityError, Info, ObjectMethod, ProviderError, ProvisionRequest, Provisioned, ResourceRef,
    UsageReport,
};
use instanode_provider_kit::{Objects, Provider, data_kind, resource_hex, settings};

/// A prefix nothing else uses, listed by `check`.
const HEALTH_PREFIX: &str = "instanode-health/";

struct Spaces;

/// The prefix of one resource: derived from the host's resource id only.
fn prefix_of(resource_id: &str) -> Result<String, ProviderError> {
    Ok(format!("t_{}/", resource_hex(resource_id)?))
}

impl Provider for Spaces {
    fn describe() -> Info {
        Info {
            name: "spaces".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kinds: vec![data_kind("storage", "storage", "STORAGE_URL")],
        }
    }

    fn provision(request: ProvisionRequest) -> Result<Provisioned, ProviderError> {
        // Nothing to create: a prefix exists once an object is stored under it.
        let prefix = prefix_of(&request.resource_id)?;
        let endpoint = settings::required("public_endpoint")?;
        let endpoint = endpoint.trim_end_matches('/');
        let bucket = settings::required("bucket")?;
        Ok(Provisioned {
            connection_url: format!("{endpoint}/{bucket}/{prefix}"),
            internal_url: None,
            fields: vec![
                ("endpoint".into(), endpoint.to_string()),
                ("bucket".into(), bucket),
                ("prefix".into(), prefix),
                ("mode".into(), "broker".into()),
            ],
            state: String::new(),
        })
    }

    fn deprovision(resource: ResourceRef) -> Result<(), ProviderError> {
        let prefix = prefix_of(&resource.resource_id)?;
        s3::delete_prefix(&prefix).map_err(from_s3)?;
        Ok(())
    }

    fn usage(resource: ResourceRef) -> Result<UsageReport, ProviderError> {
        let prefix = prefix_of(&resource.resource_id)?;
        let (mut bytes, mut objects) = (0u64, 0u64);
        let mut after = None;
        loop {
            let page = s3::list_objects(&prefix, after.as_deref()).map_err(from_s3)?;
            objects += page.objects.len() as u64;
            bytes += page.objects.iter().map(|o| o.size).sum::<u64>();
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(UsageReport {
            storage_bytes: bytes,
            connections: 0,
            extra: vec![("objects".into(), objects)],
        })
    }

    // suspend, resume: the SDK's defaults, which do nothing (see the module docs).

    fn check() -> Result<String, ProviderError> {
        s3::list_objects(HEALTH_PREFIX, None).map_err(from_s3)?;
        Ok("bucket reachable".into())
    }
}

impl Objects for Spaces {
    fn presign(
        target: ResourceRef,
        method: ObjectMethod,
        key: String,
        expires_in_seconds: u32,
    ) -> Result<Presigned, ProviderError> {
        if target.kind != "storage" {
            return Err(ProviderError::InvalidRequest(format!(
                "kind {} has no objects",
                target.kind
            )));
        }
        if key.is_empty() || key.starts_with('/') {
            return Err(ProviderError::InvalidRequest(
                "the key must be relative to the resource".into(),
            ));
        }
        let object_key = format!("{}{key}", prefix_of(&target.resource_id)?);
        let url = s3::presign(method, &object_key, expires_in_seconds).map_err(from_s3)?;
        Ok(Presigned { url, object_key })
    }
}

instanode_provider_kit::export_storage_provider!(Spaces);

fn from_s3(e: CapabilityError) -> ProviderError {
    S3.error(e)
}
