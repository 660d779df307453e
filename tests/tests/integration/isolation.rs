//! The isolation matrix: two teams each hold one resource of every kind; with only its own
//! credentials (and B's names, which are not secret), tenant A tries every cross-tenant
//! operation the backends offer on B's resources: read, write, list, delete, admin. The
//! test prints the matrix (attempts and denials per credential and target) and fails on any
//! attempt that succeeded.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use instanode::api::schema::{Created, Presigned};
use instanode_tests::{HostOptions, ProviderFields, ProviderSpec, TestHost};
use mongodb::bson::{Document, doc};
use serde_json::json;
use sqlx::{Connection, PgConnection};

const KINDS: [&str; 7] = [
    "db", "vector", "cache", "nosql", "queue", "storage", "webhook",
];

/// Every attempt, by (credential kind, target kind).
#[derive(Default)]
struct Matrix {
    cells: BTreeMap<(&'static str, &'static str), Vec<(String, bool)>>,
}

impl Matrix {
    /// Records that `operation` with A's `credential` on B's `target` was denied or not.
    fn record(
        &mut self,
        credential: &'static str,
        target: &'static str,
        operation: &str,
        denied: bool,
    ) {
        self.cells
            .entry((credential, target))
            .or_default()
            .push((operation.to_string(), denied));
    }

    fn report(&self) -> String {
        let mut out = String::from(
            "| A's credential | B's resource | attempts | denied |\n|---|---|---|---|\n",
        );
        for ((credential, target), attempts) in &self.cells {
            let denied = attempts.iter().filter(|(_, d)| *d).count();
            out.push_str(&format!(
                "| {credential} | {target} | {} | {denied} |\n",
                attempts.len()
            ));
        }
        out
    }

    fn successes(&self) -> Vec<String> {
        self.cells
            .iter()
            .flat_map(|((credential, target), attempts)| {
                attempts
                    .iter()
                    .filter(|(_, denied)| !denied)
                    .map(move |(op, _)| format!("{credential} -> {target}: {op}"))
            })
            .collect()
    }
}

/// One team: its session and one resource of every kind.
struct Tenant {
    bearer: String,
    resources: BTreeMap<&'static str, Created>,
}

impl Tenant {
    async fn new(host: &TestHost, label: &str) -> Self {
        let account = host.new_account(label).await;
        let (email, bearer) = (account.email, account.bearer);
        // A paid tier: one of every kind is more than the free tier's daily provisions.
        host.set_team_tier(&email, "hobby").await;
        let mut resources = BTreeMap::new();
        for kind in KINDS {
            let reply = host
                .post(
                    &format!("/{kind}/new"),
                    Some("application/json"),
                    json!({ "name": format!("{label}-{kind}") })
                        .to_string()
                        .into_bytes(),
                    &[("authorization", &bearer)],
                )
                .await;
            assert_eq!(reply.status.as_u16(), 201, "{kind}: {}", reply.body);
            resources.insert(kind, reply.json());
        }
        Self { bearer, resources }
    }

    fn get(&self, kind: &str) -> &Created {
        &self.resources[kind]
    }

    fn url(&self, kind: &str) -> &str {
        &self.get(kind).connection_url
    }
}

/// `user:password@rest` of a URL with credentials.
fn userinfo(url: &str) -> (String, String, String) {
    let rest = url.split_once("://").unwrap().1;
    let (credentials, server) = rest.rsplit_once('@').unwrap();
    let (user, password) = credentials.split_once(':').unwrap();
    (user.to_string(), password.to_string(), server.to_string())
}

