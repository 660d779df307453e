//! `redis`: commands on the Redis server bound to a provider, as its admin user.

use std::time::Duration;

use anyhow::Context;
use redis::aio::ConnectionManager;
use redis::{RedisError, Value as RedisValue};
use tokio::sync::OnceCell;

use super::{HostState, cap_error};
use crate::config::RedisBinding;
use crate::contract::instanode::provider::redis::{Host, ReplyNode};
use crate::contract::instanode::provider::types::CapabilityError;

/// How long one command (or pipeline) may take before the call sees `timeout`.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// The admin side of one Redis server. The connection is made on first use and
/// re-established by the manager after a failure, so the host starts (and recovers) while
/// the server is down.
pub struct RedisBackend {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
}

impl RedisBackend {
    pub fn new(binding: &RedisBinding) -> anyhow::Result<Self> {
        let client =
            redis::Client::open(binding.url.expose()).context("redis.url is not a Redis URL")?;
        Ok(Self {
            client,
            connection: OnceCell::new(),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1);
        self.connection
            .get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config))
            .await
            .cloned()
    }
}

fn command(args: &[Vec<u8>]) -> Result<redis::Cmd, CapabilityError> {
    let (name, rest) = args
        .split_first()
        .ok_or_else(|| cap_error("invalid", "a command needs a name"))?;
    let mut cmd = redis::cmd(&String::from_utf8_lossy(name));
    for arg in rest {
        cmd.arg(arg.as_slice());
    }
    Ok(cmd)
}

/// Flattens a reply tree in pre-order (see the WIT `reply-node`).
fn flatten(value: RedisValue, out: &mut Vec<ReplyNode>) -> Result<(), CapabilityError> {
    match value {
        RedisValue::Nil => out.push(ReplyNode::Nil),
        RedisValue::Int(n) => out.push(ReplyNode::Int(n)),
        RedisValue::BulkString(bytes) => out.push(ReplyNode::Bulk(bytes)),
        RedisValue::SimpleString(s) => out.push(ReplyNode::Status(s)),
        RedisValue::Okay => out.push(ReplyNode::Status("OK".into())),
        RedisValue::Double(d) => out.push(ReplyNode::Double(d)),
        RedisValue::Boolean(b) => out.push(ReplyNode::Boolean(b)),
        RedisValue::VerbatimString { text, .. } => out.push(ReplyNode::Bulk(text.into_bytes())),
        RedisValue::BigNumber(digits) => out.push(ReplyNode::Bulk(digits)),
        RedisValue::Array(items) | RedisValue::Set(items) => {
            out.push(ReplyNode::Array(len(items.len())));
            for item in items {
                flatten(item, out)?;
            }
        }
        RedisValue::Map(pairs) => {
            out.push(ReplyNode::Array(len(pairs.len() * 2)));
            for (k, v) in pairs {
                flatten(k, out)?;
                flatten(v, out)?;
            }
        }
        RedisValue::Attribute { data, .. } => flatten(*data, out)?,
        RedisValue::Push { data, .. } => {
            out.push(ReplyNode::Array(len(data.len())));
            for item in data {
                flatten(item, out)?;
            }
        }
        RedisValue::ServerError(e) => {
            return Err(cap_error(e.code(), e.details().unwrap_or_default()));
        }
        other => {
            return Err(cap_error(
                "internal",
                format!("unsupported reply {other:?}"),
            ));
        }
    }
    Ok(())
}

fn len(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn reply(value: RedisValue) -> Result<Vec<ReplyNode>, CapabilityError> {
    let mut out = Vec::new();
    flatten(value, &mut out)?;
    Ok(out)
}

fn redis_error(e: RedisError) -> CapabilityError {
    if let Some(code) = e.code() {
        return cap_error(code, e.detail().unwrap_or_default());
    }
    if e.is_timeout() {
        return cap_error("timeout", e);
    }
    if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
        return cap_error("unavailable", format!("redis unreachable: {e}"));
    }
    cap_error("internal", e)
}

impl HostState {
    fn redis(&self) -> Result<&RedisBackend, CapabilityError> {
        self.bindings
            .redis
            .as_ref()
            .ok_or_else(|| cap_error("not-granted", "redis is not granted"))
    }
}

impl Host for HostState {
    async fn command(&mut self, args: Vec<Vec<u8>>) -> Result<Vec<ReplyNode>, CapabilityError> {
        let cmd = command(&args)?;
        let mut connection = self.redis()?.connection().await.map_err(redis_error)?;
        let value: RedisValue = cmd
            .query_async(&mut connection)
            .await
            .map_err(redis_error)?;
        reply(value)
    }

    async fn pipeline(
        &mut self,
        commands: Vec<Vec<Vec<u8>>>,
    ) -> Result<Vec<Result<Vec<ReplyNode>, CapabilityError>>, CapabilityError> {
        let mut pipe = redis::pipe();
        for args in &commands {
            pipe.add_command(command(args)?);
        }
        let mut connection = self.redis()?.connection().await.map_err(redis_error)?;
        // Errors of single commands come back as `ServerError` values, one per command.
        let values: Vec<RedisValue> = pipe
            .ignore_errors()
            .query_async(&mut connection)
            .await
            .map_err(redis_error)?;
        Ok(values.into_iter().map(reply).collect())
    }
}
