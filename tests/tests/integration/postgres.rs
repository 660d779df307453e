//! `POST /db/new` and `POST /vector/new` against the real PostgreSQL server, checked with
//! real clients (sqlx and psql).

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use instanode::api::schema::Created;
use instanode_tests::{HostOptions, ProviderFields, TestHost, backend_objects, superuser};
use serde_json::Value;
use sqlx::{Connection, PgConnection, Row};

fn url(body: &Created) -> &str {
    body.connection_url.as_str()
}

#[tokio::test]
async fn db_new_returns_a_database_a_real_client_can_use() {
    let host = TestHost::start(HostOptions::default()).await;
    let reply = host
        .post(
            "/db/new",
            Some("application/json"),
            br#"{"name":"prod-db","colour":"blue"}"#.to_vec(),
            &[("x-request-id", "agent-req-1")],
        )
        .await;
    assert_eq!(reply.headers["x-request-id"], "agent-req-1");
    assert_eq!(reply.headers["cache-control"], "no-store");
    // The response carries every field of the contract (`ok` is `true`: `Created` reads it).
    let body: Created = reply.expect(201);
    assert_eq!(body.name, "prod-db");
    assert_eq!(body.tier, "anonymous");
    assert_eq!(body.env, "development");
    assert_eq!(body.limits.values["connections"], 2);
    assert_eq!(body.limits.values["storage_mb"], 10);
    assert_eq!(body.ignored_fields, Some(vec!["colour".to_string()]));
    for (field, value) in [
        ("id", Some(body.id.to_string())),
        ("token", Some(body.token.to_string())),
        ("internal_url", body.internal_url.clone()),
        ("expires_at", body.expires_at.clone()),
        ("note", Some(body.note.clone())),
        ("upgrade", Some(body.upgrade.clone())),
        ("upgrade_jwt", Some(body.upgrade_jwt.clone())),
        ("claim_url", Some(body.claim_url.clone())),
    ] {
        assert!(
            value.is_some_and(|v| !v.is_empty()),
            "missing {field}: {body:?}"
        );
    }
    let jwt = body.upgrade_jwt.as_str();
    let claims = jwt.split('.').nth(1).expect("a JWT has three parts");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    assert_eq!(
        claims["sub"],
        body.token.to_string(),
        "the upgrade token names the resource token"
    );
    assert_eq!(claims["kind"], "db");
    assert_eq!(body.upgrade, format!("{}/start?t={jwt}", host.url));
    assert!(url(&body).starts_with("postgres://usr_"));

    // sqlx: create, write, read.
    let mut conn = PgConnection::connect(url(&body))
        .await
        .expect("tenant connects");
    sqlx::query("CREATE TABLE expenses (id serial PRIMARY KEY, what text, cents int)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO expenses (what, cents) VALUES ($1, $2)")
        .bind("coffee")
        .bind(350)
        .execute(&mut conn)
        .await
        .unwrap();
    let row = sqlx::query("SELECT what, cents FROM expenses")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>(0), "coffee");
    assert_eq!(row.get::<i32, _>(1), 350);
    conn.close().await.unwrap();

    // psql, the client an agent is most likely to reach for.
    let out = Command::new("psql")
        .arg(url(&body))
        .args(["-tAc", "SELECT what || '=' || cents FROM expenses"])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "coffee=350");

    // The metadata row is active and holds no credential in clear.
    let mut meta = host.metadata().await;
    let (status, sealed): (String, Vec<u8>) = sqlx::query_as(
        "SELECT status::text, sealed_credentials FROM resources WHERE id = $1::uuid",
    )
    .bind(body.id.to_string())
    .fetch_one(&mut meta)
    .await
    .unwrap();
    assert_eq!(status, "active");
    let password = url(&body)
        .split(':')
        .nth(2)
        .unwrap()
        .split('@')
        .next()
        .unwrap();
    assert!(
        !sealed
            .windows(password.len())
            .any(|w| w == password.as_bytes()),
        "credentials are sealed"
    );
}

