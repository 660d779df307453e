//! The fault campaign: a backend, the host itself or the metadata database dies while
//! clients provision side by side. Whatever dies, every call ends in a 201 whose resource
//! works or in an error envelope an agent can act on, and once the host has finished what
//! was interrupted, each backend holds exactly the resources the metadata calls active:
//! nothing half-made is left behind, nothing answered is lost.
//!
//! Each backend a test kills is its own (a private Redis, MongoDB-wire, NATS and S3 server,
//! the second PostgreSQL cluster), since the shared ones serve the other tests. The host's
//! reaper finishes what a fault interrupted once it is stale; the tests move the host's
//! clock and run it at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use instanode::api::schema::{Created, Presigned};
use instanode_tests::{
    HostOptions, ProviderFields, ProviderSpec, Reply, TestHost, backend_objects, env, free_port,
    redis_admin,
};
use mongodb::bson::{Document, doc};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tokio::process::{Child, Command};

/// Clients provisioning side by side while a fault strikes.
const CLIENTS: usize = 6;
/// How long any one stage of a fault may take before the test gives up.
const PATIENCE: Duration = Duration::from_secs(45);

// ---------------------------------------------------------------------------------------
// Load: clients that provision back to back until the fault is over.

/// What the clients have seen so far; the fault waits on it.
#[derive(Default)]
struct Progress {
    created: AtomicUsize,
    failed: AtomicUsize,
    stop: AtomicBool,
}

impl Progress {
    fn created(&self) -> usize {
        self.created.load(Ordering::SeqCst)
    }

    fn failed(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }

