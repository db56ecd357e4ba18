//! Crash and shutdown behaviour of the built daemon binary: a SIGKILL during
//! a load of marks loses no acknowledged write and leaves no write half done,
//! and SIGTERM stops the daemon with exit status 0 and keeps its data.

mod common;

use std::{
    collections::{BTreeSet, HashMap},
    fs::File,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    str::FromStr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::publish::{MARK, QUEUE};
use common::requests::{parse_json, send_text, text_before_idempotency};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, SqliteConnection, sqlite::SqliteConnectOptions};

/// Concurrent client tasks of the load.
const LOAD_TASKS: usize = 8;
/// Requests each load task sends at most.
const REQUESTS_PER_TASK: usize = 200;
/// Acknowledged marks to wait for before the daemon is stopped.
const ACKNOWLEDGED_BEFORE_STOP: usize = 50;

/// Bound on waiting for `GET /health` to return 200 after a start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on waiting for the load to reach `ACKNOWLEDGED_BEFORE_STOP`.
const LOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on waiting for the process to exit after a signal. The daemon's own
/// shutdown timeout for requests in flight is 30 s by default.
const EXIT_TIMEOUT: Duration = Duration::from_secs(45);
/// Bound on one HTTP request, so that no client task can hang the test.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// The daemon process

/// A running daemon binary. Dropping it kills the process, so that a failed
/// assertion never leaves a daemon behind.
struct Daemon {
    child: Child,
    base_url: String,
    log_path: PathBuf,
}

