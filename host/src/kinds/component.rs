//! A loaded provider component serves its configured kinds through the contract's calls.

use async_trait::async_trait;

use super::{KindInfo, Service};
use crate::contract::storage::objects::Presigned;
use crate::contract::types::{
    ObjectMethod, ProvisionRequest, Provisioned, ResourceRef, UsageReport,
};
use crate::registry::{Answer, Loaded};

#[async_trait]
impl Service for Loaded {
    fn name(&self) -> &str {
        &self.name
    }

    fn version(&self) -> &str {
        &self.version
    }

    fn kinds(&self) -> &[KindInfo] {
        &self.kind_info
    }

    fn signs_objects(&self) -> bool {
        self.exports_objects()
    }

    async fn provision(&self, request_id: &str, request: &ProvisionRequest) -> Answer<Provisioned> {
        Loaded::provision(self, request_id, request).await
    }

    async fn deprovision(&self, request_id: &str, resource: &ResourceRef) -> Answer<()> {
        Loaded::deprovision(self, request_id, resource).await
    }

    async fn usage(&self, request_id: &str, resource: &ResourceRef) -> Answer<Option<UsageReport>> {
        Ok(Loaded::usage(self, request_id, resource).await?.map(Some))
    }

    async fn suspend(&self, request_id: &str, resource: &ResourceRef) -> Answer<()> {
        Loaded::suspend(self, request_id, resource).await
    }

    async fn resume(&self, request_id: &str, resource: &ResourceRef) -> Answer<()> {
        Loaded::resume(self, request_id, resource).await
    }

    async fn presign(
        &self,
        request_id: &str,
        resource: &ResourceRef,
        method: ObjectMethod,
        key: &str,
        expires_in_seconds: u32,
    ) -> Answer<Presigned> {
        Loaded::presign(self, request_id, resource, method, key, expires_in_seconds).await
    }
}