#[tokio::test]
async fn tenants_are_isolated_and_connection_limited() {
    let host = TestHost::start(HostOptions::default()).await;
    let a = host.provision("db", "tenant-a").await;
    let b = host.provision("db", "tenant-b").await;
    let db_of = |body: &Created| url(body).rsplit('/').next().unwrap().to_string();

    let mut a_conn = PgConnection::connect(url(&a)).await.unwrap();
    sqlx::raw_sql("CREATE TABLE secrets (v text); INSERT INTO secrets VALUES ('a-only')")
        .execute(&mut a_conn)
        .await
        .unwrap();
    let mut b_conn = PgConnection::connect(url(&b)).await.unwrap();
    sqlx::raw_sql("CREATE TABLE secrets (v text); INSERT INTO secrets VALUES ('b-only')")
        .execute(&mut b_conn)
        .await
        .unwrap();

    // B's credentials cannot open A's database (so cannot read, write, list or drop in it),
    // and A's cannot open B's.
    let b_into_a = instanode_tests::with_database(url(&b), &db_of(&a));
    let err = PgConnection::connect(&b_into_a)
        .await
        .expect_err("B must not reach A's database");
    assert!(err.to_string().contains("permission denied"), "{err}");
    let a_into_b = instanode_tests::with_database(url(&a), &db_of(&b));
    assert!(
        PgConnection::connect(&a_into_b).await.is_err(),
        "A must not reach B's database"
    );

    // Nor the shared databases: the maintenance database, the host's metadata, and the
    // warm pool of databases waiting for future tenants.
    let pooled = a_pooled_database().await;
    for shared in [
        "postgres",
        "template1",
        host.metadata_db.as_str(),
        pooled.as_str(),
    ] {
        let into = instanode_tests::with_database(url(&a), shared);
        assert!(
            PgConnection::connect(&into).await.is_err(),
            "tenant reached {shared}"
        );
    }

    // A cannot become B, drop B's database, or create roles and databases.
    let b_role = url(&b)
        .trim_start_matches("postgres://")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    for statement in [
        format!("SET ROLE \"{b_role}\""),
        format!("DROP DATABASE \"{}\"", db_of(&b)),
        "CREATE ROLE intruder".to_string(),
        "CREATE DATABASE intruder".to_string(),
    ] {
        assert!(
            sqlx::query(&statement).execute(&mut a_conn).await.is_err(),
            "A could run: {statement}"
        );
    }
    let still: String = sqlx::query_scalar("SELECT v FROM secrets")
        .fetch_one(&mut b_conn)
        .await
        .unwrap();
    assert_eq!(still, "b-only");
    b_conn.close().await.unwrap();

    // Anonymous tier: two connections at once, the third refused.
    let second = PgConnection::connect(url(&a))
        .await
        .expect("second connection");
    let third = PgConnection::connect(url(&a))
        .await
        .expect_err("third connection must be refused");
    assert!(
        third.to_string().contains("too many connections"),
        "{third}"
    );
    drop(second);
    drop(a_conn);
}

#[tokio::test]
async fn vector_new_supports_pgvector_indexes_and_nearest_neighbour() {
    let host = TestHost::start(HostOptions::default()).await;
    let body = host.provision("vector", "embeddings").await;
    assert_eq!(body.field("extension"), "pgvector");
    let mut conn = PgConnection::connect(url(&body)).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE items (id int PRIMARY KEY, label text, embedding vector(3));
         INSERT INTO items VALUES (1, 'north', '[0,1,0]'), (2, 'east', '[1,0,0]'), (3, 'up', '[0,0,1]');
         CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops);
         CREATE INDEX items_ivf ON items USING ivfflat (embedding vector_cosine_ops) WITH (lists = 1);",
    )
    .execute(&mut conn)
    .await
    .expect("vector schema and both index kinds");
    let nearest: String =
        sqlx::query_scalar("SELECT label FROM items ORDER BY embedding <-> '[0.9,0.1,0]' LIMIT 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(nearest, "east");
    let indexes: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_indexes WHERE tablename = 'items' AND indexname IN ('items_hnsw', 'items_ivf')")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(indexes, 2);

    // A plain database does not get the extension.
    let plain = host.provision("db", "plain").await;
    let mut plain_conn = PgConnection::connect(url(&plain)).await.unwrap();
    let has_vector: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')")
            .fetch_one(&mut plain_conn)
            .await
            .unwrap();
    assert!(!has_vector);
}

#[tokio::test]
async fn concurrent_provisions_all_succeed_and_are_distinct() {
    let host = TestHost::start(HostOptions::default()).await;
    let calls = (0..12).map(|i| {
        let host = &host;
        async move {
            host.provision(
                if i % 2 == 0 { "db" } else { "vector" },
                &format!("burst-{i}"),
            )
            .await
        }
    });
    let bodies = futures::future::join_all(calls).await;
    let mut ids: Vec<uuid::Uuid> = bodies.iter().map(|b| b.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 12);
    for body in &bodies {
        let (role, database) = backend_objects(&body.id.to_string()).await;
        assert!(role && database, "role and database exist for {}", body.id);
    }
}

/// The name of a database in the provider's warm pool (waits for the pool to fill).
async fn a_pooled_database() -> String {
    let mut admin = superuser("postgres").await;
    for _ in 0..200 {
        let name: Option<String> = sqlx::query_scalar(
            "SELECT datname::text FROM pg_database WHERE starts_with(datname::text, 'instanode_pool_') LIMIT 1",
        )
        .fetch_optional(&mut admin)
        .await
        .unwrap();
        if let Some(name) = name {
            return name;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the warm pool stayed empty");
}
