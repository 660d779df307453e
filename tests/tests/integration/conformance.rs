//! Provider conformance: the lifecycle every provider must honour, called in-process through
//! the host's registry against the real backend (create-or-adopt, usage, suspend and resume,
//! deprovision twice), plus the `kv` capability through a real component.

use instanode::api::schema::Created;
use instanode::app::App;
use instanode::config::Config;
use instanode::contract::types::{ProvisionRequest, ResourceRef};
use instanode_tests::{
    HostFiles, HostOptions, ProviderFields, ProviderSpec, TestHost, backend_objects,
};
use serde_json::json;
use sha2::Digest;
use sqlx::{Connection, PgConnection};

async fn in_process(options: &HostOptions) -> std::sync::Arc<App> {
    let files = HostFiles::create(options, 0).await.expect("host files");
    let config = Config::load(Some(&files.config_path())).expect("config");
    App::start(&config).await.expect("host starts")
}

#[tokio::test]
async fn postgres_provider_honours_the_lifecycle() {
    let app = in_process(&HostOptions::default()).await;
    let provider = app.registry.for_kind("db").expect("postgres serves db");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let limits = vec![
        ("connections".to_string(), 2),
        ("storage_mb".to_string(), 10),
    ];
    let request = ProvisionRequest {
        resource_id: id.clone(),
        name: "conformance".into(),
        kind: "db".into(),
        tier: "anonymous".into(),
        limits: limits.clone(),
        options: vec![],
    };

    // Create, then adopt: a retry with the same id succeeds and rotates the password.
    let first = provider
        .provision("conf-1", &request)
        .await
        .unwrap()
        .unwrap();
    let second = provider
        .provision("conf-2", &request)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(first.connection_url, second.connection_url);
    assert!(
        PgConnection::connect(&first.connection_url).await.is_err(),
        "old password revoked"
    );
    let mut conn = PgConnection::connect(&second.connection_url)
        .await
        .expect("adopted resource works");
    sqlx::raw_sql(
        "CREATE TABLE filler AS SELECT g, repeat('x', 500) AS pad FROM generate_series(1, 2000) g",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    let resource = ResourceRef {
        resource_id: id.clone(),
        kind: "db".into(),
        tier: "anonymous".into(),
        limits,
        state: second.state,
    };
    let usage = provider.usage("conf-3", &resource).await.unwrap().unwrap();
    let database_bytes = usage
        .extra
        .iter()
        .find(|(k, _)| k == "database_bytes")
        .map(|(_, v)| *v)
        .expect("database_bytes reported");
    assert!(
        database_bytes > 1_000_000,
        "pg_database_size: {database_bytes}"
    );
    assert!(
        usage.storage_bytes > 0 && usage.storage_bytes < database_bytes,
        "tenant data counted without the template: {}",
        usage.storage_bytes
    );
    assert_eq!(usage.connections, 1);

    // Suspend: reads and deletes keep working, writes and new tables are refused, even in
    // a session opened before. Resume: writes work again.
    provider
        .suspend("conf-4", &resource)
        .await
        .unwrap()
        .unwrap();
    let insert = "INSERT INTO filler SELECT g FROM generate_series(1, 10) g";
    assert!(
        sqlx::query(insert).execute(&mut conn).await.is_err(),
        "write refused in an open session"
    );
    let mut fresh = PgConnection::connect(&second.connection_url)
        .await
        .expect("a suspended tenant may still log in");
    assert!(
        sqlx::query("CREATE TABLE more (x int)")
            .execute(&mut fresh)
            .await
            .is_err()
    );
    assert!(
        sqlx::query("SET default_transaction_read_only = off")
            .execute(&mut fresh)
            .await
            .is_ok()
    );
    assert!(
        sqlx::query(insert).execute(&mut fresh).await.is_err(),
        "session settings do not undo it"
    );
    let deleted = sqlx::query("DELETE FROM filler WHERE g = 1")
        .execute(&mut fresh)
        .await
        .expect("deletes allowed");
    assert_eq!(deleted.rows_affected(), 1);
    drop(fresh);
    provider
        .suspend("conf-5", &resource)
        .await
        .unwrap()
        .unwrap();
    provider.resume("conf-6", &resource).await.unwrap().unwrap();
    provider
        .resume("conf-6b", &resource)
        .await
        .unwrap()
        .unwrap();
    let mut again = PgConnection::connect(&second.connection_url)
        .await
        .expect("resumed login");
    sqlx::query(insert)
        .execute(&mut again)
        .await
        .expect("writes work after resume");
    sqlx::query("CREATE TABLE more (x int)")
        .execute(&mut again)
        .await
        .expect("creates work after resume");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM filler")
        .fetch_one(&mut again)
        .await
        .unwrap();
    assert_eq!(rows, 2009, "data survives suspension");

    // Deprovision ends sessions, removes everything, and is safe to repeat.
    provider
        .deprovision("conf-7", &resource)
        .await
        .unwrap()
        .unwrap();
    assert!(
        sqlx::query("SELECT 1").execute(&mut again).await.is_err(),
        "session ended"
    );
    assert_eq!(backend_objects(&id).await, (false, false));
    provider
        .deprovision("conf-8", &resource)
        .await
        .unwrap()
        .unwrap();
    let gone = provider.usage("conf-9", &resource).await.unwrap().unwrap();
    assert_eq!((gone.storage_bytes, gone.connections), (0, 0));
    let resumed = provider.resume("conf-10", &resource).await.unwrap();
    assert!(
        resumed.is_err(),
        "resuming a deleted resource is a conflict"
    );

    // The backend answers the readiness check.
    let ready = provider.check("conf-11").await.unwrap().unwrap();
    assert!(ready.contains("reachable"), "{ready}");
}

#[tokio::test]
async fn kv_state_is_private_to_each_provider() {
    let host = TestHost::start(HostOptions {
        providers: vec![ProviderSpec::testing(&["test"])],
        ..HostOptions::default()
    })
    .await;
    let first = host.post_json("/test/new", json!({"name": "kv"})).await;
    first.expect::<Created>(201);
    let second: Created = host
        .post_json("/test/new", json!({"name": "kv"}))
        .await
        .json();
    let id = second.id.simple().to_string();
    assert_eq!(
        second.field("kv_read"),
        id,
        "the value written is read back"
    );
    assert_eq!(second.field("kv_keys"), "2", "both writes are listed");

    let mut meta = host.metadata().await;
    let owners: Vec<String> = sqlx::query_scalar("SELECT DISTINCT provider FROM provider_kv")
        .fetch_all(&mut meta)
        .await
        .unwrap();
    assert_eq!(
        owners,
        vec!["testing".to_string()],
        "state is stored under the provider's name"
    );
}

#[tokio::test]
async fn compiled_components_are_cached_by_content_hash() {
    let host = TestHost::start(HostOptions::default()).await;
    let wasm = std::fs::read(
        std::path::Path::new(&std::env::var("INSTANODE_TEST_PROVIDERS_DIR").unwrap())
            .join("postgres.wasm"),
    )
    .unwrap();
    let cached: Vec<String> = std::fs::read_dir(host.dir.join("cache"))
        .expect("cache directory")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].ends_with(".cwasm"));
    assert_eq!(cached[0].len(), 64 + 1 + 16 + ".cwasm".len(), "{cached:?}");
    // The name starts with the SHA-256 of the component's bytes.
    let digest = hex::encode(sha2::Sha256::digest(&wasm));
    assert!(cached[0].starts_with(&digest), "{cached:?} vs {digest}");
}