fn database_of(url: &str) -> String {
    url.rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn no_tenant_reaches_another_through_any_credential() {
    let host = TestHost::start(HostOptions {
        providers: vec![
            ProviderSpec::postgres(&["db", "vector"]),
            ProviderSpec::redis(),
            ProviderSpec::mongo(),
            ProviderSpec::nats(),
            ProviderSpec::spaces(),
        ],
        ..HostOptions::default()
    })
    .await;
    let a = Tenant::new(&host, "tenant-a").await;
    let b = Tenant::new(&host, "tenant-b").await;
    let mut matrix = Matrix::default();

    postgres(&a, &b, &mut matrix).await;
    redis(&a, &b, &mut matrix).await;
    mongo(&a, &b, &mut matrix).await;
    nats(&a, &b, &mut matrix).await;
    storage(&host, &a, &b, &mut matrix).await;
    logins_across_backends(&a, &b, &mut matrix).await;
    api(&host, &a, &b, &mut matrix).await;

    println!("{}", matrix.report());
    let successes = matrix.successes();
    assert!(
        successes.is_empty(),
        "cross-tenant operations that worked: {successes:#?}\n{}",
        matrix.report()
    );
    let attempts: usize = matrix.cells.values().map(Vec::len).sum();
    assert!(attempts > 80, "only {attempts} attempts");
}

/// db and vector: A's role against B's databases of both kinds.
async fn postgres(a: &Tenant, b: &Tenant, matrix: &mut Matrix) {
    for credential in ["db", "vector"] {
        let mut own = PgConnection::connect(a.url(credential)).await.unwrap();
        for target in ["db", "vector"] {
            let b_url = b.url(target);
            let b_database = database_of(b_url);
            let (b_role, _, _) = userinfo(b_url);
            // Every read, write, list and delete inside B's database needs a connection.
            let into_b = instanode_tests::with_database(a.url(credential), &b_database);
            matrix.record(
                credential,
                target,
                "connect to B's database (read/write/list/delete inside it)",
                PgConnection::connect(&into_b).await.is_err(),
            );
            for (operation, statement) in [
                (
                    "delete: drop B's database",
                    format!("DROP DATABASE \"{b_database}\""),
                ),
                ("admin: become B's role", format!("SET ROLE \"{b_role}\"")),
                (
                    "admin: take B's role",
                    format!("GRANT \"{b_role}\" TO CURRENT_USER"),
                ),
                (
                    "admin: reset B's password",
                    format!("ALTER ROLE \"{b_role}\" PASSWORD 'taken'"),
                ),
                (
                    "admin: rename B's database",
                    format!("ALTER DATABASE \"{b_database}\" RENAME TO stolen"),
                ),
                (
                    "admin: kill B's sessions",
                    format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{b_role}' AND pg_terminate_backend(pid)"
                    ),
                ),
                ("admin: create a role", "CREATE ROLE intruder".to_string()),
                (
                    "admin: change what sessions in B's database run (search_path)",
                    format!("ALTER DATABASE \"{b_database}\" SET search_path = public, pg_catalog"),
                ),
                (
                    "admin: make sessions in B's database run as A (role)",
                    format!(
                        "ALTER DATABASE \"{b_database}\" SET role = '{}'",
                        userinfo(a.url(credential)).0
                    ),
                ),
                (
                    "admin: change what B's sessions run (ALTER ROLE ... SET)",
                    format!("ALTER ROLE \"{b_role}\" SET search_path = public"),
                ),
            ] {
                let result = sqlx::query(&statement).execute(&mut own).await;
                // The terminate query runs but must find nothing it may end.
                let denied = match result {
                    Err(_) => true,
                    Ok(done) => operation.starts_with("admin: kill") && done.rows_affected() == 0,
                };
                matrix.record(credential, target, operation, denied);
            }
            // B still reaches its own database with its own credentials.
            assert!(
                PgConnection::connect(b_url).await.is_ok(),
                "B lost its {target}"
            );
        }
        own.close().await.ok();
    }
}

