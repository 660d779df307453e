//! The end-to-end tests, one binary with a module per area: each starts the real host binary
//! against the real backends that `scripts/test` prepares. One binary links once and runs
//! every test from one pool, so a filter such as `cargo test --test integration deploy::`
//! picks an area.

mod accounts;
mod agent_surface;
mod app_controls;
mod attacks;
mod caps;
mod cli;
mod conformance;
mod dashboard;
mod deploy;
mod docs;
mod egress;
mod errors;
mod faults;
mod hostile;
mod hot_swap;
mod https;
mod idempotency;
mod images;
mod isolation;
mod lifecycle;
mod mcp;
mod mongo;
mod nats;
mod neighbours;
mod openapi;
mod postgres;
mod provider_check;
mod redis;
mod replicas;
mod saga;
mod sandbox;
mod slowloris;
mod spaces;
mod stacks;
mod swarm;
mod team;
mod vault;
mod webhooks;
