//! Helpers for the `publish_api` and `transport` tests: endpoint paths, server
//! start, error assertions and reads of the queue and the published list.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{TestDir, TestServer, assert_error_shape};

pub const MARK: &str = "/publish/mark-for-gom";
pub const EXPORT: &str = "/publish/export-for-gom";
pub const CONFIRM: &str = "/publish/confirm-gom";
pub const QUEUE: &str = "/publish/gom-queue";
pub const PUBLISHED: &str = "/publish/published";

/// Starts a server over a fresh database. The directory is returned so that
/// it outlives the server.
pub async fn start() -> (TestDir, TestServer) {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    (dir, server)
}

/// An error response that a test expects.
pub struct ExpectedError<'a> {
    pub status: StatusCode,
    pub message: &'a str,
    pub code: &'a str,
    pub field: Option<&'a str>,
}

/// Asserts status, shape, message, code and field of an error response.
/// `context` names the request in failure messages.
pub fn assert_error(context: &str, response: &(StatusCode, Value), expected: &ExpectedError) {
    let (status, body) = response;
    assert_eq!(
        *status, expected.status,
        "{context}: wrong status, body {body}"
    );
    assert_error_shape(body);
    assert_eq!(
        body["error"], expected.message,
        "{context}: wrong error message"
    );
    assert_eq!(body["code"], expected.code, "{context}: wrong error code");
    match expected.field {
        Some(field) => assert_eq!(body["field"], field, "{context}: wrong field"),
        None => assert!(
            body.get("field").is_none(),
            "{context}: error names a field although no single field is at fault: {body}"
        ),
    }
}

/// Returns the body of `GET /publish/gom-queue`.
pub async fn queue(server: &TestServer) -> Value {
    let (status, body) = server.get(QUEUE).await;
    assert_eq!(status, StatusCode::OK, "queue listing failed: {body}");
    body
}

/// Returns the body of `GET /publish/published`.
pub async fn published(server: &TestServer) -> Value {
    let (status, body) = server.get(PUBLISHED).await;
    assert_eq!(status, StatusCode::OK, "published listing failed: {body}");
    body
}

/// The queue and the published list at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishState {
    pub queue: Value,
    pub published: Value,
}

pub async fn publish_state(server: &TestServer) -> PublishState {
    PublishState {
        queue: queue(server).await,
        published: published(server).await,
    }
}

/// Asserts that the queue and the published list still equal `before`.
pub async fn assert_nothing_stored(server: &TestServer, context: &str, before: &PublishState) {
    let after = publish_state(server).await;
    assert_eq!(
        after.queue, before.queue,
        "{context}: the rejected request changed the queue"
    );
    assert_eq!(
        after.published, before.published,
        "{context}: the rejected request changed the published list"
    );
}

/// Returns a queue item as listed by `GET /publish/gom-queue`.
pub fn queue_item(draft_id: &str, title: &str, content: &str) -> Value {
    json!({
        "draft_id": draft_id,
        "title": title,
        "prepared_content": content,
        "status": "queued_for_gom",
    })
}