impl Daemon {
    /// Starts the binary on `db_path` and a free loopback port, waits until
    /// `GET /health` returns 200 and writes the daemon's log to `log_path`.
    ///
    /// The free port is found by binding port 0 and releasing it, so another
    /// process may take it before the daemon binds. A start whose process
    /// exits early is therefore retried on a new port, three times at most.
    async fn start(db_path: &Path, log_path: &Path) -> Daemon {
        let client = http_client();
        for attempt in 1..=3 {
            let port = free_port();
            let log = File::create(log_path).expect("create the daemon log file");
            let child = Command::new(env!("CARGO_BIN_EXE_mind-lite"))
                .arg("--database-url")
                .arg(format!("sqlite://{}?mode=rwc", db_path.display()))
                .arg("--bind")
                .arg(format!("127.0.0.1:{port}"))
                // The working directory is the test's own, so that no `.env`
                // file of the repository changes the settings.
                .current_dir(log_path.parent().expect("log file has a parent"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .expect("spawn the mind-lite binary");
            let mut daemon = Daemon {
                child,
                base_url: format!("http://127.0.0.1:{port}"),
                log_path: log_path.to_owned(),
            };

            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if let Some(status) = daemon.child.try_wait().expect("poll the daemon process") {
                    eprintln!(
                        "daemon start {attempt} exited with {status}; log:\n{}",
                        daemon.log()
                    );
                    break;
                }
                let health = client.get(daemon.url("/health")).send().await;
                if health.is_ok_and(|response| response.status() == StatusCode::OK) {
                    return daemon;
                }
                assert!(
                    Instant::now() < deadline,
                    "the daemon did not respond to GET /health within {START_TIMEOUT:?}; log:\n{}",
                    daemon.log()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("the daemon exited during start three times; see the logs above");
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_else(|error| format!("(no log: {error})"))
    }

    /// Sends SIGKILL and waits for the process to exit.
    async fn kill(&mut self) -> ExitStatus {
        self.child.kill().expect("send SIGKILL to the daemon");
        self.wait_for_exit().await
    }

    /// Sends SIGTERM with the `kill` command and waits for the process to exit.
    async fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM failed with {status}");
        self.wait_for_exit().await
    }

    async fn wait_for_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the daemon process") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not exit within {EXIT_TIMEOUT:?} after the signal; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Returns a loopback port that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("read the bound port").port()
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("build the HTTP client")
}

// ---------------------------------------------------------------------------
// The load

/// A mark request of the load and, when the daemon responded with 200, the
/// raw response text.
#[derive(Debug, Clone)]
struct SentMark {
    event_id: String,
    draft_id: String,
    request: Value,
    response: Option<String>,
}

/// What the load saw before and during the stop.
#[derive(Debug, Default)]
struct LoadOutcome {
    /// Requests that got 200, with their responses.
    acknowledged: Vec<SentMark>,
    /// Requests that got no HTTP response at all (the connection failed).
    unanswered: Vec<SentMark>,
    /// Requests that got a status other than 200, as `status body`.
    rejected: Vec<String>,
}

impl LoadOutcome {
    fn sent(&self) -> usize {
        self.acknowledged.len() + self.unanswered.len() + self.rejected.len()
    }
}

fn load_request(task: usize, index: usize) -> SentMark {
    let event_id = format!("crash-{task}-{index}");
    let draft_id = format!("draft-{task}-{index}");
    let request = json!({
        "event_id": event_id,
        "draft_id": draft_id,
        "title": format!("Title of {draft_id}"),
        "prepared_content": format!("Content of {draft_id}: café <b>&\"\nline two"),
    });
    SentMark {
        event_id,
        draft_id,
        request,
        response: None,
    }
}

/// How the daemon is stopped while the load runs.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Kill,
    Terminate,
}

/// Sends marks with fresh event ids from `LOAD_TASKS` tasks, stops the
/// daemon with `stop` once `ACKNOWLEDGED_BEFORE_STOP` marks got 200, and
/// returns what every task saw together with the exit status.
async fn load_then_stop(daemon: &mut Daemon, stop: Stop) -> (LoadOutcome, ExitStatus) {
    let client = http_client();
    let url = daemon.url(MARK);
    let acknowledged_count = Arc::new(AtomicUsize::new(0));
    let outcome = Arc::new(Mutex::new(LoadOutcome::default()));

    let tasks: Vec<_> = (0..LOAD_TASKS)
        .map(|task| {
            let client = client.clone();
            let url = url.clone();
            let acknowledged_count = Arc::clone(&acknowledged_count);
            let outcome = Arc::clone(&outcome);
            tokio::spawn(async move {
                for index in 0..REQUESTS_PER_TASK {
                    let mut sent = load_request(task, index);
                    let result = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(sent.request.to_string())
                        .send()
                        .await;
                    let response = match result {
                        Ok(response) => response,
                        Err(_) => {
                            // The daemon is gone, so this task stops.
                            outcome.lock().unwrap().unanswered.push(sent);
                            return;
                        }
                    };
                    let status = response.status();
                    let Ok(text) = response.text().await else {
                        outcome.lock().unwrap().unanswered.push(sent);
                        return;
                    };
                    if status == StatusCode::OK {
                        sent.response = Some(text);
                        outcome.lock().unwrap().acknowledged.push(sent);
                        acknowledged_count.fetch_add(1, Ordering::SeqCst);
                    } else {
                        outcome
                            .lock()
                            .unwrap()
                            .rejected
                            .push(format!("{status} {text}"));
                    }
                }
            })
        })
        .collect();

    let deadline = Instant::now() + LOAD_TIMEOUT;
    while acknowledged_count.load(Ordering::SeqCst) < ACKNOWLEDGED_BEFORE_STOP {
        assert!(
            Instant::now() < deadline,
            "only {} marks were acknowledged within {LOAD_TIMEOUT:?}; log:\n{}",
            acknowledged_count.load(Ordering::SeqCst),
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let exit_status = match stop {
        Stop::Kill => daemon.kill().await,
        Stop::Terminate => daemon.terminate().await,
    };

    for task in tasks {
        task.await.expect("load task panicked");
    }
    let outcome = std::mem::take(&mut *outcome.lock().unwrap());
    (outcome, exit_status)
}

// ---------------------------------------------------------------------------
// Checks after the restart

/// Sends `request` to the mark endpoint and returns the status and raw text.
async fn post_mark(
    client: &reqwest::Client,
    daemon: &Daemon,
    request: &Value,
) -> (StatusCode, String) {
    send_text(client, &daemon.url(MARK), request).await
}

/// Returns how often each draft id appears in the queue.
async fn queued_draft_counts(client: &reqwest::Client, daemon: &Daemon) -> HashMap<String, usize> {
    let response = client
        .get(daemon.url(QUEUE))
        .send()
        .await
        .expect("GET the queue of the restarted daemon");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "GET {QUEUE} failed after the restart"
    );
    let queue = parse_json(&response.text().await.expect("read the queue"));
    let mut counts = HashMap::new();
    for item in queue["items"].as_array().expect("queue has an items array") {
        let draft_id = item["draft_id"].as_str().expect("draft_id is a string");
        *counts.entry(draft_id.to_owned()).or_insert(0) += 1;
    }
    counts
}

/// Returns the event ids of every `publish_mark` row in the ledger.
async fn recorded_mark_event_ids(db_path: &Path) -> BTreeSet<String> {
    let url = format!("sqlite://{}", db_path.display());
    let options = SqliteConnectOptions::from_str(&url)
        .expect("parse database URL")
        .read_only(true);
    let mut connection = SqliteConnection::connect_with(&options)
        .await
        .expect("open the database read-only");
    let event_ids: Vec<String> =
        sqlx::query_scalar("select event_id from replay_records where operation = 'publish_mark'")
            .fetch_all(&mut connection)
            .await
            .expect("read replay_records");
    connection.close().await.expect("close the database");
    event_ids.into_iter().collect()
}

/// Checks that every acknowledged mark replays its first response and that
/// its draft is queued exactly once.
async fn check_acknowledged_survive(daemon: &Daemon, outcome: &LoadOutcome) {
    let client = http_client();
    for sent in &outcome.acknowledged {
        let first = sent
            .response
            .as_deref()
            .expect("acknowledged marks have a response");
        let (status, replay) = post_mark(&client, daemon, &sent.request).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "acknowledged mark {} failed after the restart: {replay}",
            sent.event_id
        );
        assert_eq!(
            parse_json(&replay)["idempotency"]["duplicate"],
            true,
            "acknowledged mark {} is not a replay after the restart: {replay}",
            sent.event_id
        );
        assert_eq!(
            text_before_idempotency(&replay),
            text_before_idempotency(first),
            "the replay of acknowledged mark {} differs from its first response",
            sent.event_id
        );
    }

    let counts = queued_draft_counts(&client, daemon).await;
    for sent in &outcome.acknowledged {
        assert_eq!(
            counts.get(&sent.draft_id).copied().unwrap_or(0),
            1,
            "acknowledged draft {} is not queued exactly once",
            sent.draft_id
        );
    }
    for (draft_id, count) in &counts {
        assert_eq!(*count, 1, "draft {draft_id} is queued {count} times");
    }
}

// ---------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_keeps_acknowledged_marks() {
    let dir = tempfile::tempdir().expect("create temporary directory");
    let db_path = dir.path().join("mind-lite.db");
    let mut daemon = Daemon::start(&db_path, &dir.path().join("first.log")).await;

    let (outcome, _) = load_then_stop(&mut daemon, Stop::Kill).await;
    println!(
        "SIGKILL: {} of {} marks acknowledged, {} unanswered, {} rejected",
        outcome.acknowledged.len(),
        outcome.sent(),
        outcome.unanswered.len(),
        outcome.rejected.len()
    );
    let daemon = Daemon::start(&db_path, &dir.path().join("second.log")).await;

    assert!(
        outcome.rejected.is_empty(),
        "marks were rejected during the load: {:?}",
        outcome.rejected
    );
    assert!(
        outcome.acknowledged.len() >= ACKNOWLEDGED_BEFORE_STOP,
        "fewer marks were acknowledged than the load waited for"
    );
    assert!(
        outcome.acknowledged.len() < LOAD_TASKS * REQUESTS_PER_TASK,
        "the whole load finished before the kill, so no request was in flight"
    );
    check_acknowledged_survive(&daemon, &outcome).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_leaves_no_partial_mark() {
    let dir = tempfile::tempdir().expect("create temporary directory");
    let db_path = dir.path().join("mind-lite.db");
    let mut daemon = Daemon::start(&db_path, &dir.path().join("first.log")).await;

    let (outcome, _) = load_then_stop(&mut daemon, Stop::Kill).await;
    let daemon = Daemon::start(&db_path, &dir.path().join("second.log")).await;
    let client = http_client();
    let queued = queued_draft_counts(&client, &daemon).await;
    let recorded = recorded_mark_event_ids(&db_path).await;

    // A draft and its ledger row are written in one transaction, so after the
    // kill the queue and the ledger name the same load requests.
    let queued_event_ids: BTreeSet<String> = queued
        .keys()
        .map(|draft_id| draft_id.replacen("draft-", "crash-", 1))
        .collect();
    assert_eq!(
        queued_event_ids, recorded,
        "the queue and the replay ledger disagree after the kill"
    );

    // A request cut off by the kill either committed completely (its retry is
    // a replay) or not at all (its retry executes now).
    assert!(
        !outcome.unanswered.is_empty(),
        "no request was cut off by the kill, so the test shows nothing"
    );
    let committed_unanswered = outcome
        .unanswered
        .iter()
        .filter(|sent| queued.contains_key(&sent.draft_id))
        .count();
    println!(
        "SIGKILL: {} marks acknowledged, {} cut off, of which {committed_unanswered} committed",
        outcome.acknowledged.len(),
        outcome.unanswered.len()
    );
    for sent in &outcome.unanswered {
        let committed_before = queued.contains_key(&sent.draft_id);
        let (status, retry) = post_mark(&client, &daemon, &sent.request).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "retry of cut-off mark {} failed: {retry}",
            sent.event_id
        );
        assert_eq!(
            parse_json(&retry)["idempotency"]["duplicate"],
            committed_before,
            "retry of cut-off mark {} disagrees with the queue (draft queued before: {committed_before}): {retry}",
            sent.event_id
        );
    }
    let queued_after = queued_draft_counts(&client, &daemon).await;
    for sent in &outcome.unanswered {
        assert_eq!(
            queued_after.get(&sent.draft_id).copied().unwrap_or(0),
            1,
            "retried draft {} is not queued exactly once",
            sent.draft_id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_exits_and_keeps_data() {
    let dir = tempfile::tempdir().expect("create temporary directory");
    let db_path = dir.path().join("mind-lite.db");
    let mut daemon = Daemon::start(&db_path, &dir.path().join("first.log")).await;
    let client = http_client();
    let request = json!({
        "event_id": "graceful-1",
        "draft_id": "graceful-draft",
        "title": "Graceful title",
        "prepared_content": "Graceful content",
    });
    let (status, first) = post_mark(&client, &daemon, &request).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "mark before SIGTERM failed: {first}"
    );

    let exit_status = daemon.terminate().await;
    let daemon = Daemon::start(&db_path, &dir.path().join("second.log")).await;
    let queued = queued_draft_counts(&client, &daemon).await;
    let (status, replay) = post_mark(&client, &daemon, &json!({"event_id": "graceful-1"})).await;

    assert_eq!(
        exit_status.code(),
        Some(0),
        "SIGTERM did not end the daemon with status 0 but {exit_status}"
    );
    assert_eq!(
        queued.get("graceful-draft").copied(),
        Some(1),
        "the draft marked before SIGTERM is not queued after the restart"
    );
    assert_eq!(
        status,
        StatusCode::OK,
        "replay after SIGTERM failed: {replay}"
    );
    assert_eq!(
        parse_json(&replay)["idempotency"]["duplicate"],
        true,
        "the mark before SIGTERM is not replayed after the restart: {replay}"
    );
    assert_eq!(
        text_before_idempotency(&replay),
        text_before_idempotency(&first),
        "the replay after SIGTERM differs from the first response"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_keeps_acknowledged() {
    let dir = tempfile::tempdir().expect("create temporary directory");
    let db_path = dir.path().join("mind-lite.db");
    let mut daemon = Daemon::start(&db_path, &dir.path().join("first.log")).await;

    let (outcome, exit_status) = load_then_stop(&mut daemon, Stop::Terminate).await;
    println!(
        "SIGTERM: {} of {} marks acknowledged, {} unanswered, {} rejected",
        outcome.acknowledged.len(),
        outcome.sent(),
        outcome.unanswered.len(),
        outcome.rejected.len()
    );
    let daemon = Daemon::start(&db_path, &dir.path().join("second.log")).await;

    assert_eq!(
        exit_status.code(),
        Some(0),
        "SIGTERM under load did not end the daemon with status 0 but {exit_status}"
    );
    assert!(
        outcome.rejected.is_empty(),
        "marks were rejected during the load: {:?}",
        outcome.rejected
    );
    check_acknowledged_survive(&daemon, &outcome).await;

    // Graceful shutdown lets requests in flight finish, so a mark that got no
    // response must not have been executed either.
    let queued = queued_draft_counts(&http_client(), &daemon).await;
    for sent in &outcome.unanswered {
        assert!(
            !queued.contains_key(&sent.draft_id),
            "mark {} was executed during graceful shutdown but got no response",
            sent.event_id
        );
    }
}
