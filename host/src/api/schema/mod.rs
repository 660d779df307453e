//! Every JSON body the REST API reads or writes, as types. Handlers fill them in, the OpenAPI
//! document is generated from them (`api::openapi`), and the end-to-end tests read answers
//! back into them. One file per area of the API; names are unique across files, since the
//! document names each schema by its type alone.
//!
//! Field order, names and presence are the wire format: an optional field that an answer
//! leaves out carries `skip_serializing_if`; one that it sends as `null` does not.

mod accounts;
mod common;
mod dashboard;
mod deploys;
mod domains;
mod health;
mod mcp;
mod operators;
mod provision;
mod resources;
mod stacks;
mod storage;
mod team;
mod testing;
mod vault;
mod webhooks;

pub use accounts::*;
pub use common::*;
pub use dashboard::*;
pub use deploys::*;
pub use domains::*;
pub use health::*;
pub use mcp::*;
pub use operators::*;
pub use provision::*;
pub use resources::*;
pub use stacks::*;
pub use storage::*;
pub use team::*;
pub use testing::*;
pub use vault::*;
pub use webhooks::*;
