//! Credential probes: whether what a provider hands out really works, through the
//! backend's own client, the way a tenant would use it. Chosen by the connection URL's
//! scheme (or, for object storage, by the bucket the host signs URLs for).
//!
//! Every probe runs under [`PROBE_TIMEOUT`], so a backend that hangs fails the step
//! instead of the whole run.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use mongodb::bson::{Document, doc};
use sqlx::{Connection, PgConnection};

use crate::caps::ObjectMethod;
use crate::contract::types::{Provisioned, ResourceRef};
use crate::registry::Loaded;

/// The longest one probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to connect (and log in), within [`PROBE_TIMEOUT`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A way to use one resource's credentials.
pub enum Probe {
    Postgres {
        url: String,
    },
    Redis {
        url: String,
        prefix: String,
    },
    Mongo {
        url: String,
        database: String,
    },
    Nats {
        url: String,
        creds: String,
        prefix: String,
    },
    /// Objects of the resource, through URLs the provider signs (its `objects` export).
    Storage {
        provider: Arc<Loaded>,
        target: ResourceRef,
        http: reqwest::Client,
    },
}

impl Probe {
    /// The probe for a provision answer: `Ok(None)` when the kind hands out nothing a client
    /// could log in with (a deploy's URL is the host's own route); an error when the answer
    /// lacks a field its backend's clients need.
    pub fn for_answer(
        answer: &Provisioned,
        provider: &Arc<Loaded>,
        target: &ResourceRef,
    ) -> Result<Option<Self>, String> {
        let field = |key: &str| {
            answer
                .fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("the answer has no `{key}` field"))
        };
        let url = answer.connection_url.clone();
        if provider.exports_objects() {
            let mut target = target.clone();
            target.state = answer.state.clone();
            return Ok(Some(Self::Storage {
                provider: provider.clone(),
                target,
                http: reqwest::Client::builder()
                    .timeout(PROBE_TIMEOUT)
                    .build()
                    .map_err(|e| e.to_string())?,
            }));
        }
        let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
        Ok(Some(match scheme {
            "postgres" | "postgresql" => Self::Postgres { url },
            "redis" | "rediss" => Self::Redis {
                url,
                prefix: field("key_prefix")?,
            },
            "mongodb" | "mongodb+srv" => Self::Mongo {
                url,
                database: field("database")?,
            },
            "nats" | "tls" => Self::Nats {
                url,
                creds: field("credentials.creds_file")?,
                prefix: field("subject_prefix")?,
            },
            _ => return Ok(None),
        }))
    }

    /// Whether the backend's own rights can refuse a write while the resource is
    /// suspended (elsewhere suspend only marks the resource and the host refuses growth).
    pub fn refuses_growth(&self) -> bool {
        matches!(
            self,
            Self::Postgres { .. } | Self::Redis { .. } | Self::Mongo { .. }
        )
    }

    /// The backend, as the report names it.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Postgres { .. } => "postgres",
            Self::Redis { .. } => "redis",
            Self::Mongo { .. } => "mongodb",
            Self::Nats { .. } => "nats",
            Self::Storage { .. } => "storage",
        }
    }

    /// Writes item `n` (a table, a key, a document, a message, an object).
    pub async fn write(&self, n: u32) -> Result<String, String> {
        within(async {
            match self {
                Self::Postgres { url } => {
                    let mut conn = pg_connect(url).await?;
                    sqlx::raw_sql(&format!(
                        "CREATE TABLE conformance_{n} (v int); INSERT INTO conformance_{n} VALUES ({n})"
                    ))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| format!("CREATE TABLE conformance_{n}: {e}"))?;
                    let _ = conn.close().await;
                    Ok(format!("created table conformance_{n}"))
                }
                Self::Redis { url, prefix } => {
                    let key = format!("{prefix}conformance:{n}");
                    let mut conn = redis_connect(url).await?;
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(n)
                        .query_async::<()>(&mut conn)
                        .await
                        .map_err(|e| format!("SET {key}: {e}"))?;
                    Ok(format!("SET {key}"))
                }
                Self::Mongo { url, database } => {
                    mongo_collection(url, database)
                        .await?
                        .insert_one(doc! { "n": n })
                        .await
                        .map_err(|e| format!("insert into {database}.conformance: {}", mongo_error(&e)))?;
                    Ok(format!("inserted into {database}.conformance"))
                }
                Self::Nats { url, creds, prefix } => {
                    let client = nats_connect(url, creds).await?;
                    let subject = format!("{prefix}conformance");
                    client
                        .publish(subject.clone(), n.to_string().into())
                        .await
                        .map_err(|e| format!("publish to {subject}: {e}"))?;
                    client
                        .flush()
                        .await
                        .map_err(|e| format!("flush after publishing to {subject}: {e}"))?;
                    Ok(format!("published to {subject}"))
                }
                Self::Storage {
                    provider,
                    target,
                    http,
                } => {
                    let (key, url) = presign(provider, target, ObjectMethod::Put, n).await?;
                    let response = http
                        .put(url)
                        .body(format!("conformance {n}"))
                        .send()
                        .await
                        .map_err(|e| format!("PUT {key}: {e}"))?;
                    if !response.status().is_success() {
                        return Err(format!("PUT {key} answered {}", response.status()));
                    }
                    Ok(format!("PUT {key}"))
                }
            }
        })
        .await
    }

    /// Reads item `n` back.
    pub async fn read(&self, n: u32) -> Result<String, String> {
        within(async {
            match self {
                Self::Postgres { url } => {
                    let mut conn = pg_connect(url).await?;
                    let (count,): (i64,) =
                        sqlx::query_as(&format!("SELECT count(*) FROM conformance_{n}"))
                            .fetch_one(&mut conn)
                            .await
                            .map_err(|e| format!("SELECT from conformance_{n}: {e}"))?;
                    let _ = conn.close().await;
                    if count != 1 {
                        return Err(format!("conformance_{n} holds {count} rows, not 1"));
                    }
                    Ok(format!("read conformance_{n} back"))
                }
                Self::Redis { url, prefix } => {
                    let key = format!("{prefix}conformance:{n}");
                    let mut conn = redis_connect(url).await?;
                    let value: Option<String> = redis::cmd("GET")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| format!("GET {key}: {e}"))?;
                    if value != Some(n.to_string()) {
                        return Err(format!("GET {key} answered {value:?}"));
                    }
                    Ok(format!("GET {key}"))
                }
                Self::Mongo { url, database } => {
                    let found = mongo_collection(url, database)
                        .await?
                        .find_one(doc! { "n": n })
                        .await
                        .map_err(|e| {
                            format!("find in {database}.conformance: {}", mongo_error(&e))
                        })?;
                    if found.is_none() {
                        return Err(format!(
                            "the document written to {database}.conformance is missing"
                        ));
                    }
                    Ok(format!("found it in {database}.conformance"))
                }
                Self::Nats { url, creds, prefix } => {
                    // A message through the server and back: proves this user may both
                    // publish and subscribe under its prefix.
                    let client = nats_connect(url, creds).await?;
                    let subject = format!("{prefix}conformance.echo");
                    let mut messages = client
                        .subscribe(subject.clone())
                        .await
                        .map_err(|e| format!("subscribe to {subject}: {e}"))?;
                    client
                        .flush()
                        .await
                        .map_err(|e| format!("subscribe to {subject}: {e}"))?;
                    client
                        .publish(subject.clone(), n.to_string().into())
                        .await
                        .map_err(|e| format!("publish to {subject}: {e}"))?;
                    let message = tokio::time::timeout(CONNECT_TIMEOUT, messages.next())
                        .await
                        .map_err(|_| format!("no message came back on {subject}"))?
                        .ok_or_else(|| format!("the subscription to {subject} ended"))?;
                    if message.payload.as_ref() != n.to_string().as_bytes() {
                        return Err(format!("{subject} delivered another payload"));
                    }
                    Ok(format!("round trip through {subject}"))
                }
                Self::Storage {
                    provider,
                    target,
                    http,
                } => {
                    let (key, url) = presign(provider, target, ObjectMethod::Get, n).await?;
                    let response = http
                        .get(url)
                        .send()
                        .await
                        .map_err(|e| format!("GET {key}: {e}"))?;
                    let status = response.status();
                    let body = response
                        .text()
                        .await
                        .map_err(|e| format!("GET {key}: {e}"))?;
                    if !status.is_success() || body != format!("conformance {n}") {
                        return Err(format!("GET {key} answered {status}"));
                    }
                    Ok(format!("GET {key}"))
                }
            }
        })
        .await
    }

    /// Whether the credentials stopped working once the resource was deprovisioned
    /// (`n`: an item written while it lived). `Ok` says how they failed.
    pub async fn gone(&self, n: u32) -> Result<String, String> {
        let outcome = tokio::time::timeout(PROBE_TIMEOUT, async {
            match self {
                Self::Postgres { url } => match pg_connect(url).await {
                    Ok(conn) => {
                        let _ = conn.close().await;
                        Err("the connection URL still logs in".to_string())
                    }
                    Err(e) => Ok(e),
                },
                Self::Redis { url, prefix } => {
                    let mut conn = match redis_connect(url).await {
                        Ok(conn) => conn,
                        Err(e) => return Ok(e),
                    };
                    let key = format!("{prefix}conformance:{n}");
                    match redis::cmd("GET")
                        .arg(&key)
                        .query_async::<Option<String>>(&mut conn)
                        .await
                    {
                        Ok(_) => Err(format!("the user still logs in and reads {key}")),
                        Err(e) => Ok(format!("GET {key}: {e}")),
                    }
                }
                Self::Mongo { url, database } => {
                    let collection = match mongo_collection(url, database).await {
                        Ok(collection) => collection,
                        Err(e) => return Ok(e),
                    };
                    match collection.find_one(doc! { "n": n }).await {
                        Ok(_) => Err(format!("the user still logs in and reads {database}")),
                        Err(e) => Ok(format!(
                            "find in {database}.conformance: {}",
                            mongo_error(&e)
                        )),
                    }
                }
                Self::Nats { url, creds, .. } => match nats_connect(url, creds).await {
                    Ok(_) => Err("the credentials still log in".to_string()),
                    Err(e) => Ok(e),
                },
                Self::Storage {
                    provider,
                    target,
                    http,
                } => {
                    let (key, url) = presign(provider, target, ObjectMethod::Get, n).await?;
                    match http.get(url).send().await {
                        Ok(r) if matches!(r.status().as_u16(), 403 | 404) => {
                            Ok(format!("GET {key} answered {}", r.status()))
                        }
                        Ok(r) => Err(format!("GET {key} still answered {}", r.status())),
                        Err(e) => Err(format!("GET {key}: {e}")),
                    }
                }
            }
        })
        .await;
        match outcome {
            Ok(result) => result,
            // A server that no longer answers these credentials at all counts as gone.
            Err(_) => Ok(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
        }
    }
}