#[tokio::test]
async fn redis_provider_honours_the_lifecycle() {
    let app = in_process(&HostOptions {
        providers: vec![ProviderSpec::redis()],
        ..HostOptions::default()
    })
    .await;
    let provider = app.registry.for_kind("cache").expect("redis serves cache");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let limits = vec![("memory_mb".to_string(), 5), ("connections".to_string(), 2)];
    let request = ProvisionRequest {
        resource_id: id.clone(),
        name: "conformance".into(),
        kind: "cache".into(),
        tier: "anonymous".into(),
        limits: limits.clone(),
        options: vec![],
    };
    let first = provider.provision("c-1", &request).await.unwrap().unwrap();
    let second = provider.provision("c-2", &request).await.unwrap().unwrap();
    assert_ne!(
        first.connection_url, second.connection_url,
        "adopting rotates the password"
    );
    let open = |url: String| async move {
        redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
    };
    assert!(
        open(first.connection_url.clone()).await.is_err(),
        "old password revoked"
    );
    let mut conn = open(second.connection_url.clone())
        .await
        .expect("adopted user works");
    let () = redis::cmd("SET")
        .arg(format!("{id}:k"))
        .arg("v".repeat(4096))
        .query_async(&mut conn)
        .await
        .unwrap();

    let resource = ResourceRef {
        resource_id: id.clone(),
        kind: "cache".into(),
        tier: "anonymous".into(),
        limits,
        state: second.state,
    };
    let usage = provider.usage("c-3", &resource).await.unwrap().unwrap();
    assert!(usage.storage_bytes >= 4096, "{}", usage.storage_bytes);
    assert_eq!(usage.connections, 1);
    for step in ["c-4", "c-5"] {
        provider.suspend(step, &resource).await.unwrap().unwrap();
    }
    for step in ["c-6", "c-7"] {
        provider.resume(step, &resource).await.unwrap().unwrap();
    }
    for step in ["c-8", "c-9"] {
        provider
            .deprovision(step, &resource)
            .await
            .unwrap()
            .unwrap();
    }
    let gone = provider.usage("c-10", &resource).await.unwrap().unwrap();
    assert_eq!((gone.storage_bytes, gone.connections), (0, 0));
    assert!(provider.resume("c-11", &resource).await.unwrap().is_err());
    let ready = provider.check("c-12").await.unwrap().unwrap();
    assert!(ready.starts_with("redis 7"), "{ready}");
}

