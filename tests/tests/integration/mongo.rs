//! `POST /nosql/new` against a real MongoDB-wire server, checked with the `mongodb` crate
//! and pymongo.

use instanode::api::schema::{Created, Resource, ResourceDeleted};
use instanode::store::ResourceStatus;
use instanode_tests::{HostOptions, ProviderFields, ProviderSpec, TestHost, mongo_admin, python};
use mongodb::bson::{Document, doc};

/// A fresh client from the tenant's URL (a new connection sees the current rights).
async fn tenant(body: &Created) -> mongodb::Database {
    let url = body.connection_url.as_str();
    let client = mongodb::Client::with_uri_str(url).await.unwrap();
    client.database(body.field("database"))
}

/// The server's error code for a refused operation.
fn code(e: &mongodb::error::Error) -> i32 {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::Command(c) => c.code,
        mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => w.code,
        other => panic!("not a refusal: {other:?}"),
    }
}

const UNAUTHORIZED: i32 = 13;

#[tokio::test]
async fn nosql_new_returns_a_working_database() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::mongo())).await;
    let body = host.provision("nosql", "documents").await;
    let url = body.connection_url.as_str();
    let db = body.field("database");
    assert!(url.starts_with("mongodb://u_"), "{url}");
    assert!(url.contains(&format!("/{db}?authSource={db}")), "{url}");
    assert_eq!(body.limits.values["storage_mb"], 5);

    let tenant = tenant(&body).await;
    let docs = tenant.collection::<Document>("notes");
    docs.insert_one(doc! {"title": "first"}).await.unwrap();
    let found = docs
        .find_one(doc! {"title": "first"})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.get_str("title").unwrap(), "first");

    // pymongo with the same URL.
    let out = python(
        "import sys, pymongo\n\
         c = pymongo.MongoClient(sys.argv[1])\n\
         db = c.get_default_database()\n\
         db.notes.insert_one({'title': 'second'})\n\
         print(db.notes.count_documents({}))",
        &[url],
    );
    assert_eq!(out.trim(), "2");
}

#[tokio::test]
async fn tenants_cannot_reach_each_other() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::mongo())).await;
    let (a, b) = (
        host.provision("nosql", "a").await,
        host.provision("nosql", "b").await,
    );
    let b_name = b.field("database").to_string();
    let b_db = tenant(&b).await;
    b_db.collection::<Document>("secrets")
        .insert_one(doc! {"k": "b-data"})
        .await
        .unwrap();

    let a_db = tenant(&a).await;
    let a_client = a_db.client();
    let into_b = a_client.database(&b_name).collection::<Document>("secrets");
    assert_eq!(
        code(&into_b.find_one(doc! {}).await.unwrap_err()),
        UNAUTHORIZED
    );
    assert_eq!(
        code(&into_b.insert_one(doc! {"x": 1}).await.unwrap_err()),
        UNAUTHORIZED
    );
    assert_eq!(
        code(&into_b.delete_many(doc! {}).await.unwrap_err()),
        UNAUTHORIZED
    );
    assert_eq!(code(&into_b.drop().await.unwrap_err()), UNAUTHORIZED);
    let list = a_client.database(&b_name).list_collection_names().await;
    assert_eq!(code(&list.unwrap_err()), UNAUTHORIZED);
    let dbs = a_client.list_database_names().await;
    assert_eq!(code(&dbs.unwrap_err()), UNAUTHORIZED);
    // No way to grant itself more.
    let a_user = a.connection_url["mongodb://".len()..]
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let grant = a_db
        .run_command(doc! {"grantRolesToUser": &a_user, "roles": [{"role": "root", "db": "admin"}]})
        .await;
    assert_eq!(code(&grant.unwrap_err()), UNAUTHORIZED);
    let create = a_db
        .run_command(doc! {"createUser": "intruder", "pwd": "x", "roles": []})
        .await;
    assert_eq!(code(&create.unwrap_err()), UNAUTHORIZED);

    // pymongo agrees, and B's data is intact.
    let out = python(
        "import sys, pymongo\n\
         from pymongo.errors import OperationFailure\n\
         c = pymongo.MongoClient(sys.argv[1])\n\
         try:\n    c[sys.argv[2]].secrets.find_one(); print('leak')\n\
         except OperationFailure as e:\n    print(e.code)",
        &[a.connection_url.as_str(), &b_name],
    );
    assert_eq!(out.trim(), "13");
    let kept = b_db
        .collection::<Document>("secrets")
        .find_one(doc! {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.get_str("k").unwrap(), "b-data");
}

#[tokio::test]
async fn over_its_storage_limit_a_database_takes_deletes_but_no_writes() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::mongo())).await;
    let body = host.provision("nosql", "grows").await;
    let token = body.token.to_string();
    let blobs = tenant(&body).await.collection::<Document>("blobs");
    // ~6 MB past the anonymous 5 MB.
    let payload = "x".repeat(100 * 1024);
    let docs: Vec<Document> = (0..60)
        .map(|i| doc! {"i": i, "payload": &payload})
        .collect();
    blobs.insert_many(docs).await.unwrap();

    let report = host.meter().await;
    assert_eq!(report.suspended, 1, "{report:?}");
    let view = host.get(&format!("/api/v1/resources/{token}")).await;
    assert_eq!(
        view.json::<Resource>().status,
        ResourceStatus::Suspended,
        "{}",
        view.body
    );

    // Through the tenant URL (a new connection): writes refused, reads and deletes work.
    let blobs = tenant(&body).await.collection::<Document>("blobs");
    let write = blobs.insert_one(doc! {"more": 1}).await.unwrap_err();
    assert_eq!(code(&write), UNAUTHORIZED);
    assert_eq!(blobs.count_documents(doc! {}).await.unwrap(), 60);
    blobs.delete_many(doc! {}).await.expect("deletes allowed");

    let report = host.meter().await;
    assert_eq!(report.resumed, 1, "{report:?}");
    let blobs = tenant(&body).await.collection::<Document>("blobs");
    blobs
        .insert_one(doc! {"more": 1})
        .await
        .expect("writes work again");
}

async fn user_and_database_exist(database: &str, user: &str) -> (bool, bool) {
    let admin = mongo_admin().await;
    let users = admin
        .database(database)
        .run_command(doc! {"usersInfo": user})
        .await
        .unwrap();
    let user_exists = !users.get_array("users").unwrap().is_empty();
    let names = admin.list_database_names().await.unwrap();
    (user_exists, names.iter().any(|n| n == database))
}

#[tokio::test]
async fn delete_and_expiry_remove_the_user_and_its_data() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::mongo())).await;
    for (name, by_ttl) in [("deleted", false), ("expired", true)] {
        let body = host.provision("nosql", name).await;
        let db = body.field("database").to_string();
        let user = db.replacen("db_", "u_", 1);
        tenant(&body)
            .await
            .collection::<Document>("c")
            .insert_one(doc! {"k": 1})
            .await
            .unwrap();
        assert_eq!(user_and_database_exist(&db, &user).await, (true, true));
        if by_ttl {
            host.advance_clock(24 * 3600 + 60).await;
            assert_eq!(host.reap().await.ended, 1);
        } else {
            let token = body.token.to_string();
            let reply = host.delete(&format!("/api/v1/resources/{token}")).await;
            reply.expect::<ResourceDeleted>(200);
        }
        assert_eq!(user_and_database_exist(&db, &user).await, (false, false));
        let login = tenant(&body)
            .await
            .collection::<Document>("c")
            .find_one(doc! {})
            .await;
        assert!(login.is_err(), "the user can no longer log in");
    }
}