    async fn until(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let started = Instant::now();
        while !done(self) {
            assert!(
                started.elapsed() < PATIENCE,
                "timed out waiting for {what} ({} created, {} failed)",
                self.created(),
                self.failed()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for `n` more creations than `since`.
    async fn created_after(&self, since: usize, n: usize) {
        self.until(&format!("{n} provisions"), |p| p.created() >= since + n)
            .await;
    }

    /// Waits for `n` more failures than `since`.
    async fn failed_after(&self, since: usize, n: usize) {
        self.until(&format!("{n} failed provisions"), |p| {
            p.failed() >= since + n
        })
        .await;
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One provision call: the kind asked for and the answer (none: the host did not answer).
struct Call {
    kind: &'static str,
    reply: Option<Reply>,
}

/// `POST /<kind>/new` that tolerates a host that is gone.
async fn try_provision(host: &TestHost, kind: &str, name: &str) -> Option<Reply> {
    let response = host
        .http
        .post(format!("{}/{kind}/new", host.url))
        .header("x-forwarded-for", host.fresh_client())
        .json(&json!({ "name": name }))
        .send()
        .await
        .ok()?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.ok()?;
    Some(Reply {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    })
}

/// [`CLIENTS`] clients provisioning `kinds` (round robin) back to back until `progress`
/// says stop; every call they made.
async fn load(host: &TestHost, kinds: &[&'static str], progress: &Progress) -> Vec<Call> {
    let clients = (0..CLIENTS).map(|client| async move {
        let kind = kinds[client % kinds.len()];
        let mut calls = Vec::new();
        while !progress.stop.load(Ordering::SeqCst) {
            let reply = try_provision(host, kind, &format!("load-{client}-{}", calls.len())).await;
            if reply.as_ref().is_some_and(|r| r.status.as_u16() == 201) {
                progress.created.fetch_add(1, Ordering::SeqCst);
                // Paced, so a fast backend does not pile up hundreds of resources.
                tokio::time::sleep(Duration::from_millis(20)).await;
            } else {
                progress.failed.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            calls.push(Call { kind, reply });
        }
        calls
    });
    futures::future::join_all(clients)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// An answer that is not a 201 must be the envelope of a retryable failure with advice.
fn assert_retryable(reply: &Reply) {
    let body = &reply.body;
    assert_eq!(reply.status.as_u16(), 503, "{body}");
    let error = reply.error();
    let agent_action = error.agent_action.as_deref().unwrap_or_default();
    for (field, value) in [
        ("error", &*error.error),
        ("message", &*error.message),
        ("request_id", &*error.request_id),
        ("agent_action", agent_action),
    ] {
        assert!(!value.is_empty(), "{field} missing: {body}");
    }
}

/// The bodies of the created resources; every other call must have failed retryably (and
/// some must have, or the fault missed the load).
fn created(calls: &[Call]) -> Vec<(&'static str, Created)> {
    let mut bodies = Vec::new();
    let mut failed = 0;
    for call in calls {
        let reply = call.reply.as_ref().expect("the host answers every call");
        if reply.status.as_u16() == 201 {
            bodies.push((call.kind, reply.json()));
        } else {
            assert_retryable(reply);
            failed += 1;
        }
    }
    println!("{} created, {failed} failed", bodies.len());
    assert!(failed > 0, "no call met the fault");
    assert!(!bodies.is_empty(), "no call succeeded");
    bodies
}

fn hex(body: &Created) -> String {
    body.id.simple().to_string()
}

// ---------------------------------------------------------------------------------------
// Settling and comparing the metadata with a backend.

/// Lets the host finish what a fault interrupted: its clock moves past the point where an
/// unfinished provision or delete counts as abandoned, and the reaper runs now.
async fn settle(host: &TestHost) {
    host.advance_clock(11 * 60).await;
    let report = host.reap().await;
    assert_eq!(report.failed, 0, "every leftover was removed: {report:?}");
}

/// Every resource row's id (hex) and status; none may still be in flight.
async fn settled_rows(host: &TestHost) -> BTreeMap<String, String> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT replace(id::text, '-', ''), status::text FROM resources")
            .fetch_all(&mut host.metadata().await)
            .await
            .expect("resource rows");
    for (id, status) in &rows {
        assert!(
            status == "active" || status == "failed",
            "{id} is still {status} after the reaper ran"
        );
    }
    rows.into_iter().collect()
}

fn active(rows: &BTreeMap<String, String>) -> BTreeSet<String> {
    rows.iter()
        .filter(|(_, status)| *status == "active")
        .map(|(id, _)| id.clone())
        .collect()
}

/// The objects of one class on a backend belong to exactly the active resources.
fn assert_matches(class: &str, present: &BTreeSet<String>, active: &BTreeSet<String>) {
    let orphans: Vec<_> = present.difference(active).collect();
    let missing: Vec<_> = active.difference(present).collect();
    assert!(
        orphans.is_empty() && missing.is_empty(),
        "{class}: left behind for no active resource: {orphans:?}; active resources without one: {missing:?}"
    );
}

/// Settles the host and checks the metadata against the answers: exactly the created
/// resources are active. Returns them.
async fn settle_and_check_rows(host: &TestHost, bodies: &[(&str, Created)]) -> BTreeSet<String> {
    settle(host).await;
    let active = active(&settled_rows(host).await);
    let answered: BTreeSet<String> = bodies.iter().map(|(_, b)| hex(b)).collect();
    assert_matches("metadata rows", &answered, &active);
    active
}

/// Retries `attempt` for a while: a backend just restarted may still be starting up.
async fn eventually<T, F: Future<Output = Result<T, String>>>(
    what: &str,
    attempt: impl Fn() -> F,
) -> T {
    let started = Instant::now();
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(e) if started.elapsed() > Duration::from_secs(20) => panic!("{what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL.

/// The second test cluster, which only one test at a time may stop.
static OUTAGE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Stops and starts the second test cluster; started again when dropped, so a failing test
/// does not leave it down.
struct OutageCluster {
    down: bool,
}

impl OutageCluster {
    fn url() -> String {
        env("INSTANODE_TEST_OUTAGE_PG_URL")
    }

    fn port() -> String {
        env("INSTANODE_TEST_OUTAGE_PG_PORT")
    }

    async fn ctl(action: &str) {
        let status = Command::new(env("INSTANODE_TEST_OUTAGE_CTL"))
            .arg(action)
            .status()
            .await
            .expect("the outage cluster's ctl runs");
        assert!(status.success(), "outage cluster {action}");
    }

    async fn stop(&mut self) {
        self.down = true;
        Self::ctl("stop").await;
    }

    async fn start(&mut self) {
        Self::ctl("start").await;
        self.down = false;
    }
}

impl Drop for OutageCluster {
    fn drop(&mut self) {
        if self.down {
            let _ = std::process::Command::new(env("INSTANODE_TEST_OUTAGE_CTL"))
                .arg("start")
                .status();
        }
    }
}

/// Resource ids (hex) with a role, and with a database, on the cluster at `url`.
async fn pg_tenants(url: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut admin = PgConnection::connect(url).await.expect("cluster superuser");
    let roles: Vec<String> =
        sqlx::query_scalar(r"SELECT substr(rolname, 5) FROM pg_roles WHERE rolname LIKE 'usr\_%'")
            .fetch_all(&mut admin)
            .await
            .unwrap();
    let databases: Vec<String> = sqlx::query_scalar(
        r"SELECT substr(datname, 4) FROM pg_database WHERE datname LIKE 'db\_%'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    (roles.into_iter().collect(), databases.into_iter().collect())
}

/// Connects with the resource's own URL and writes a row.
async fn pg_works(body: &Created) -> Result<(), String> {
    let mut tenant = PgConnection::connect(&body.connection_url)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS t (v int); INSERT INTO t VALUES (1)")
        .execute(&mut tenant)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_postgres_cluster_stopped_mid_provision_leaves_no_orphans() {
    let _cluster = OUTAGE_CLUSTER.lock().await;
    let url = OutageCluster::url();
    let host = TestHost::start(HostOptions {
        providers: vec![
            ProviderSpec::postgres_on(&["db"], &url, &OutageCluster::port())
                // No warm pool: every provision runs CREATE DATABASE, a slow step to cut.
                .setting("warm_pool", "0"),
        ],
        ..HostOptions::default()
    })
    .await;
    // The cluster outlives test runs: only what this test adds is compared.
    let (roles_before, databases_before) = pg_tenants(&url).await;

    let progress = Progress::default();
    let mut cluster = OutageCluster { down: false };
    let (calls, ()) = tokio::join!(load(&host, &["db"], &progress), async {
        progress.created_after(0, 3).await;
        cluster.stop().await;
        progress.failed_after(progress.failed(), CLIENTS).await;
        cluster.start().await;
        progress.created_after(progress.created(), CLIENTS).await;
        progress.stop();
    });
    let bodies = created(&calls);
    for (_, body) in &bodies {
        eventually("a created database works", || pg_works(body)).await;
    }
    let active = settle_and_check_rows(&host, &bodies).await;
    let (roles, databases) = pg_tenants(&url).await;
    assert_matches("roles", &(&roles - &roles_before), &active);
    assert_matches("databases", &(&databases - &databases_before), &active);
}

// ---------------------------------------------------------------------------------------
// Private servers.

/// A fresh directory for one private server.
fn server_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env("INSTANODE_TEST_DATA_DIR"))
        .join("faults")
        .join(format!("{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("server directory");
    dir
}

fn log_file(path: PathBuf) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("server log")
}

/// A Redis server of the test's own, configured like the shared one (users in an ACL file,
/// no data persistence).
struct PrivateRedis {
    port: u16,
    dir: PathBuf,
    password: String,
    child: Option<Child>,
}

impl PrivateRedis {
    async fn start() -> Self {
        let dir = server_dir("redis");
        let port = free_port().unwrap();
        let password = uuid::Uuid::new_v4().simple().to_string();
        std::fs::write(
            dir.join("users.acl"),
            format!("user default off resetkeys resetchannels -@all\nuser admin on >{password} ~* &* +@all\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("redis.conf"),
            format!(
                "bind 127.0.0.1\nport {port}\nsave \"\"\nappendonly no\ndir {}\naclfile {}\nlogfile {}\n",
                dir.display(),
                dir.join("users.acl").display(),
                dir.join("redis.log").display(),
            ),
        )
        .unwrap();
        let mut redis = Self {
            port,
            dir,
            password,
            child: None,
        };
        redis.spawn().await;
        redis
    }

    async fn spawn(&mut self) {
        self.child = Some(
            Command::new("redis-server")
                .arg(self.dir.join("redis.conf"))
                .kill_on_drop(true)
                .spawn()
                .expect("redis-server starts"),
        );
        eventually("the private Redis answers", || async {
            self.admin().await.map(drop)
        })
        .await;
    }

    /// SIGKILL: the server gets no chance to finish anything.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    fn url(&self) -> String {
        format!("redis://admin:{}@127.0.0.1:{}", self.password, self.port)
    }

    async fn admin(&self) -> Result<redis::aio::MultiplexedConnection, String> {
        let client = redis::Client::open(self.url()).map_err(|e| e.to_string())?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(conn)
    }

    /// Resource ids (hex) with a user on the server.
    async fn tenants(&self) -> BTreeSet<String> {
        let users: Vec<String> = redis::cmd("ACL")
            .arg("USERS")
            .query_async(&mut self.admin().await.unwrap())
            .await
            .unwrap();
        users
            .iter()
            .filter_map(|u| u.strip_prefix("t_"))
            .map(str::to_string)
            .collect()
    }
}

/// Logs in with the resource's own URL and writes a key under its prefix.
async fn redis_works(body: &Created) -> Result<(), String> {
    let client = redis::Client::open(body.connection_url.as_str()).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let key = format!("{}k", body.field("key_prefix"));
    redis::cmd("SET")
        .arg(&key)
        .arg("v")
        .query_async::<()>(&mut conn)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_redis_killed_mid_provision_leaves_no_orphans() {
    let mut redis = PrivateRedis::start().await;
    let host = TestHost::start(HostOptions::only(ProviderSpec::redis_on(
        &redis.url(),
        &redis.port.to_string(),
    )))
    .await;
    let progress = Progress::default();
    let (calls, ()) = tokio::join!(load(&host, &["cache"], &progress), async {
        progress.created_after(0, 3).await;
        redis.kill().await;
        progress.failed_after(progress.failed(), CLIENTS).await;
        redis.spawn().await;
        progress.created_after(progress.created(), CLIENTS).await;
        progress.stop();
    });
    let bodies = created(&calls);
    for (_, body) in &bodies {
        eventually("a created cache works", || redis_works(body)).await;
    }
    let active = settle_and_check_rows(&host, &bodies).await;
    assert_matches("users", &redis.tenants().await, &active);
}

/// A MongoDB-wire server of the test's own, with an admin user like the shared one.
struct PrivateMongo {
    port: u16,
    dir: PathBuf,
    password: String,
    child: Option<Child>,
}

impl PrivateMongo {
    async fn start() -> Self {
        let mut mongo = Self {
            port: free_port().unwrap(),
            dir: server_dir("mongo"),
            password: uuid::Uuid::new_v4().simple().to_string(),
            child: None,
        };
        // The admin user is made on a server without authentication, as scripts/lib.sh does.
        mongo.spawn(false).await;
        mongodb::Client::with_uri_str(mongo.url(false))
            .await
            .unwrap()
            .database("admin")
            .run_command(doc! {"createUser": "admin", "pwd": &mongo.password, "roles": ["root"]})
            .await
            .expect("admin user");
        mongo.stop().await;
        mongo.spawn(true).await;
        mongo
    }

    fn url(&self, auth: bool) -> String {
        let login = if auth {
            format!("admin:{}@", self.password)
        } else {
            String::new()
        };
        format!(
            "mongodb://{login}127.0.0.1:{}/?authSource=admin&directConnection=true&serverSelectionTimeoutMS=500",
            self.port
        )
    }

    async fn spawn(&mut self, auth: bool) {
        let mut command = Command::new(
            PathBuf::from(env("INSTANODE_TEST_PYTHON")).with_file_name("secantusd-py"),
        );
        command
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--storage-path")
            .arg(self.dir.join("db"))
            .stdout(log_file(self.dir.join("server.log")))
            .stderr(log_file(self.dir.join("server.log")))
            .kill_on_drop(true);
        if auth {
            command.arg("--auth");
        }
        self.child = Some(command.spawn().expect("the MongoDB-wire server starts"));
        let url = self.url(auth);
        eventually("the private MongoDB-wire server answers", || async {
            let client = mongodb::Client::with_uri_str(&url)
                .await
                .map_err(|e| e.to_string())?;
            client
                .list_database_names()
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .await;
    }

    /// SIGTERM, so the server writes out what it holds.
    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
    }

    async fn admin(&self) -> mongodb::Client {
        mongodb::Client::with_uri_str(self.url(true)).await.unwrap()
    }

    /// Of `ids` (hex), those whose user exists on the server.
    async fn users(&self, ids: impl Iterator<Item = &String>) -> BTreeSet<String> {
        let admin = self.admin().await;
        let mut present = BTreeSet::new();
        for id in ids {
            let info = admin
                .database(&format!("db_{id}"))
                .run_command(doc! {"usersInfo": format!("u_{id}")})
                .await
                .unwrap();
            if !info.get_array("users").unwrap().is_empty() {
                present.insert(id.clone());
            }
        }
        present
    }

    /// Resource ids (hex) with a database on the server.
    async fn databases(&self) -> BTreeSet<String> {
        let names = self.admin().await.list_database_names().await.unwrap();
        names
            .iter()
            .filter_map(|n| n.strip_prefix("db_"))
            .map(str::to_string)
            .collect()
    }
}

/// Logs in with the resource's own URL and stores a document.
async fn mongo_works(body: &Created) -> Result<(), String> {
    let client = mongodb::Client::with_uri_str(&body.connection_url)
        .await
        .map_err(|e| e.to_string())?;
    client
        .database(body.field("database"))
        .collection::<Document>("c")
        .insert_one(doc! {"k": 1})
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_mongo_server_stopped_mid_provision_leaves_no_orphans() {
    let mut mongo = PrivateMongo::start().await;
    let host = TestHost::start(HostOptions::only(ProviderSpec::mongo_on(
        &mongo.url(true),
        &mongo.port.to_string(),
    )))
    .await;
    let progress = Progress::default();
    let (calls, ()) = tokio::join!(load(&host, &["nosql"], &progress), async {
        progress.created_after(0, 3).await;
        // Stopped rather than killed: this server keeps recent writes (users included) in
        // memory, so a SIGKILL loses resources it had confirmed, which no host can prevent.
        mongo.stop().await;
        progress.failed_after(progress.failed(), CLIENTS).await;
        mongo.spawn(true).await;
        progress.created_after(progress.created(), CLIENTS).await;
        progress.stop();
    });
    let bodies = created(&calls);
    for (_, body) in &bodies {
        eventually("a created database works", || mongo_works(body)).await;
    }
    let active = settle_and_check_rows(&host, &bodies).await;
    let rows = settled_rows(&host).await;
    assert_matches("users", &mongo.users(rows.keys()).await, &active);
    // Every active resource stored a document above, so it has its database.
    assert_matches("databases", &mongo.databases().await, &active);
}

/// Logs in with the resource's credentials and proves it with a round trip.
async fn nats_works(body: &Created) -> Result<(), String> {
    let creds = body.field("credentials.creds_file");
    instanode_tests::nats::login(&body.connection_url, creds)
        .await
        .map(drop)
}

#[tokio::test]
async fn a_nats_server_killed_mid_provision_leaves_no_orphans() {
    let mut host = TestHost::start(HostOptions::only(ProviderSpec::nats())).await;
    let mut server = host.nats.take().expect("the host's NATS server");
    // The system account, and any the host made for itself.
    let before: BTreeSet<String> = server.stored_accounts().into_iter().collect();
    let progress = Progress::default();
    let (calls, ()) = tokio::join!(load(&host, &["queue"], &progress), async {
        progress.created_after(0, 3).await;
        server.kill().await;
        progress.failed_after(progress.failed(), CLIENTS).await;
        server.restart().await.expect("NATS restarts");
        progress.created_after(progress.created(), CLIENTS).await;
        progress.stop();
    });
    let bodies = created(&calls);
    for (_, body) in &bodies {
        eventually("a created queue works", || nats_works(body)).await;
    }
    settle_and_check_rows(&host, &bodies).await;
    // Accounts are named by their public key, which only the answers tell.
    let answered: BTreeSet<String> = bodies
        .iter()
        .map(|(_, b)| b.field("credentials.key_id").to_string())
        .collect();
    let stored: BTreeSet<String> = server.stored_accounts().into_iter().collect();
    assert_matches("accounts", &(&stored - &before), &answered);
}

/// An S3 server (s3s-fs, as `scripts/lib.sh` runs) of the test's own, storing objects as
/// files under its directory.
struct PrivateS3 {
    port: u16,
    root: PathBuf,
    access_key: String,
    secret_key: String,
    child: Option<Child>,
}

impl PrivateS3 {
    const BUCKET: &str = "faults";

    async fn start() -> Self {
        let root = server_dir("s3").join("root");
        std::fs::create_dir_all(root.join(Self::BUCKET)).unwrap();
        let mut s3 = Self {
            port: free_port().unwrap(),
            root,
            access_key: uuid::Uuid::new_v4().simple().to_string()[..20].to_string(),
            secret_key: uuid::Uuid::new_v4().simple().to_string(),
            child: None,
        };
        s3.spawn().await;
        s3
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        // Installed next to the test virtualenv (`$INSTANODE_CACHE_DIR/s3s-fs`).
        let cache = PathBuf::from(env("INSTANODE_TEST_PYTHON"));
        let binary = cache
            .ancestors()
            .nth(3)
            .expect("the cache directory")
            .join("s3s-fs/bin/s3s-fs");
        self.child = Some(
            Command::new(binary)
                .arg("--host")
                .arg("127.0.0.1")
                .arg("--port")
                .arg(self.port.to_string())
                .arg("--access-key")
                .arg(&self.access_key)
                .arg("--secret-key")
                .arg(&self.secret_key)
                .arg(&self.root)
                .stdout(log_file(self.root.with_file_name("server.log")))
                .stderr(log_file(self.root.with_file_name("server.log")))
                .kill_on_drop(true)
                .spawn()
                .expect("s3s-fs starts"),
        );
        let url = self.endpoint();
        // Unsigned requests are refused with 403: the server is up.
        eventually("the private S3 server answers", || async {
            match reqwest::get(&url).await {
                Ok(r) if r.status().as_u16() == 403 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }

    /// SIGKILL: the server gets no chance to finish anything.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Resource ids (hex) with objects under their prefix.
    fn tenants(&self) -> BTreeSet<String> {
        std::fs::read_dir(self.root.join(Self::BUCKET))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_prefix("t_").map(str::to_string))
            .collect()
    }
}

/// Uploads an object through a URL the host presigns for the resource.
async fn storage_works(host: &TestHost, body: &Created) -> Result<(), String> {
    let token = body.token;
    let presigned = host
        .post_json(
            &format!("/storage/{token}/presign"),
            json!({"operation": "PUT", "key": "after-restart.txt"}),
        )
        .await;
    let url = Presigned::deserialize(&presigned.body)
        .map_err(|_| presigned.body.to_string())?
        .url;
    let put = reqwest::Client::new()
        .put(url)
        .body("kept")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if put.status().is_success() {
        Ok(())
    } else {
        Err(format!("upload answered {}", put.status()))
    }
}

#[tokio::test]
async fn an_s3_server_killed_mid_provision_leaves_storage_consistent() {
    let mut s3 = PrivateS3::start().await;
    let host = TestHost::start(HostOptions::only(ProviderSpec::spaces_on(
        &s3.endpoint(),
        PrivateS3::BUCKET,
        &s3.access_key,
        &s3.secret_key,
    )))
    .await;
    let progress = Progress::default();
    let (calls, ()) = tokio::join!(load(&host, &["storage"], &progress), async {
        progress.created_after(0, 3).await;
        s3.kill().await;
        // A prefix exists once something is stored under it: provisioning needs no S3.
        progress.created_after(progress.created(), CLIENTS).await;
        s3.spawn().await;
        progress.stop();
    });
    let bodies: Vec<(&str, Created)> = calls
        .iter()
        .map(|call| {
            let reply = call.reply.as_ref().expect("the host answers every call");
            (call.kind, reply.expect(201))
        })
        .collect();
    for (_, body) in &bodies {
        eventually("a created storage takes uploads", || {
            storage_works(&host, body)
        })
        .await;
    }
    let active = settle_and_check_rows(&host, &bodies).await;
    assert_matches("prefixes", &s3.tenants(), &active);
}

// ---------------------------------------------------------------------------------------
// The host and the metadata database.

/// The Redis user of a resource on the shared test server.
async fn redis_user_exists(id: &str) -> bool {
    let acl: redis::Value = redis::cmd("ACL")
        .arg("GETUSER")
        .arg(format!("t_{id}"))
        .query_async(&mut redis_admin().await)
        .await
        .unwrap();
    acl != redis::Value::Nil
}

/// Whether the resource's backend objects exist on the shared test servers: all of them
/// (true), none (false); a mix fails the test.
async fn shared_backend_has(kind: &str, id: &str) -> bool {
    match kind {
        "db" => match backend_objects(id).await {
            (true, true) => true,
            (false, false) => false,
            partial => panic!("{id}: half a resource (role, database) = {partial:?}"),
        },
        "cache" => redis_user_exists(id).await,
        other => unreachable!("kind {other}"),
    }
}

/// Waits until no session on the test cluster still works on one of `ids`: a statement the
/// killed host sent may still be running, and could create an object after the clean-up.
async fn until_no_statement_mentions(ids: &[String]) {
    let mut admin = instanode_tests::superuser("postgres").await;
    let started = Instant::now();
    loop {
        let busy: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
              WHERE pid <> pg_backend_pid() AND state = 'active'
                AND query ~ ANY (SELECT unnest($1::text[]))",
        )
        .bind(ids)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if busy == 0 {
            return;
        }
        assert!(started.elapsed() < PATIENCE, "statements still running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn host_options(metadata_db: Option<String>) -> HostOptions {
    HostOptions {
        providers: vec![ProviderSpec::postgres(&["db"]), ProviderSpec::redis()],
        metadata_db,
        ..HostOptions::default()
    }
}

#[tokio::test]
async fn a_host_killed_mid_burst_leaves_every_resource_working_or_undone() {
    let first = TestHost::start(host_options(None)).await;
    let progress = Progress::default();
    let (calls, ()) = tokio::join!(load(&first, &["db", "cache"], &progress), async {
        progress.created_after(0, CLIENTS).await;
        // Redis stops answering for two seconds (every client, this one too), so cache
        // provisions stay under way: a provision takes milliseconds, and the kill could
        // otherwise land between two of them.
        let redis = redis::Client::open(instanode_tests::env("INSTANODE_TEST_REDIS_URL")).unwrap();
        let mut redis = redis.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("CLIENT")
            .arg(&["PAUSE", "2000", "ALL"])
            .query_async(&mut redis)
            .await
            .unwrap();
        // Killed while sagas are under way, as the metadata shows.
        let mut meta = first.metadata().await;
        let started = Instant::now();
        loop {
            let pending: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM resources WHERE status = 'pending' AND kind = 'cache'",
            )
            .fetch_one(&mut meta)
            .await
            .unwrap();
            if pending >= 2 {
                break;
            }
            assert!(started.elapsed() < PATIENCE, "no provision under way");
        }
        first.kill_hard();
        progress.stop();
    });
    // What the crash interrupted: rows still pending (their sagas died with the host).
    let pending: Vec<String> = sqlx::query_scalar(
        "SELECT replace(id::text, '-', '') FROM resources WHERE status = 'pending'",
    )
    .fetch_all(&mut first.metadata().await)
    .await
    .unwrap();
    println!("{} sagas interrupted", pending.len());
    assert!(!pending.is_empty(), "the kill interrupted no provision");
    until_no_statement_mentions(&pending).await;

    let second = TestHost::start(host_options(Some(first.metadata_db.clone()))).await;
    settle(&second).await;
    let rows = settled_rows(&second).await;
    let kinds: BTreeMap<String, String> =
        sqlx::query_as("SELECT replace(id::text, '-', ''), kind FROM resources")
            .fetch_all(&mut second.metadata().await)
            .await
            .unwrap()
            .into_iter()
            .collect();
    for (id, status) in &rows {
        let exists = shared_backend_has(&kinds[id], id).await;
        assert_eq!(
            exists,
            status == "active",
            "{} {id} is {status} but its backend objects {}",
            kinds[id],
            if exists { "exist" } else { "are gone" }
        );
    }
    // An answered resource was kept, and works with what the client was told.
    let mut answered = 0;
    for call in &calls {
        let Some(reply) = call.reply.as_ref().filter(|r| r.status.as_u16() == 201) else {
            continue;
        };
        answered += 1;
        let created: Created = reply.json();
        assert_eq!(rows[&hex(&created)], "active", "{}", reply.body);
        match call.kind {
            "db" => pg_works(&created).await,
            _ => redis_works(&created).await,
        }
        .expect("an answered resource works after the crash");
    }
    assert!(answered >= CLIENTS);
    // The replacement provisions as usual.
    for kind in ["db", "cache"] {
        second.provision(kind, "after-crash").await;
    }
}

#[tokio::test]
async fn a_metadata_database_restarted_under_load_recovers_without_a_host_restart() {
    let _cluster = OUTAGE_CLUSTER.lock().await;
    let host = TestHost::start(HostOptions {
        providers: vec![ProviderSpec::postgres(&["db"])],
        metadata_server: Some(OutageCluster::url()),
        ..HostOptions::default()
    })
    .await;
    let progress = Progress::default();
    let mut cluster = OutageCluster { down: false };
    let unhealthy = AtomicUsize::new(0);
    let probes = async {
        // Liveness does not depend on the metadata database.
        while !progress.stop.load(Ordering::SeqCst) {
            let health = host.get("/healthz").await;
            if health.status.as_u16() != 200 {
                unhealthy.fetch_add(1, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (calls, (), ()) = tokio::join!(load(&host, &["db"], &progress), probes, async {
        progress.created_after(0, 3).await;
        cluster.stop().await;
        progress.failed_after(progress.failed(), CLIENTS).await;
        cluster.start().await;
        progress.created_after(progress.created(), CLIENTS).await;
        progress.stop();
    });
    assert_eq!(unhealthy.load(Ordering::SeqCst), 0, "/healthz failed");
    let bodies = created(&calls);
    for (_, body) in &bodies {
        pg_works(body).await.expect("a created database works");
    }
    let active = settle_and_check_rows(&host, &bodies).await;
    // The tenants live on the shared cluster: every row this host wrote is checked there.
    for (id, status) in settled_rows(&host).await {
        let (role, database) = backend_objects(&id).await;
        assert_eq!(
            (role, database),
            (active.contains(&id), active.contains(&id)),
            "{id} is {status}"
        );
    }
}
