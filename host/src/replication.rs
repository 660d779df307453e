//! Keeping this replica in step with the others on the same metadata database: cached
//! routes are forgotten and provider swaps followed as soon as another replica announces
//! them (certificates and custom domains too), with a slow poll as the backstop for notifications missed while disconnected.

use std::sync::Arc;
use std::time::Duration;

use crate::services::Services;
use crate::store::{PROVIDERS_CHANNEL, ROUTES_CHANNEL, TLS_CHANNEL};

/// How often provider versions are compared even without a notification.
const POLL: Duration = Duration::from_secs(5);
/// The wait before listening again after the connection failed.
const RETRY: Duration = Duration::from_secs(1);

pub fn spawn(services: Arc<Services>) {
    tokio::spawn(async move {
        let mut poll = tokio::time::interval(POLL);
        loop {
            let mut listener = match services
                .store
                .listen(&[ROUTES_CHANNEL, PROVIDERS_CHANNEL, TLS_CHANNEL])
                .await
            {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for other replicas' changes");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            // Anything may have changed while nobody listened.
            catch_up(&services).await;
            loop {
                tokio::select! {
                    note = listener.try_recv() => match note {
                        Ok(Some(note)) if note.channel() == ROUTES_CHANNEL => services.routes.forget_all(),
                        Ok(Some(note)) if note.channel() == TLS_CHANNEL => services.tls.reload(&services).await,
                        Ok(Some(_)) => services.registry.converge().await,
                        // The connection dropped and came back: notifications may be lost.
                        Ok(None) => catch_up(&services).await,
                        Err(e) => {
                            tracing::warn!(error = %e, "stopped listening for other replicas' changes");
                            break;
                        }
                    },
                    _ = poll.tick() => {
                        services.registry.converge().await;
                        // Certificates also lapse, and a renewal elsewhere may go unannounced.
                        services.tls.reload(&services).await;
                    }
                }
            }
            tokio::time::sleep(RETRY).await;
        }
    });
}

async fn catch_up(services: &Services) {
    services.routes.forget_all();
    services.registry.converge().await;
    services.tls.reload(services).await;
}
