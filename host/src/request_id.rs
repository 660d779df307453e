//! The id of the request a piece of work serves, carried in a task-local so logs and errors
//! name it without threading it through every call. HTTP sets it per request
//! (`api::request_id`); background work scopes its own.

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled on this task ("" outside a request).
pub fn current() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// Runs `work` with `id` as the current request id (for work spawned off the request task).
pub async fn scope<F: Future>(id: String, work: F) -> F::Output {
    REQUEST_ID.scope(id, work).await
}