/// Runs a probe under [`PROBE_TIMEOUT`].
async fn within<T>(probe: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::time::timeout(PROBE_TIMEOUT, probe)
        .await
        .unwrap_or_else(|_| Err(format!("timed out after {} s", PROBE_TIMEOUT.as_secs())))
}

/// The bucket key and a 60-second URL for the n-th probe object of the resource, signed by
/// the provider.
async fn presign(
    provider: &Loaded,
    target: &ResourceRef,
    method: ObjectMethod,
    n: u32,
) -> Result<(String, String), String> {
    let key = format!("conformance-{n}");
    let answer = provider
        .presign("conformance-presign", target, method, &key, 60)
        .await
        .map_err(|e| format!("presign of {key} produced no answer: {e}"))?
        .map_err(|e| format!("presign of {key} refused: {e:?}"))?;
    Ok((answer.object_key, answer.url))
}

async fn pg_connect(url: &str) -> Result<PgConnection, String> {
    tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(url))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))
}

async fn redis_connect(url: &str) -> Result<redis::aio::MultiplexedConnection, String> {
    let client = redis::Client::open(url).map_err(|e| format!("not a Redis URL: {e}"))?;
    tokio::time::timeout(CONNECT_TIMEOUT, client.get_multiplexed_async_connection())
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))
}

