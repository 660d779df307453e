//! `mongo`: commands on the MongoDB server bound to a provider, as its admin user.
//! Commands and replies travel as relaxed Extended JSON, so components need no BSON code.

use anyhow::Context;
use mongodb::bson::{Bson, Document};
use mongodb::error::{Error as MongoError, ErrorKind};
use mongodb::options::ClientOptions;

use super::{HostState, cap_error};
use crate::config::MongoBinding;
use crate::contract::instanode::provider::mongo::Host;
use crate::contract::instanode::provider::types::CapabilityError;

/// The admin side of one MongoDB server. The driver connects lazily and reconnects on its
/// own, so the host starts (and recovers) while the server is down.
pub struct MongoBackend {
    client: mongodb::Client,
}

impl MongoBackend {
    pub async fn new(binding: &MongoBinding) -> anyhow::Result<Self> {
        let mut options = ClientOptions::parse(binding.url.expose())
            .await
            .context("mongo.url is not a MongoDB URL")?;
        options.server_selection_timeout = Some(std::time::Duration::from_secs(3));
        options.app_name = Some("instanode".into());
        Ok(Self {
            client: mongodb::Client::with_options(options)?,
        })
    }
}

fn parse_command(command: &str) -> Result<Document, CapabilityError> {
    let json: serde_json::Value = serde_json::from_str(command)
        .map_err(|e| cap_error("invalid", format!("command is not JSON: {e}")))?;
    match Bson::try_from(json) {
        Ok(Bson::Document(document)) => Ok(document),
        Ok(_) => Err(cap_error("invalid", "a command must be a JSON object")),
        Err(e) => Err(cap_error("invalid", format!("bad Extended JSON: {e}"))),
    }
}

fn mongo_error(e: MongoError) -> CapabilityError {
    match e.kind.as_ref() {
        ErrorKind::Command(command) => cap_error(&command.code.to_string(), &command.message),
        ErrorKind::Write(_) | ErrorKind::InsertMany(_) | ErrorKind::BulkWrite(_) => {
            cap_error("internal", e)
        }
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. } => {
            cap_error("unavailable", format!("mongo unreachable: {e}"))
        }
        ErrorKind::Authentication { .. } => {
            cap_error("unavailable", format!("admin login failed: {e}"))
        }
        _ => cap_error("internal", e),
    }
}

impl HostState {
    fn mongo(&self) -> Result<&MongoBackend, CapabilityError> {
        self.bindings
            .mongo
            .as_ref()
            .ok_or_else(|| cap_error("not-granted", "mongo is not granted"))
    }
}

impl Host for HostState {
    async fn run_command(
        &mut self,
        database: String,
        command: String,
    ) -> Result<String, CapabilityError> {
        let command = parse_command(&command)?;
        let reply = self
            .mongo()?
            .client
            .database(&database)
            .run_command(command)
            .await
            .map_err(mongo_error)?;
        Ok(Bson::Document(reply).into_relaxed_extjson().to_string())
    }
}
