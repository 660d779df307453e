//! instanode: real infrastructure for coding agents through single HTTP calls.
//!
//! The host owns HTTP, auth, tiers and quotas; each backend service is a WebAssembly
//! component (a provider) implementing the `instanode:provider` contract in `wit/`.

pub mod api;
pub mod app;
pub mod caps;
pub mod cli;
pub mod clock;
pub mod config;
pub mod conformance;
pub mod contract;
pub mod deploy;
pub mod html_document;
pub mod kinds;
pub mod lifecycle;
pub mod local_config;
pub mod mail;
pub mod provider_watch;
pub mod proxy;
pub mod readiness;
pub mod registry;
pub mod replication;
pub mod request_id;
pub mod schedule;
pub mod serve;
pub mod services;
pub mod store;
pub mod tenancy;
pub mod tls;
pub mod vault;
pub mod webhook_ingest;
pub mod webhooks;
pub mod wire;
