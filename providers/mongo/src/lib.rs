//! The mongo provider: one database and one user per resource on a shared MongoDB server,
//! reached only through the host's `mongo` capability. Written for MongoDB itself; CI runs
//! it against a MongoDB-wire server, and the differences that matter are named below.
//!
//! Isolation: the user is created in (and authenticates against) its own database with
//! `readWrite` on that database only, SCRAM-SHA-256.
//!
//! Limits: storage is `dbStats` (`dataSize + indexSize`). Over the limit, the user's roles
//! are swapped for a per-database role that may still find, remove and drop collections
//! but not insert, update or create: the tenant can free space, and resumes once under 90%.
//! MongoDB has no per-user connection cap; connections are left to the server's own limit.
//!
//! Privileged calls into tenant space: the admin runs only `createUser`, `updateUser`,
//! `createRole`, `dbStats`, `dropUser` and `dropDatabase` there, none of which executes
//! anything a tenant defined (no server-side JavaScript, no views or pipelines evaluated);
//! a tenant cannot create users, roles or settings outside its own database.
//!
//! Rotation (`provision` again) sets a new password and keeps the user's roles. Real MongoDB re-authenticates nothing
//! on a password change: connections opened with the old password keep working until they
//! close, and no command ends another user's connections (`killAllSessionsByPattern` ends
//! sessions and their operations, not connections). New logins with the old password fail.
//!
//! Limits on real MongoDB and here alike: no per-user connection, operation-rate or memory
//! cap exists; storage is measured (`dbStats`) and enforced by the role swap above; the
//! server's own `maxIncomingConnections` and WiredTiger cache bound everyone together.
//!
//! Known differences of the MongoDB-wire server used in CI (SecantusDB):
//! - a connection authenticated before `dropUser` or a role change keeps its old rights
//!   (MongoDB re-checks them on the next command), and it has no `killAllSessionsByPattern`
//!   effect on connections; new connections see the change at once on both;
//! - `dbStats` ignores `scale`;
//! - users get only SCRAM-SHA-256 (asked for explicitly here, so both agree).

use instanode_provider_kit::endpoint::Endpoint;
use instanode_provider_kit::errors::{MONGO, gone};
use instanode_provider_kit::mongo;
use instanode_provider_kit::types::{
    CapabilityError, Info, ProviderError, ProvisionRequest, Provisioned, ResourceRef, UsageReport,
};
use instanode_provider_kit::{Provider, data_kind, random_password, resource_hex, settings};
// `preserve_order`: a command is named by its first key, so keys keep their written order.
use serde_json::{Value, json};

/// The role a suspended tenant holds, defined inside its own database.
const SUSPENDED_ROLE: &str = "instanode_suspended";
/// What a suspended tenant may still do: read, and free space.
const SUSPENDED_ACTIONS: [&str; 8] = [
    "find",
    "remove",
    "dropCollection",
    "listCollections",
    "listIndexes",
    "collStats",
    "dbStats",
    "killCursors",
];

/// MongoDB error codes the provider handles.
mod code {
    pub const USER_NOT_FOUND: &str = "11";
    pub const ROLE_NOT_FOUND: &str = "31";
    pub const DUPLICATE_KEY: &str = "11000";
    pub const ROLE_EXISTS: &str = "51002";
    pub const USER_EXISTS: &str = "51003";
}

struct Mongo;

/// The names that belong to one resource.
struct Tenant {
    database: String,
    user: String,
}

impl Tenant {
    /// Derived from the host's resource id (32 lowercase hex characters) only.
    fn for_resource(resource_id: &str) -> Result<Self, ProviderError> {
        let hex = resource_hex(resource_id)?;
        Ok(Self {
            database: format!("db_{hex}"),
            user: format!("u_{hex}"),
        })
    }

    fn run(&self, command: Value) -> Result<Value, CapabilityError> {
        run(&self.database, command)
    }

    fn set_roles(&self, role: &str) -> Result<(), ProviderError> {
        self.run(json!({
            "updateUser": self.user,
            "roles": [{"role": role, "db": self.database}],
        }))
        .map(drop)
        .map_err(from_mongo)
    }

    /// Ends the user's sessions and cursors where the server supports it.
    fn kill_sessions(&self) {
        let _ = run(
            "admin",
            json!({"killAllSessionsByPattern": [{"users": [{"user": self.user, "db": self.database}]}]}),
        );
    }
}

impl Provider for Mongo {
    fn describe() -> Info {
        Info {
            name: "mongo".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kinds: vec![data_kind("nosql", "nosql", "MONGO_URL")],
        }
    }