#[tokio::test]
async fn mongo_provider_honours_the_lifecycle() {
    let app = in_process(&HostOptions {
        providers: vec![ProviderSpec::mongo()],
        ..HostOptions::default()
    })
    .await;
    let provider = app.registry.for_kind("nosql").expect("mongo serves nosql");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let limits = vec![
        ("storage_mb".to_string(), 5),
        ("connections".to_string(), 2),
    ];
    let request = ProvisionRequest {
        resource_id: id.clone(),
        name: "conformance".into(),
        kind: "nosql".into(),
        tier: "anonymous".into(),
        limits: limits.clone(),
        options: vec![],
    };
    let first = provider.provision("m-1", &request).await.unwrap().unwrap();
    let second = provider.provision("m-2", &request).await.unwrap().unwrap();
    assert_ne!(
        first.connection_url, second.connection_url,
        "adopting rotates the password"
    );
    let database = format!("db_{id}");
    let collection = |url: String| {
        let database = database.clone();
        async move {
            mongodb::Client::with_uri_str(url)
                .await
                .unwrap()
                .database(&database)
                .collection::<mongodb::bson::Document>("c")
        }
    };
    let old = collection(first.connection_url.clone()).await;
    assert!(
        old.find_one(mongodb::bson::doc! {}).await.is_err(),
        "old password revoked"
    );
    let current = collection(second.connection_url.clone()).await;
    current
        .insert_one(mongodb::bson::doc! {"pad": "x".repeat(4096)})
        .await
        .expect("adopted user works");

    let resource = ResourceRef {
        resource_id: id.clone(),
        kind: "nosql".into(),
        tier: "anonymous".into(),
        limits,
        state: second.state,
    };
    let usage = provider.usage("m-3", &resource).await.unwrap().unwrap();
    assert!(usage.storage_bytes >= 4096, "{}", usage.storage_bytes);
    for step in ["m-4", "m-5"] {
        provider.suspend(step, &resource).await.unwrap().unwrap();
    }
    for step in ["m-6", "m-7"] {
        provider.resume(step, &resource).await.unwrap().unwrap();
    }
    for step in ["m-8", "m-9"] {
        provider
            .deprovision(step, &resource)
            .await
            .unwrap()
            .unwrap();
    }
    let gone = provider.usage("m-10", &resource).await.unwrap().unwrap();
    assert_eq!(gone.storage_bytes, 0);
    assert!(provider.resume("m-11", &resource).await.unwrap().is_err());
    let ready = provider.check("m-12").await.unwrap().unwrap();
    assert!(ready.contains("reachable"), "{ready}");
}

