//! Helpers for the `runs_api` and `folder_analysis` tests: vaults of notes in
//! temporary directories, servers with or without a vault root, and reads of
//! runs, proposals and metrics.

use std::path::{Path, PathBuf};

use mind_lite::Settings;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{TestDir, TestServer};

pub const ANALYZE: &str = "/onboarding/analyze-folder";
pub const RUNS: &str = "/runs";

/// A folder of notes in a temporary directory, removed on drop.
pub struct Vault {
    dir: tempfile::TempDir,
}

impl Vault {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("create temporary vault"),
        }
    }

    /// Builds the worked example of the folder profile: `a.md` links to `b`,
    /// `b.md` has no link (2 notes, 1 orphan, density 0.5).
    pub fn two_notes() -> Self {
        let vault = Self::new();
        vault.write("a.md", "[[b]]");
        vault.write("b.md", "No links");
        vault
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Returns the absolute path of `relative` inside the vault.
    pub fn join(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Returns the vault path as the `folder_path` of a request.
    pub fn folder_path(&self) -> String {
        path_text(self.path())
    }

    /// Writes a file, creating its parent folders.
    pub fn write(&self, relative: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create note folder");
        }
        std::fs::write(&path, content).expect("write note");
        path
    }

    /// Creates a folder (and its parents).
    pub fn mkdir(&self, relative: &str) -> PathBuf {
        let path = self.join(relative);
        std::fs::create_dir_all(&path).expect("create folder");
        path
    }
}

/// Converts a path to the UTF-8 text sent as `folder_path`.
pub fn path_text(path: &Path) -> String {
    path.to_str()
        .unwrap_or_else(|| panic!("temporary path {} is not UTF-8", path.display()))
        .to_owned()
}

/// Builds settings over the database of `dir` with the given vault root.
/// `None` clears any `MIND_LITE_VAULT_ROOT` taken from the environment.
pub fn settings(dir: &TestDir, vault_root: Option<&Path>) -> Settings {
    let mut settings = Settings::for_database(dir.database_url());
    settings.vault_root = vault_root.map(Path::to_owned);
    settings
}

/// Starts a server over a fresh database without a vault root. The directory
/// is returned so that it outlives the server.
pub async fn start() -> (TestDir, TestServer) {
    let dir = TestDir::new();
    let server = TestServer::start_with(settings(&dir, None)).await;
    (dir, server)
}

/// Starts a server over the database of `dir` without a vault root, for
/// restarts.
pub async fn restart(dir: &TestDir) -> TestServer {
    TestServer::start_with(settings(dir, None)).await
}

/// Posts a folder analysis of `folder_path`.
pub async fn analyze_raw(server: &TestServer, folder_path: &str) -> (StatusCode, Value) {
    server
        .post(ANALYZE, json!({"folder_path": folder_path}))
        .await
}

/// Analyses `folder_path`, asserts success and returns the run record.
pub async fn analyze(server: &TestServer, folder_path: &str) -> Value {
    let (status, body) = analyze_raw(server, folder_path).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "analysis of {folder_path} failed: {body}"
    );
    body
}

/// Analyses `folder_path` and returns the profile of the new run.
pub async fn profile(server: &TestServer, folder_path: &str) -> Value {
    analyze(server, folder_path).await["profile"].clone()
}

/// Builds the path of a run action, such as `/runs/run_0001/apply`.
pub fn action(run_id: &str, action: &str) -> String {
    format!("{RUNS}/{run_id}/{action}")
}

/// Returns the run record from `GET /runs/{run_id}`, asserting success.
pub async fn get_run(server: &TestServer, run_id: &str) -> Value {
    let (status, body) = server.get(&format!("{RUNS}/{run_id}")).await;
    assert_eq!(status, StatusCode::OK, "GET run {run_id} failed: {body}");
    body
}

/// Returns the proposals from `GET /runs/{run_id}/proposals{query}`, asserting
/// success.
pub async fn get_proposals(server: &TestServer, run_id: &str, query: &str) -> Vec<Value> {
    let path = format!("{}{query}", action(run_id, "proposals"));
    let (status, body) = server.get(&path).await;
    assert_eq!(status, StatusCode::OK, "GET {path} failed: {body}");
    assert_eq!(body["run_id"], run_id, "GET {path}: wrong run_id");
    body["proposals"]
        .as_array()
        .unwrap_or_else(|| panic!("GET {path}: proposals is not an array: {body}"))
        .clone()
}

/// Returns the proposal ids from `GET /runs/{run_id}/proposals{query}`.
pub async fn proposal_ids(server: &TestServer, run_id: &str, query: &str) -> Vec<String> {
    get_proposals(server, run_id, query)
        .await
        .iter()
        .map(|proposal| text(&proposal["proposal_id"]))
        .collect()
}

/// Returns the status of each proposal of a run, in order.
pub async fn proposal_statuses(server: &TestServer, run_id: &str) -> Vec<String> {
    get_proposals(server, run_id, "")
        .await
        .iter()
        .map(|proposal| text(&proposal["status"]))
        .collect()
}

/// Returns the run ids from `GET /runs{query}`, asserting success.
pub async fn run_ids(server: &TestServer, query: &str) -> Vec<String> {
    let path = format!("{RUNS}{query}");
    let (status, body) = server.get(&path).await;
    assert_eq!(status, StatusCode::OK, "GET {path} failed: {body}");
    body["runs"]
        .as_array()
        .unwrap_or_else(|| panic!("GET {path}: runs is not an array: {body}"))
        .iter()
        .map(|run| text(&run["run_id"]))
        .collect()
}

/// Reads one gauge from `GET /metrics`.
pub async fn metric(server: &TestServer, name: &str) -> i64 {
    let (status, text) = server.get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK, "GET /metrics failed: {text}");
    let prefix = format!("{name} ");
    let line = text
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("metric {name} missing from:\n{text}"));
    line[prefix.len()..]
        .parse()
        .unwrap_or_else(|error| panic!("metric line {line:?} has no integer value: {error}"))
}

/// Returns a JSON string value as text, failing on any other type.
pub fn text(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a JSON string, got {value}"))
        .to_owned()
}

/// Returns the two proposals of a new run, exactly as listed.
pub fn initial_proposals(run_id: &str) -> Vec<Value> {
    vec![
        json!({
            "proposal_id": format!("{run_id}-prop-01"),
            "change_type": "tag_enrichment",
            "risk_tier": "low",
            "confidence": 0.85,
            "action_mode": "auto",
            "status": "pending",
        }),
        json!({
            "proposal_id": format!("{run_id}-prop-02"),
            "change_type": "link_add",
            "risk_tier": "medium",
            "confidence": 0.72,
            "action_mode": "suggest",
            "status": "pending",
        }),
    ]
}