async fn redis(a: &Tenant, b: &Tenant, matrix: &mut Matrix) {
    let client = |url: &str| redis::Client::open(url).unwrap();
    let mut own = client(a.url("cache"))
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut theirs = client(b.url("cache"))
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let b_prefix = b.get("cache").field("key_prefix").to_string();
    let b_key = format!("{b_prefix}secret");
    let _: () = redis::cmd("SET")
        .arg(&b_key)
        .arg("b-data")
        .query_async(&mut theirs)
        .await
        .unwrap();
    let own_key = format!("{}copy", a.get("cache").field("key_prefix"));
    for (operation, args) in [
        ("read: GET", vec!["GET", b_key.as_str()]),
        ("read: DUMP", vec!["DUMP", &b_key]),
        ("read: copy into own keys", vec!["COPY", &b_key, &own_key]),
        ("write: SET", vec!["SET", &b_key, "x"]),
        ("write: APPEND", vec!["APPEND", &b_key, "x"]),
        (
            "write: PUBLISH on B's channel",
            vec!["PUBLISH", &b_key, "x"],
        ),
        ("list: KEYS", vec!["KEYS", "*"]),
        ("list: SCAN", vec!["SCAN", "0"]),
        ("list: DBSIZE", vec!["DBSIZE"]),
        ("delete: DEL", vec!["DEL", &b_key]),
        ("delete: UNLINK", vec!["UNLINK", &b_key]),
        ("delete: FLUSHALL", vec!["FLUSHALL"]),
        (
            "admin: ACL SETUSER",
            vec!["ACL", "SETUSER", "intruder", "on", "+@all"],
        ),
        ("admin: CONFIG SET", vec!["CONFIG", "SET", "maxmemory", "0"]),
        (
            "admin: CLIENT KILL",
            vec!["CLIENT", "KILL", "TYPE", "normal"],
        ),
        (
            "list: B's key names through CLIENT TRACKING BCAST",
            vec!["CLIENT", "TRACKING", "ON", "BCAST"],
        ),
        (
            "list: server-wide key counts (MEMORY STATS)",
            vec!["MEMORY", "STATS"],
        ),
        (
            "list: keys in a slot (CLUSTER GETKEYSINSLOT)",
            vec!["CLUSTER", "GETKEYSINSLOT", "0", "10"],
        ),
    ] {
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        let result: redis::RedisResult<redis::Value> = cmd.query_async(&mut own).await;
        matrix.record("cache", "cache", operation, result.is_err());
    }
    let kept: String = redis::cmd("GET")
        .arg(&b_key)
        .query_async(&mut theirs)
        .await
        .unwrap();
    assert_eq!(kept, "b-data");
}