    fn provision(request: ProvisionRequest) -> Result<Provisioned, ProviderError> {
        let tenant = Tenant::for_resource(&request.resource_id)?;
        let password = random_password()?;
        let roles = json!([{"role": "readWrite", "db": tenant.database}]);
        let created = tenant.run(json!({
            "createUser": tenant.user,
            "pwd": password,
            "roles": roles,
            "mechanisms": ["SCRAM-SHA-256"],
        }));
        match created {
            Ok(_) => {}
            // Provisioning the same id again (a retry, or a rotation) adopts the user with a
            // new password. Its roles stay as they are: a suspended tenant stays suspended.
            Err(CapabilityError::Backend(e))
                if e.code == code::USER_EXISTS || e.code == code::DUPLICATE_KEY =>
            {
                tenant
                    .run(json!({"updateUser": tenant.user, "pwd": password}))
                    .map_err(from_mongo)?;
                tenant.kill_sessions();
            }
            Err(e) => return Err(from_mongo(e)),
        }
        let options = settings::get("url_options")
            .filter(|o| !o.is_empty())
            .map(|o| format!("&{o}"))
            .unwrap_or_default();
        let (connection_url, internal_url) = Endpoint::from_config()?.urls(|host, port| {
            format!(
                "mongodb://{}:{password}@{host}:{port}/{db}?authSource={db}{options}",
                tenant.user,
                db = tenant.database
            )
        });
        Ok(Provisioned {
            connection_url,
            internal_url,
            fields: vec![("database".into(), tenant.database.clone())],
            state: String::new(),
        })
    }

    fn deprovision(resource: ResourceRef) -> Result<(), ProviderError> {
        let tenant = Tenant::for_resource(&resource.resource_id)?;
        // The user goes before the data, so nothing writes while the database is dropped.
        match tenant.run(json!({"dropUser": tenant.user})) {
            Ok(_) => {}
            Err(CapabilityError::Backend(e)) if e.code == code::USER_NOT_FOUND => {}
            Err(e) => return Err(from_mongo(e)),
        }
        tenant.kill_sessions();
        drop_suspended_role(&tenant)?;
        tenant
            .run(json!({"dropDatabase": 1}))
            .map(drop)
            .map_err(from_mongo)
    }

    fn usage(resource: ResourceRef) -> Result<UsageReport, ProviderError> {
        let tenant = Tenant::for_resource(&resource.resource_id)?;
        let stats = tenant.run(json!({"dbStats": 1})).map_err(from_mongo)?;
        let number = |key: &str| stats.get(key).and_then(Value::as_f64).unwrap_or(0.0);
        let bytes = number("dataSize") + number("indexSize");
        Ok(UsageReport {
            storage_bytes: bytes.max(0.0) as u64,
            connections: 0,
            extra: vec![("objects".into(), number("objects").max(0.0) as u64)],
        })
    }

    fn suspend(resource: ResourceRef) -> Result<(), ProviderError> {
        let tenant = Tenant::for_resource(&resource.resource_id)?;
        let privileges: Vec<Value> = vec![json!({
            "resource": {"db": tenant.database, "collection": ""},
            "actions": SUSPENDED_ACTIONS,
        })];
        match tenant
            .run(json!({"createRole": SUSPENDED_ROLE, "privileges": privileges, "roles": []}))
        {
            Ok(_) => {}
            Err(CapabilityError::Backend(e))
                if e.code == code::ROLE_EXISTS || e.code == code::DUPLICATE_KEY => {}
            Err(e) => return Err(from_mongo(e)),
        }
        match tenant.set_roles(SUSPENDED_ROLE) {
            Err(ProviderError::Conflict(_)) => return Ok(()),
            other => other?,
        }
        tenant.kill_sessions();
        Ok(())
    }

    fn resume(resource: ResourceRef) -> Result<(), ProviderError> {
        let tenant = Tenant::for_resource(&resource.resource_id)?;
        tenant.set_roles("readWrite")?;
        drop_suspended_role(&tenant)
    }

    fn check() -> Result<String, ProviderError> {
        run("admin", json!({"ping": 1})).map_err(from_mongo)?;
        let info = run("admin", json!({"buildInfo": 1})).map_err(from_mongo)?;
        let version = info
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        Ok(format!("mongodb {version} reachable"))
    }

    // maintain: the SDK's default, which does nothing.
}

instanode_provider_kit::export_provider!(Mongo);

fn drop_suspended_role(tenant: &Tenant) -> Result<(), ProviderError> {
    match tenant.run(json!({"dropRole": SUSPENDED_ROLE})) {
        Ok(_) => Ok(()),
        Err(CapabilityError::Backend(e)) if e.code == code::ROLE_NOT_FOUND => Ok(()),
        Err(e) => Err(from_mongo(e)),
    }
}

fn run(database: &str, command: Value) -> Result<Value, CapabilityError> {
    let reply = mongo::run_command(database, &command.to_string())?;
    serde_json::from_str(&reply)
        .map_err(|e| CapabilityError::Internal(format!("reply is not JSON: {e}")))
}

fn from_mongo(e: CapabilityError) -> ProviderError {
    match e {
        CapabilityError::Backend(e) if e.code == code::USER_NOT_FOUND => gone(),
        other => MONGO.error(other),
    }
}
