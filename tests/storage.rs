//! Startup and storage faults: concurrent first starts, a port in use, and
//! replays from a database that cannot be written.

mod common;

use common::{TestDir, TestServer, database_url};
use mind_lite::{Database, Server, Settings};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::{Connection, SqliteConnection, sqlite::SqliteConnectOptions};
use std::str::FromStr;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_starts_all_migrate() {
    let dir = TestDir::new();
    let url = dir.database_url();

    let starts: Vec<_> = (0..12)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Database::connect(&url).await })
        })
        .collect();

    for (index, start) in starts.into_iter().enumerate() {
        let result = start.await.expect("start task");
        assert!(result.is_ok(), "start {index} failed: {:?}", result.err());
    }
}

#[tokio::test]
async fn port_in_use_creates_no_database() {
    let dir = TestDir::new();
    let occupied = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let mut settings = Settings::for_database(dir.database_url());
    settings.bind = occupied.local_addr().expect("local address");

    let result = Server::bind(settings).await;

    assert!(result.is_err(), "bind on an occupied port succeeded");
    assert!(
        !dir.db_path().exists(),
        "a failed bind left a database file behind"
    );
}

#[tokio::test]
async fn replay_works_on_read_only_database() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    let mark = json!({"event_id": "m1", "draft_id": "d1", "title": "T", "prepared_content": "C"});
    let (status, first) = server.post("/publish/mark-for-gom", mark.clone()).await;
    assert_eq!(status, StatusCode::OK, "first mark failed: {first}");
    server.stop().await;

    let read_only_url = database_url(&dir.db_path()).replace("mode=rwc", "mode=ro");
    let server = TestServer::start_with(Settings::for_database(read_only_url)).await;
    let (replay_status, replay) = server.post("/publish/mark-for-gom", mark).await;
    let fresh = json!({"event_id": "m2", "draft_id": "d2", "title": "T", "prepared_content": "C"});
    let (fresh_status, fresh_body) = server.post("/publish/mark-for-gom", fresh).await;

    assert_eq!(replay_status, StatusCode::OK, "replay failed: {replay}");
    assert_eq!(
        replay["idempotency"]["duplicate"], true,
        "not a replay: {replay}"
    );
    assert_eq!(
        replay["draft_id"], first["draft_id"],
        "replayed another draft: {replay}"
    );
    assert_eq!(
        fresh_status,
        StatusCode::SERVICE_UNAVAILABLE,
        "a write to a read-only database must be 503: {fresh_body}"
    );
    assert_eq!(
        fresh_body["code"], "storage_unavailable",
        "body: {fresh_body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn stateless_routes_ignore_write_lock() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    // Another process holds the write lock, as a backup tool or a second
    // daemon on the same file would.
    let options = SqliteConnectOptions::from_str(&dir.database_url()).expect("database url");
    let mut holder = SqliteConnection::connect_with(&options)
        .await
        .expect("open a second connection");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .expect("take the write lock");

    // Routes that store nothing must not wait for the write lock.
    let stateless = [
        ("/ask", json!({"query": "q"})),
        (
            "/links/apply",
            json!({"source_note_id": "n1", "links": [{"target_note_id": "n2", "confidence": 0.9}]}),
        ),
        ("/policy/sensitivity/check", json!({"content": "x"})),
        (
            "/organize/classify",
            json!({"notes": [{"note_id": "n1", "title": "t"}]}),
        ),
    ];
    for (path, body) in stateless {
        let (status, response) = server.post(path, body).await;
        assert_eq!(status, StatusCode::OK, "{path} failed: {response}");
    }
    let (status, response) = server
        .post("/ask", json!({"query": "q", "event_id": "e1"}))
        .await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "an ask that must be recorded needs the write lock: {response}"
    );

    sqlx::query("ROLLBACK")
        .execute(&mut holder)
        .await
        .expect("release the write lock");
    holder.close().await.expect("close the second connection");
    server.stop().await;
}

/// Takes the write lock from a second connection, as another process would,
/// and gives it back after `hold` from a background task.
async fn hold_write_lock(dir: &TestDir, hold: std::time::Duration) -> tokio::task::JoinHandle<()> {
    let options = SqliteConnectOptions::from_str(&dir.database_url()).expect("database url");
    let mut holder = SqliteConnection::connect_with(&options)
        .await
        .expect("open a second connection");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .expect("take the write lock");
    tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        sqlx::query("ROLLBACK")
            .execute(&mut holder)
            .await
            .expect("release the write lock");
        holder.close().await.expect("close the second connection");
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_count_gives_up_on_foreign_lock() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    let ask = json!({"query": "q", "event_id": "e1"});
    let (status, first) = server.post("/ask", ask.clone()).await;
    assert_eq!(status, StatusCode::OK, "first ask failed: {first}");

    // The count gives up long before the lock is released, so a replay is
    // not kept waiting for as long as a write would be.
    let release = hold_write_lock(&dir, std::time::Duration::from_secs(3)).await;
    let (status, replay) = server.post("/ask", ask.clone()).await;
    assert_eq!(status, StatusCode::OK, "replay failed: {replay}");
    assert_eq!(replay["idempotency"]["duplicate"], true, "body: {replay}");
    release.await.expect("release task");
    let rows = common::requests::ledger_rows(&dir, "ask", "e1").await;
    assert_eq!(
        rows[0].1, 0,
        "the count waited for the other process's lock to be released"
    );

    // A write after that still waits for a lock held for a second.
    let release = hold_write_lock(&dir, std::time::Duration::from_secs(1)).await;
    let (status, fresh) = server
        .post("/ask", json!({"query": "q", "event_id": "e2"}))
        .await;
    release.await.expect("release task");
    assert_eq!(
        status,
        StatusCode::OK,
        "a write no longer waits the configured busy timeout: {fresh}"
    );

    let (status, replay) = server.post("/ask", ask).await;
    assert_eq!(status, StatusCode::OK, "replay failed: {replay}");
    let rows = common::requests::ledger_rows(&dir, "ask", "e1").await;
    assert_eq!(rows[0].1, 1, "a replay without a lock was not counted");
    server.stop().await;
}

#[tokio::test]
async fn clean_stop_leaves_one_file() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    for index in 0..20 {
        let mark = json!({"event_id": format!("m{index}"), "draft_id": format!("d{index}"),
                          "title": "T", "prepared_content": "C"});
        let (status, body) = server.post("/publish/mark-for-gom", mark).await;
        assert_eq!(status, StatusCode::OK, "mark {index} failed: {body}");
    }
    server.stop().await;

    // After a clean stop the database file alone holds every committed write,
    // so copying that one file is a complete backup.
    let wal = dir.db_path().with_extension("db-wal");
    let wal_bytes = std::fs::metadata(&wal).map_or(0, |metadata| metadata.len());
    assert_eq!(wal_bytes, 0, "{} still holds writes", wal.display());
    let copy = dir.db_path().with_extension("copy");
    std::fs::copy(dir.db_path(), &copy).expect("copy the database file");
    let options = SqliteConnectOptions::from_str(&database_url(&copy)).expect("database url");
    let mut connection = SqliteConnection::connect_with(&options)
        .await
        .expect("open the copy");
    let queued: i64 = sqlx::query_scalar("select count(*) from drafts")
        .fetch_one(&mut connection)
        .await
        .expect("count drafts");
    assert_eq!(queued, 20, "the copied file lacks committed drafts");
    connection.close().await.expect("close the copy");
}
