//! Test harness: the real app on a free loopback port over a SQLite file in a
//! temporary directory, driven with reqwest.

#![allow(dead_code)]

pub mod publish;
pub mod requests;
pub mod runs;

use std::path::{Path, PathBuf};

use mind_lite::{Server, Settings};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::{sync::oneshot, task::JoinHandle};

/// A temporary directory holding the test database; removed on drop.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("create temporary directory"),
        }
    }

    /// Path of the SQLite file used by servers started on this directory.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("mind-lite.db")
    }

    pub fn database_url(&self) -> String {
        database_url(&self.db_path())
    }
}

/// Builds the sqlx URL that opens the file at `path`, creating it if needed.
pub fn database_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// A running in-process daemon.
pub struct TestServer {
    pub base_url: String,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Starts a server over the database of `dir` with default settings.
    pub async fn start(dir: &TestDir) -> Self {
        Self::start_with(Settings::for_database(dir.database_url())).await
    }

    /// Starts a server with the given settings (bind them to port 0).
    pub async fn start_with(settings: Settings) -> Self {
        let server = Server::bind(settings).await.expect("start server");
        let base_url = format!("http://{}", server.local_addr());
        let (shutdown, shutdown_signal) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async {
            let _ = shutdown_signal.await;
        }));
        Self {
            base_url,
            client: reqwest::Client::new(),
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Stops the server gracefully and waits until its database is closed.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// POSTs `body` as JSON and returns the status and the parsed JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("send POST");
        read_json(response).await
    }

    /// POSTs raw bytes with the given content type (none when `None`).
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.post(self.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        read_json(request.send().await.expect("send POST")).await
    }

    /// GETs `path` and returns the status and the parsed JSON body.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("send GET");
        read_json(response).await
    }

    /// GETs `path` and returns the status and the body text.
    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("send GET");
        let status = response.status();
        (status, response.text().await.expect("read body"))
    }
}

/// Reads a response body as JSON, failing the test with the raw text if it is
/// not JSON.
pub async fn read_json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("read body");
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("status {status}: body is not JSON ({error}): {text}"));
    (status, value)
}

/// Returns `response` without its `idempotency` object, for comparing a replay
/// with the first response.
pub fn without_idempotency(response: &Value) -> Value {
    let mut copy = response.clone();
    if let Some(object) = copy.as_object_mut() {
        object.remove("idempotency");
    }
    copy
}

/// Asserts the JSON error shape: `error` and `code` strings, nothing else but
/// an optional `field`.
pub fn assert_error_shape(body: &Value) {
    let object = body
        .as_object()
        .unwrap_or_else(|| panic!("error body is not an object: {body}"));
    assert!(object["error"].is_string(), "error is not a string: {body}");
    assert!(object["code"].is_string(), "code is not a string: {body}");
    for key in object.keys() {
        assert!(
            ["error", "code", "field"].contains(&key.as_str()),
            "unexpected key {key} in error body {body}"
        );
    }
}