async fn mongo_collection(
    url: &str,
    database: &str,
) -> Result<mongodb::Collection<Document>, String> {
    let mut options = mongodb::options::ClientOptions::parse(url)
        .await
        .map_err(|e| format!("not a MongoDB URL: {e}"))?;
    options.server_selection_timeout = Some(CONNECT_TIMEOUT);
    options.connect_timeout = Some(CONNECT_TIMEOUT);
    options.app_name = Some("instanode-conformance".into());
    let client = mongodb::Client::with_options(options).map_err(|e| e.to_string())?;
    Ok(client.database(database).collection("conformance"))
}

/// The server's own words: the driver's full error also dumps the raw reply.
fn mongo_error(e: &mongodb::error::Error) -> String {
    use mongodb::error::{ErrorKind, WriteFailure};
    match e.kind.as_ref() {
        ErrorKind::Command(c) => format!("{} ({}): {}", c.code_name, c.code, c.message),
        ErrorKind::Write(WriteFailure::WriteError(w)) => {
            format!(
                "{} ({}): {}",
                w.code_name.as_deref().unwrap_or("write error"),
                w.code,
                w.message
            )
        }
        ErrorKind::Authentication { message, .. } => format!("authentication: {message}"),
        _ => e.to_string(),
    }
}

async fn nats_connect(url: &str, creds: &str) -> Result<async_nats::Client, String> {
    let options = async_nats::ConnectOptions::with_credentials(creds)
        .map_err(|e| format!("unusable creds file: {e}"))?
        .connection_timeout(CONNECT_TIMEOUT);
    let client = tokio::time::timeout(CONNECT_TIMEOUT * 2, options.connect(url))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    // The server confirms the login only with its first answer.
    match tokio::time::timeout(CONNECT_TIMEOUT, client.flush()).await {
        Ok(Ok(())) => Ok(client),
        Ok(Err(e)) => Err(format!("login: {e}")),
        Err(_) => Err("login not confirmed".into()),
    }
}
