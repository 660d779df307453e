//! What serves resource kinds. A [`Service`] is either a loaded provider component or a
//! provider built into the host (webhooks); the [`Catalog`] finds the one serving a kind or
//! a stored resource. Lifecycle and API code reach every kind through these two and the
//! [`KindInfo`] each service gives, so they never name a kind.

mod component;

use std::sync::Arc;

use async_trait::async_trait;

use crate::contract::storage::objects::Presigned;
use crate::contract::types::{
    Creation, ObjectMethod, ProvisionRequest, Provisioned, ResourceRef, UsageReport,
};
use crate::registry::{Answer, Registry};

pub use crate::contract::types::{KindInfo, RequestField};

/// Something that creates and looks after resources of some kinds.
#[async_trait]
pub trait Service: Send + Sync {
    /// The name recorded on every resource it creates (`host` for built-in kinds).
    fn name(&self) -> &str;
    fn version(&self) -> &str;
    /// The kinds it serves here, and what each one is.
    fn kinds(&self) -> &[KindInfo];

    /// `name@version`, as responses and logs name a provider version.
    fn label(&self) -> String {
        format!("{}@{}", self.name(), self.version())
    }

    /// Creates a resource (create-or-adopt for the same `resource_id`).
    async fn provision(&self, request_id: &str, request: &ProvisionRequest) -> Answer<Provisioned>;
    /// Removes everything the resource owns; succeeds when it is already gone.
    async fn deprovision(&self, request_id: &str, resource: &ResourceRef) -> Answer<()>;
    /// What the resource consumes, or none when it bounds itself and needs no metering.
    async fn usage(&self, request_id: &str, resource: &ResourceRef) -> Answer<Option<UsageReport>>;
    /// Stops the resource from growing (over quota).
    async fn suspend(&self, request_id: &str, resource: &ResourceRef) -> Answer<()>;
    /// Undoes `suspend` and applies the resource's current limits.
    async fn resume(&self, request_id: &str, resource: &ResourceRef) -> Answer<()>;
    /// Whether `presign` is answered (the provider exports `objects`).
    fn signs_objects(&self) -> bool {
        false
    }

    /// A URL for one object of a storage resource.
    async fn presign(
        &self,
        request_id: &str,
        resource: &ResourceRef,
        method: ObjectMethod,
        key: &str,
        expires_in_seconds: u32,
    ) -> Answer<Presigned>;
}

/// The services of this host: the live provider components and the built-in ones.
pub struct Catalog {
    registry: Arc<Registry>,
    built_in: Vec<Arc<dyn Service>>,
}

impl Catalog {
    pub fn new(registry: Arc<Registry>, built_in: Vec<Arc<dyn Service>>) -> Self {
        Self { registry, built_in }
    }

    /// The service that creates resources of `kind` now.
    pub fn for_kind(&self, kind: &str) -> Option<Arc<dyn Service>> {
        self.built_in
            .iter()
            .find(|s| s.kinds().iter().any(|k| k.name == kind))
            .cloned()
            .or_else(|| self.registry.for_kind(kind).map(|p| p as Arc<dyn Service>))
    }

    /// The service that looks after a stored resource: the provider of the name that
    /// created it, whichever version is live now.
    pub fn for_resource(&self, provider: &str, kind: &str) -> Option<Arc<dyn Service>> {
        self.built_in
            .iter()
            .find(|s| s.name() == provider && s.kinds().iter().any(|k| k.name == kind))
            .cloned()
            .or_else(|| {
                self.registry
                    .for_resource(provider, kind)
                    .map(|p| p as Arc<dyn Service>)
            })
    }

    /// What `kind` is, when some service offers it now.
    pub fn kind(&self, kind: &str) -> Option<KindInfo> {
        self.for_kind(kind)?
            .kinds()
            .iter()
            .find(|k| k.name == kind)
            .cloned()
    }

    /// Every kind offered now, sorted by name.
    pub fn kinds(&self) -> Vec<KindInfo> {
        let mut kinds: Vec<KindInfo> = self
            .built_in
            .iter()
            .flat_map(|s| s.kinds().to_vec())
            .chain(self.registry.all().iter().flat_map(|p| p.kind_info.clone()))
            .collect();
        kinds.sort_by(|a, b| a.name.cmp(&b.name));
        kinds.dedup_by(|a, b| a.name == b.name);
        kinds
    }

    /// The kinds created by a JSON body at `POST /{kind}/new`.
    pub fn json_kinds(&self) -> Vec<KindInfo> {
        self.kinds()
            .into_iter()
            .filter(|k| k.creation == Creation::JsonBody)
            .collect()
    }

    /// The kind apps are deployed as, when a deploy provider is live.
    pub fn app_kind(&self) -> Option<KindInfo> {
        self.kinds()
            .into_iter()
            .find(|k| k.creation == Creation::BuildContext)
    }
}

/// Whether resources of `kind` are apps built from an uploaded context.
pub fn is_app(kind: &KindInfo) -> bool {
    kind.creation == Creation::BuildContext
}
