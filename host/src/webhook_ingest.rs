//! Stores webhook deliveries in batches. A receive handler queues its delivery and waits
//! for the stored id; one writer takes everything waiting and stores it with one statement,
//! so a burst of deliveries costs the metadata database one commit per batch instead of one
//! per request (and no two requests fight over the same rows while trimming the ring).

use anyhow::anyhow;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::store::{ReceivedRequest, Store};

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
        let mut rings: Vec<(Uuid, i64)> = batch.iter().map(|q| (q.resource, q.keep)).collect();
        rings.sort_unstable();
        rings.dedup_by_key(|ring| ring.0);
        let (deliveries, answers): (Vec<_>, Vec<_>) = batch
            .drain(..)
            .map(|q| ((q.resource, q.request), q.stored))
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
                continue;
            }
        }
        // A failed trim only leaves a ring longer for a moment: the next batch trims it.
        if let Err(e) = store.trim_webhook_requests(&rings).await {
            tracing::warn!(error = %e, "webhook rings not trimmed");
        }
    }
}