#[tokio::test]
async fn nats_provider_honours_the_lifecycle() {
    use async_nats::jetstream;
    let options = HostOptions {
        providers: vec![ProviderSpec::nats()],
        ..HostOptions::default()
    };
    let files = HostFiles::create(&options, 0).await.expect("host files");
    let ports = options.providers[0].nats.expect("nats ports");
    let _server = instanode_tests::nats::TestNats::start(&files.config_path(), ports)
        .await
        .expect("NATS starts");
    let config = Config::load(Some(&files.config_path())).expect("config");
    let app = App::start(&config).await.expect("host starts");
    let provider = app.registry.for_kind("queue").expect("nats serves queue");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let limits = vec![
        ("storage_mb".to_string(), 64),
        ("queue_count".to_string(), 1),
        ("connections".to_string(), 5),
    ];
    let request = ProvisionRequest {
        resource_id: id.clone(),
        name: "conformance".into(),
        kind: "queue".into(),
        tier: "anonymous".into(),
        limits: limits.clone(),
        options: vec![],
    };
    let field = |fields: &[(String, String)], name: &str| {
        fields.iter().find(|(k, _)| k == name).unwrap().1.clone()
    };
    let first = provider.provision("n-1", &request).await.unwrap().unwrap();
    let second = provider.provision("n-2", &request).await.unwrap().unwrap();
    assert_eq!(
        field(&first.fields, "credentials.key_id"),
        field(&second.fields, "credentials.key_id"),
        "a retried provision adopts the same account"
    );
    let creds = field(&second.fields, "credentials.creds_file");
    let client = async_nats::ConnectOptions::with_credentials(&creds)
        .unwrap()
        .connect(&second.connection_url)
        .await
        .expect("adopted account works");
    let js = jetstream::new(client.clone());
    js.create_stream(jetstream::stream::Config {
        name: "C".into(),
        subjects: vec!["c.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let publish = |n: u32| {
        let js = js.clone();
        async move {
            js.publish(format!("c.{n}"), vec![b'x'; 8192].into())
                .await
                .unwrap()
                .await
        }
    };
    publish(0).await.expect("stored");

    // Deprovision and usage need nothing from the state: the account key is derived.
    let resource = ResourceRef {
        resource_id: id.clone(),
        kind: "queue".into(),
        tier: "anonymous".into(),
        limits,
        state: String::new(),
    };
    let usage = provider.usage("n-3", &resource).await.unwrap().unwrap();
    assert!(usage.storage_bytes >= 8192, "{}", usage.storage_bytes);
    assert_eq!(usage.connections, 1);
    for step in ["n-4", "n-5"] {
        provider.suspend(step, &resource).await.unwrap().unwrap();
    }
    assert!(
        publish(1).await.is_err(),
        "a suspended account stores nothing new"
    );
    let info = js.get_stream("C").await.expect("its data stays readable");
    assert_eq!(info.cached_info().state.messages, 1);
    for step in ["n-6", "n-7"] {
        provider.resume(step, &resource).await.unwrap().unwrap();
    }
    publish(2).await.expect("stores again after resume");
    for step in ["n-8", "n-9"] {
        provider
            .deprovision(step, &resource)
            .await
            .unwrap()
            .unwrap();
    }
    assert!(provider.resume("n-10", &resource).await.unwrap().is_err());
    let ready = provider.check("n-11").await.unwrap().unwrap();
    assert!(ready.starts_with("nats 2.10"), "{ready}");
}