async fn mongo(a: &Tenant, b: &Tenant, matrix: &mut Matrix) {
    let b_name = b.get("nosql").field("database").to_string();
    let theirs = mongodb::Client::with_uri_str(b.url("nosql")).await.unwrap();
    theirs
        .database(&b_name)
        .collection::<Document>("secrets")
        .insert_one(doc! {"k": "b-data"})
        .await
        .unwrap();
    let own = mongodb::Client::with_uri_str(a.url("nosql")).await.unwrap();
    let into_b = own.database(&b_name).collection::<Document>("secrets");
    matrix.record(
        "nosql",
        "nosql",
        "read: find",
        into_b.find_one(doc! {}).await.is_err(),
    );
    matrix.record(
        "nosql",
        "nosql",
        "write: insert",
        into_b.insert_one(doc! {"x": 1}).await.is_err(),
    );
    matrix.record(
        "nosql",
        "nosql",
        "write: update",
        into_b
            .update_many(doc! {}, doc! {"$set": {"k": "x"}})
            .await
            .is_err(),
    );
    matrix.record(
        "nosql",
        "nosql",
        "list: collections",
        own.database(&b_name).list_collection_names().await.is_err(),
    );
    matrix.record(
        "nosql",
        "nosql",
        "list: databases",
        own.list_database_names().await.is_err(),
    );
    matrix.record(
        "nosql",
        "nosql",
        "delete: delete_many",
        into_b.delete_many(doc! {}).await.is_err(),
    );
    matrix.record(
        "nosql",
        "nosql",
        "delete: drop collection",
        into_b.drop().await.is_err(),
    );
    matrix.record(
        "nosql",
        "nosql",
        "delete: drop database",
        own.database(&b_name).drop().await.is_err(),
    );
    let (a_user, _, _) = userinfo(a.url("nosql"));
    let a_db = own.database(a.get("nosql").field("database"));
    let grant = a_db
        .run_command(
            doc! {"grantRolesToUser": &a_user, "roles": [{"role": "readWrite", "db": &b_name}]},
        )
        .await;
    matrix.record(
        "nosql",
        "nosql",
        "admin: grant itself B's database",
        grant.is_err(),
    );
    let create = a_db
        .run_command(doc! {"createUser": "intruder", "pwd": "x", "roles": []})
        .await;
    matrix.record("nosql", "nosql", "admin: create a user", create.is_err());
    let kept = theirs
        .database(&b_name)
        .collection::<Document>("secrets")
        .find_one(doc! {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.get_str("k").unwrap(), "b-data");
}

async fn nats_client(tenant: &Tenant) -> Result<async_nats::Client, String> {
    let creds = tenant.get("queue").field("credentials.creds_file");
    instanode_tests::nats::login(tenant.url("queue"), creds).await
}

async fn nats(a: &Tenant, b: &Tenant, matrix: &mut Matrix) {
    let own = nats_client(a).await.unwrap();
    let theirs = nats_client(b).await.unwrap();
    let js_b = jetstream::new(theirs.clone());
    js_b.create_stream(jetstream::stream::Config {
        name: "PRIVATE".into(),
        subjects: vec!["secret.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    // A listens to everything it can while B publishes.
    let mut everything = own.subscribe(">").await.unwrap();
    own.flush().await.unwrap();
    js_b.publish("secret.1", "for B only".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let heard = tokio::time::timeout(Duration::from_millis(500), everything.next()).await;
    matrix.record(
        "queue",
        "queue",
        "read: subscribe to every subject",
        heard.is_err(),
    );
    let js_a = jetstream::new(own.clone());
    let names: Vec<String> = js_a
        .stream_names()
        .filter_map(|n| async { n.ok() })
        .collect()
        .await;
    matrix.record(
        "queue",
        "queue",
        "list: streams",
        !names.contains(&"PRIVATE".to_string()),
    );
    matrix.record(
        "queue",
        "queue",
        "read: open B's stream",
        js_a.get_stream("PRIVATE").await.is_err(),
    );
    // A's publish on B's subject lands in A's account, never in B's stream.
    let _ = own.publish("secret.2", "intruder".into()).await;
    own.flush().await.ok();
    let mut stream = js_b.get_stream("PRIVATE").await.unwrap();
    let messages = stream.info().await.unwrap().state.messages;
    matrix.record(
        "queue",
        "queue",
        "write: publish into B's stream",
        messages == 1,
    );
    matrix.record(
        "queue",
        "queue",
        "delete: delete B's stream",
        js_a.delete_stream("PRIVATE").await.is_err(),
    );
    // A's seed with B's user JWT is not a login.
    let swapped = a.get("queue").field("credentials.creds_file").replace(
        a.get("queue").field("credentials.nats_jwt"),
        b.get("queue").field("credentials.nats_jwt"),
    );
    let login = match async_nats::ConnectOptions::with_credentials(&swapped) {
        Err(_) => true,
        Ok(options) => match tokio::time::timeout(
            Duration::from_secs(5),
            options
                .connection_timeout(Duration::from_secs(2))
                .connect(b.url("queue")),
        )
        .await
        {
            Ok(Ok(client)) => tokio::time::timeout(Duration::from_secs(3), client.flush())
                .await
                .map_or(true, |r| r.is_err()),
            _ => true,
        },
    };
    matrix.record(
        "queue",
        "queue",
        "admin: log in as B (B's JWT, A's seed)",
        login,
    );
    assert!(
        js_b.get_stream("PRIVATE").await.is_ok(),
        "B's stream survives"
    );
}

/// Storage has no backend credential: A presigns through the API with its own token.
async fn storage(host: &TestHost, a: &Tenant, b: &Tenant, matrix: &mut Matrix) {
    let presign = |tenant: &Tenant, operation: &str, key: &str| {
        let token = tenant.get("storage").token;
        let body = json!({"operation": operation, "key": key});
        async move {
            host.post_json(&format!("/storage/{token}/presign"), body)
                .await
        }
    };
    let http = reqwest::Client::new();
    let b_put = presign(b, "PUT", "secret.txt").await;
    let put = http
        .put(b_put.json::<Presigned>().url)
        .body("b-data")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let a_prefix = a.get("storage").field("prefix");
    let b_prefix = b.get("storage").field("prefix");
    // Keys that climb out of A's prefix are refused before anything is signed.
    for (operation, method) in [("read", "GET"), ("write", "PUT"), ("read: HEAD", "HEAD")] {
        let reply = presign(a, method, &format!("../../{b_prefix}secret.txt")).await;
        matrix.record(
            "storage",
            "storage",
            &format!("{operation}: presign a key outside its prefix"),
            reply.status.as_u16() == 400,
        );
    }
    // A's signed URLs re-pointed at B's prefix: the signature no longer matches.
    for (operation, method) in [("read", "GET"), ("write", "PUT"), ("delete", "DELETE")] {
        let signed = presign(
            a,
            if method == "DELETE" { "GET" } else { method },
            "secret.txt",
        )
        .await;
        let url = signed.json::<Presigned>().url.replace(a_prefix, b_prefix);
        let request = match method {
            "GET" => http.get(&url),
            "PUT" => http.put(&url).body("intruder"),
            _ => http.delete(&url),
        };
        let status = request.send().await.unwrap().status();
        matrix.record(
            "storage",
            "storage",
            &format!("{operation}: A's signed URL re-pointed at B's key"),
            status == 403,
        );
    }
    // Listing the bucket needs the bucket's key; a signed object URL cannot list.
    let signed = presign(a, "GET", "secret.txt").await;
    let url = signed.json::<Presigned>().url;
    let (base, query) = url.split_once('?').unwrap();
    let bucket = base.trim_end_matches(&format!("{a_prefix}secret.txt"));
    let list = http
        .get(format!("{bucket}?list-type=2&prefix={b_prefix}&{query}"))
        .send()
        .await
        .unwrap();
    matrix.record(
        "storage",
        "storage",
        "list: B's prefix with A's signature",
        list.status() == 403,
    );
    let kept = presign(b, "GET", "secret.txt").await;
    let body = http
        .get(kept.json::<Presigned>().url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "b-data");
}

/// A's user and password, tried at B's resource of every kind (B's database in the URL where
/// the backend has databases). Redis has no databases to name: A's login there is A's own,
/// and what it may touch is the ACL attempts above.
async fn logins_across_backends(a: &Tenant, b: &Tenant, matrix: &mut Matrix) {
    for credential in ["db", "vector", "cache", "nosql"] {
        let (user, password, _) = userinfo(a.url(credential));
        for target in ["db", "vector", "cache", "nosql"] {
            if credential == "cache" && target == "cache" {
                continue;
            }
            let (_, _, server) = userinfo(b.url(target));
            let scheme = b.url(target).split_once("://").unwrap().0;
            let forged = format!("{scheme}://{user}:{password}@{server}");
            let denied = match target {
                "db" | "vector" => PgConnection::connect(&forged).await.is_err(),
                "cache" => redis::Client::open(forged.as_str())
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .is_err(),
                _ => match mongodb::Client::with_uri_str(&forged).await {
                    Err(_) => true,
                    Ok(client) => client
                        .database(b.get("nosql").field("database"))
                        .list_collection_names()
                        .await
                        .is_err(),
                },
            };
            matrix.record(
                credential,
                target,
                "log in at B's resource with A's user and password",
                denied,
            );
        }
    }
}

/// The API: A's session on B's resources, even knowing B's tokens.
async fn api(host: &TestHost, a: &Tenant, b: &Tenant, matrix: &mut Matrix) {
    let listed = host
        .get_with("/api/v1/resources", &[("authorization", &a.bearer)])
        .await;
    for kind in KINDS {
        let token = b.get(kind).token.to_string();
        // The whole answer's text: B's token must appear nowhere in it.
        matrix.record(
            "session",
            kind,
            "list: B's resource in A's list",
            !listed.body.to_string().contains(&token),
        );
        let read = host
            .get_with(
                &format!("/api/v1/resources/{token}/credentials"),
                &[("authorization", &a.bearer)],
            )
            .await;
        matrix.record(
            "session",
            kind,
            "read: B's credentials",
            read.status.as_u16() == 404,
        );
        let rotate = host
            .post(
                &format!("/api/v1/resources/{token}/rotate-credentials"),
                None,
                Vec::new(),
                &[("authorization", &a.bearer)],
            )
            .await;
        matrix.record(
            "session",
            kind,
            "admin: rotate B's credentials",
            rotate.status.as_u16() == 404,
        );
    }
    // A webhook receiver's stored requests are read with its own token only.
    let a_token = a.get("webhook").token;
    let b_receive = b.get("webhook").field("receive_url");
    let path = &b_receive[b_receive.find("/webhook/").unwrap()..];
    let sent = host
        .post(path, Some("text/plain"), b"for B".to_vec(), &[])
        .await;
    assert!(sent.status.is_success(), "{}", sent.body);
    let a_requests = host
        .get(&format!("/api/v1/webhooks/{a_token}/requests"))
        .await;
    matrix.record(
        "webhook",
        "webhook",
        "read: B's deliveries through A's receiver",
        !a_requests.body.to_string().contains("for B"),
    );
}
