//! The hot path of webhook deliveries. Receivers are looked up through a cache that trusts
//! an answer for a second, and deliveries are stored in batches: a receive handler queues
//! its delivery and waits for the stored id; one writer takes everything waiting and stores
//! it (and trims each ring) with one statement, so a burst costs the metadata database one
//! round trip and one commit per batch instead of a lookup and a commit per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::store::{ReceivedRequest, ResourceRow, Store};

/// How long a looked-up receiver is used without asking the database again. Safe to cache:
/// a receiver's settings never change, and a delete is caught when the delivery is stored
/// (the insert only keeps deliveries to live resources).
const RECEIVER_FRESH_FOR: Duration = Duration::from_secs(1);
/// Receivers remembered at most; beyond it the stale ones are dropped.
const MAX_RECEIVERS: usize = 10_000;

/// Receive id → the webhook's row, as recently read.
#[derive(Default)]
pub struct Receivers {
    seen: Mutex<HashMap<Uuid, (Instant, Arc<ResourceRow>)>>,
}

impl Receivers {
    /// The receiver's row, from the cache while fresh, else from the database.
    pub async fn find(
        &self,
        store: &Store,
        receive_id: Uuid,
    ) -> sqlx::Result<Option<Arc<ResourceRow>>> {
        if let Some((at, row)) = self.lock().get(&receive_id)
            && at.elapsed() < RECEIVER_FRESH_FOR
        {
            return Ok(Some(row.clone()));
        }
        let Some(row) = store.find_by_receive_id(receive_id).await? else {
            return Ok(None);
        };
        let row = Arc::new(row);
        // Only live receivers are worth remembering (and a pending one is about to change).
        if !row.status.is_live() {
            return Ok(Some(row));
        }
        let mut seen = self.lock();
        if seen.len() >= MAX_RECEIVERS {
            seen.retain(|_, (at, _)| at.elapsed() < RECEIVER_FRESH_FOR);
        }
        seen.insert(receive_id, (Instant::now(), row.clone()));
        Ok(Some(row))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (Instant, Arc<ResourceRow>)>> {
        // Every change is a single call on the map, so a poisoned lock still holds a whole map.
        self.seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Deliveries stored by one statement at most.
const MAX_BATCH: usize = 512;
/// Deliveries waiting for the writer before senders wait too (back-pressure).
const QUEUE: usize = 4096;

/// One delivery waiting to be stored, and where its answer goes.
struct Queued {
    resource: Uuid,
    keep: i64,
    request: ReceivedRequest,
    stored: oneshot::Sender<Result<Option<i64>, String>>,
}

/// The handle receive handlers queue deliveries through.
#[derive(Clone)]
pub struct WebhookIngest {
    queue: mpsc::Sender<Queued>,
}

impl WebhookIngest {
    /// Starts the writer on the current runtime.
    pub fn spawn(store: Store) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(store, waiting));
        Self { queue }
    }

    /// Stores `request` for `resource`, keeping its newest `keep` requests. Returns the new
    /// request's id, or none when the resource is no longer live.
    pub async fn store(
        &self,
        resource: Uuid,
        keep: i64,
        request: ReceivedRequest,
    ) -> anyhow::Result<Option<i64>> {
        let (stored, answer) = oneshot::channel();
        let queued = Queued {
            resource,
            keep,
            request,
            stored,
        };
        self.queue
            .send(queued)
            .await
            .map_err(|_| anyhow!("the webhook writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow!("the webhook writer has stopped"))?
            .map_err(|e| anyhow!("storing the delivery failed: {e}"))
    }
}

/// Drains the queue batch by batch until every handle is gone. A failed batch fails its
/// deliveries (their senders get an error and retry), never the writer.
async fn write_batches(store: Store, mut waiting: mpsc::Receiver<Queued>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (deliveries, answers): (Vec<_>, Vec<_>) = batch
            .drain(..)
            .map(|q| ((q.resource, q.keep, q.request), q.stored))
            .unzip();
        match store.store_webhook_requests(&deliveries).await {
            Ok(ids) => {
                for (answer, id) in answers.into_iter().zip(ids) {
                    // The sender may have hung up meanwhile: nothing to tell it.
                    let _ = answer.send(Ok(id));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, deliveries = answers.len(), "webhook batch not stored");
                for answer in answers {
                    let _ = answer.send(Err(e.to_string()));
                }
            }
        }
    }
}
