//! Replay guarantees of the three idempotent publish operations, driven over
//! HTTP against the in-process daemon: a known `(operation, event_id)` returns
//! the first response without a second side effect, whatever the new payload,
//! across restarts and under concurrent duplicates. A failed request records
//! nothing, so a corrected retry with the same event id executes.

mod common;

use common::publish::{CONFIRM, EXPORT, MARK, published, queue};
use common::requests::{
    accepted, check_race, open_read_only, parse_json, post_text, race, replayed,
    text_before_idempotency,
};
use common::{TestDir, TestServer, assert_error_shape, without_idempotency};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use time::{OffsetDateTime, UtcOffset, format_description::well_known::Rfc3339};

/// Draft content with markup, quotes, a newline and non-ASCII text, so that
/// every export format has something to escape.
const CONTENT: &str = "Café notes <b>bold</b> & \"quoted\" text\nsecond line ☕";

/// Number of simultaneous requests in the concurrency tests.
const RACERS: usize = 32;

// ---------------------------------------------------------------------------
// Request bodies

fn mark_request(event_id: &str, draft_id: &str) -> Value {
    json!({
        "event_id": event_id,
        "draft_id": draft_id,
        "title": format!("Title of {draft_id}"),
        "prepared_content": CONTENT,
    })
}

fn export_request(event_id: &str, draft_id: &str, format: &str) -> Value {
    json!({"event_id": event_id, "draft_id": draft_id, "format": format})
}

fn confirm_request(event_id: &str, draft_id: &str) -> Value {
    json!({
        "event_id": event_id,
        "draft_id": draft_id,
        "published_url": format!("https://garden.example/{draft_id}"),
    })
}

// ---------------------------------------------------------------------------
// HTTP helpers

/// Marks a draft without an event id and checks that it was queued.
async fn mark_plain(server: &TestServer, draft_id: &str) {
    let body = json!({
        "draft_id": draft_id,
        "title": format!("Title of {draft_id}"),
        "prepared_content": CONTENT,
    });
    let (status, response) = server.post(MARK, body).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "setup mark of {draft_id} failed: {response}"
    );
}

/// Confirms a draft without an event id and checks that it was published.
async fn confirm_plain(server: &TestServer, draft_id: &str) {
    let body = json!({
        "draft_id": draft_id,
        "published_url": format!("https://garden.example/plain/{draft_id}"),
    });
    let (status, response) = server.post(CONFIRM, body).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "setup confirm of {draft_id} failed: {response}"
    );
}

fn draft_ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("list has no items array: {list}"))
        .iter()
        .map(|item| item["draft_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn queued_draft_ids(server: &TestServer) -> Vec<String> {
    draft_ids(&queue(server).await)
}

async fn published_draft_ids(server: &TestServer) -> Vec<String> {
    draft_ids(&published(server).await)
}

// ---------------------------------------------------------------------------
// Ledger helpers

/// One row of `replay_records`.
#[derive(Debug, sqlx::FromRow)]
struct LedgerRow {
    operation: String,
    event_id: String,
    request_sha256: String,
    request_body: String,
    response_body: String,
    first_seen_at: String,
    replay_count: i64,
    last_replayed_at: Option<String>,
}

/// Returns every ledger row stored for `(operation, event_id)`.
async fn ledger_rows(dir: &TestDir, operation: &str, event_id: &str) -> Vec<LedgerRow> {
    let mut connection = open_read_only(dir).await;
    let rows: Vec<LedgerRow> = sqlx::query_as(
        "select operation, event_id, request_sha256, request_body, response_body,
                first_seen_at, replay_count, last_replayed_at
         from replay_records where operation = ?1 and event_id = ?2",
    )
    .bind(operation)
    .bind(event_id)
    .fetch_all(&mut connection)
    .await
    .expect("query replay_records");
    connection.close().await.expect("close the test database");
    rows
}

/// Returns the single ledger row of `(operation, event_id)`.
async fn ledger_row(dir: &TestDir, operation: &str, event_id: &str) -> LedgerRow {
    let mut rows = ledger_rows(dir, operation, event_id).await;
    assert_eq!(
        rows.len(),
        1,
        "expected one replay_records row for ({operation}, {event_id}), found {rows:?}"
    );
    rows.remove(0)
}

async fn ledger_row_count(dir: &TestDir) -> i64 {
    let mut connection = open_read_only(dir).await;
    let count: i64 = sqlx::query_scalar("select count(*) from replay_records")
        .fetch_one(&mut connection)
        .await
        .expect("count replay_records");
    connection.close().await.expect("close the test database");
    count
}

/// Parses an RFC 3339 timestamp and checks that it is written in UTC.
fn parse_utc_timestamp(text: &str, column: &str) -> OffsetDateTime {
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .unwrap_or_else(|error| panic!("{column} {text:?} is not RFC 3339: {error}"));
    assert_eq!(
        parsed.offset(),
        UtcOffset::UTC,
        "{column} {text:?} is not in UTC"
    );
    assert!(
        text.ends_with('Z'),
        "{column} {text:?} does not use the Z suffix for UTC"
    );
    parsed
}

// ---------------------------------------------------------------------------
// publish_mark

#[tokio::test]
async fn mark_replay_ignores_changed_payload() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    let (status, first) = server.post(MARK, mark_request("m1", "d1")).await;
    assert_eq!(status, StatusCode::OK, "first mark failed: {first}");

    let changed = json!({
        "event_id": "m1",
        "draft_id": "d2",
        "title": "Another title",
        "prepared_content": "Another content",
    });
    let (status, replay) = server.post(MARK, changed).await;

    assert_eq!(status, StatusCode::OK, "replayed mark failed: {replay}");
    assert_eq!(
        replay["idempotency"],
        replayed("m1"),
        "a mark with a known event id is not a replay: {replay}"
    );
    assert_eq!(
        without_idempotency(&replay),
        without_idempotency(&first),
        "the replay is not the first response"
    );
    assert_eq!(
        queued_draft_ids(&server).await,
        ["d1"],
        "the changed payload of a replayed mark was queued"
    );
    server.stop().await;
}

#[tokio::test]
async fn mark_replays_event_id_only_body() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    let (status, first) = server.post(MARK, mark_request("m1", "d1")).await;
    assert_eq!(status, StatusCode::OK, "first mark failed: {first}");

    let (status, replay) = server.post(MARK, json!({"event_id": "m1"})).await;

    assert_eq!(
        status,
        StatusCode::OK,
        "a mark body of only a known event id was not replayed: {replay}"
    );
    assert_eq!(
        replay["idempotency"],
        replayed("m1"),
        "the replay has the wrong idempotency object: {replay}"
    );
    assert_eq!(
        without_idempotency(&replay),
        without_idempotency(&first),
        "the replay is not the first response"
    );
    assert_eq!(
        queued_draft_ids(&server).await,
        ["d1"],
        "the queue changed on a replay"
    );
    server.stop().await;
}

#[tokio::test]
async fn mark_replays_after_restart() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    let (status, first) = post_text(&server, MARK, &mark_request("m1", "d1")).await;
    assert_eq!(status, StatusCode::OK, "first mark failed: {first}");
    server.stop().await;

    let server = TestServer::start(&dir).await;
    let (status, replay) = post_text(&server, MARK, &json!({"event_id": "m1"})).await;

    assert_eq!(
        status,
        StatusCode::OK,
        "mark replay after restart failed: {replay}"
    );
    assert_eq!(
        parse_json(&replay)["idempotency"],
        replayed("m1"),
        "the mark after a restart is not a replay: {replay}"
    );
    assert_eq!(
        without_idempotency(&parse_json(&replay)),
        without_idempotency(&parse_json(&first)),
        "the replayed JSON differs from the first response"
    );
    assert_eq!(
        text_before_idempotency(&replay),
        text_before_idempotency(&first),
        "the replayed bytes differ from the first response"
    );
    assert_eq!(
        queued_draft_ids(&server).await,
        ["d1"],
        "the queue after restart and replay is wrong"
    );
    server.stop().await;
}

#[tokio::test]
async fn mark_replays_trimmed_event_id() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    let (status, first) = server.post(MARK, mark_request("m1", "d1")).await;
    assert_eq!(status, StatusCode::OK, "first mark failed: {first}");
    let (status, padded_first) = server.post(MARK, mark_request("\t m2\n", "d2")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "mark with padded id failed: {padded_first}"
    );

    let (_, padded_replay) = server.post(MARK, mark_request(" m1 ", "d3")).await;
    let (_, bare_replay) = server.post(MARK, mark_request("m2", "d4")).await;
    let (_, other_case) = server.post(MARK, mark_request("M1", "d5")).await;

    assert_eq!(
        padded_first["idempotency"],
        accepted("m2"),
        "a padded event id is not stored trimmed: {padded_first}"
    );
    assert_eq!(
        padded_replay["idempotency"],
        replayed("m1"),
        "\" m1 \" does not replay m1: {padded_replay}"
    );
    assert_eq!(
        without_idempotency(&padded_replay),
        without_idempotency(&first),
        "\" m1 \" replayed another response than m1's"
    );
    assert_eq!(
        bare_replay["idempotency"],
        replayed("m2"),
        "m2 does not replay the padded m2: {bare_replay}"
    );
    assert_eq!(
        other_case["idempotency"],
        accepted("M1"),
        "event ids must be case-sensitive: {other_case}"
    );
    assert_eq!(
        queued_draft_ids(&server).await,
        ["d1", "d2", "d5"],
        "a replay with a padded or bare event id queued a draft"
    );
    server.stop().await;
}

#[tokio::test]
async fn mark_replay_after_confirm_is_stale() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    let (status, first) = server.post(MARK, mark_request("m1", "d1")).await;
    assert_eq!(status, StatusCode::OK, "first mark failed: {first}");
    confirm_plain(&server, "d1").await;

    let (status, replay) = server.post(MARK, mark_request("m1", "d1")).await;

    assert_eq!(status, StatusCode::OK, "replayed mark failed: {replay}");
    assert_eq!(
        replay["idempotency"],
        replayed("m1"),
        "the mark after confirm is not a replay: {replay}"
    );
    assert_eq!(
        replay["status"], "queued_for_gom",
        "a replayed mark must keep the first status: {replay}"
    );
    assert_eq!(
        queued_draft_ids(&server).await,
        Vec::<String>::new(),
        "the replayed mark queued the confirmed draft again"
    );
    assert_eq!(
        published_draft_ids(&server).await,
        ["d1"],
        "the published list changed on a mark replay"
    );
    server.stop().await;
}

#[tokio::test]
async fn mark_retry_after_failure_executes() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    let failures = [
        json!({"event_id": "m1", "draft_id": "d1", "title": "Title of d1"}),
        json!({"event_id": "m1", "draft_id": "d1", "title": "  ", "prepared_content": CONTENT}),
        json!({"event_id": "m1", "draft_id": 5, "title": "Title of d1", "prepared_content": CONTENT}),
    ];
    for failure in failures {
        let (status, error) = server.post(MARK, failure.clone()).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "invalid mark {failure} was not rejected: {error}"
        );
        assert_error_shape(&error);
        assert_eq!(
            error["code"], "missing_field",
            "invalid mark {failure} has the wrong error code: {error}"
        );
    }

    let (status, retry) = server.post(MARK, mark_request("m1", "d1")).await;
    let (_, replay) = server.post(MARK, json!({"event_id": "m1"})).await;

    assert_eq!(
        status,
        StatusCode::OK,
        "corrected mark after failures failed: {retry}"
    );
    assert_eq!(
        retry["idempotency"],
        accepted("m1"),
        "failed marks burned the event id: {retry}"
    );
    assert_eq!(
        queued_draft_ids(&server).await,
        ["d1"],
        "the corrected mark did not queue the draft"
    );
    assert_eq!(
        replay["idempotency"],
        replayed("m1"),
        "the corrected mark was not recorded for replay: {replay}"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// publish_export

#[tokio::test]
async fn export_replay_ignores_changed_payload() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    mark_plain(&server, "d1").await;
    let queue_before = queue(&server).await;
    let (status, first) = server
        .post(EXPORT, export_request("x1", "d1", "markdown"))
        .await;
    assert_eq!(status, StatusCode::OK, "first export failed: {first}");

    let (_, other_format) = server
        .post(EXPORT, export_request("x1", "d1", "html"))
        .await;
    let (_, unknown_draft) = server
        .post(EXPORT, export_request("x1", "missing", "json"))
        .await;

    assert_eq!(
        other_format["idempotency"],
        replayed("x1"),
        "an export with another format is not a replay: {other_format}"
    );
    assert_eq!(
        without_idempotency(&other_format),
        without_idempotency(&first),
        "the export replay with another format is not the first response"
    );
    assert_eq!(
        unknown_draft["idempotency"],
        replayed("x1"),
        "an export of an unknown draft with a known event id is not a replay: {unknown_draft}"
    );
    assert_eq!(
        without_idempotency(&unknown_draft),
        without_idempotency(&first),
        "the export replay with another draft is not the first response"
    );
    assert_eq!(
        queue(&server).await,
        queue_before,
        "exports and their replays changed the queue"
    );
    server.stop().await;
}

#[tokio::test]
async fn export_replays_event_id_only_body() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    mark_plain(&server, "d1").await;
    let (status, first) = server
        .post(EXPORT, export_request("x1", "d1", "html"))
        .await;
    assert_eq!(status, StatusCode::OK, "first export failed: {first}");

    let (status, replay) = server.post(EXPORT, json!({"event_id": "x1"})).await;

    assert_eq!(
        status,
        StatusCode::OK,
        "an export body of only a known event id was not replayed: {replay}"
    );
    assert_eq!(
        replay["idempotency"],
        replayed("x1"),
        "the replay has the wrong idempotency object: {replay}"
    );
    assert_eq!(
        without_idempotency(&replay),
        without_idempotency(&first),
        "the replay is not the first response"
    );
    assert_eq!(
        queued_draft_ids(&server).await,
        ["d1"],
        "the queue changed on an export replay"
    );
    server.stop().await;
}

#[tokio::test]
async fn export_replays_after_restart() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    mark_plain(&server, "d1").await;
    let (status, first) = post_text(&server, EXPORT, &export_request("x1", "d1", "json")).await;
    assert_eq!(status, StatusCode::OK, "first export failed: {first}");
    server.stop().await;

    let server = TestServer::start(&dir).await;
    let (status, replay) = post_text(&server, EXPORT, &json!({"event_id": "x1"})).await;

    assert_eq!(
        status,
        StatusCode::OK,
        "export replay after restart failed: {replay}"
    );
    assert_eq!(
        parse_json(&replay)["idempotency"],
        replayed("x1"),
        "the export after a restart is not a replay: {replay}"
    );
    assert_eq!(
        without_idempotency(&parse_json(&replay)),
        without_idempotency(&parse_json(&first)),
        "the replayed JSON differs from the first response"
    );
    assert_eq!(
        text_before_idempotency(&replay),
        text_before_idempotency(&first),
        "the replayed bytes differ from the first response"
    );
    assert_eq!(
        queued_draft_ids(&server).await,
        ["d1"],
        "the queue after restart and replay is wrong"
    );
    server.stop().await;
}

#[tokio::test]
async fn export_replays_trimmed_event_id() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    mark_plain(&server, "d1").await;
    let (status, first) = server
        .post(EXPORT, export_request("x1", "d1", "markdown"))
        .await;
    assert_eq!(status, StatusCode::OK, "first export failed: {first}");
    let (status, padded_first) = server
        .post(EXPORT, export_request("\t x2\n", "d1", "html"))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "export with padded id failed: {padded_first}"
    );

    let (_, padded_replay) = server
        .post(EXPORT, export_request(" x1 ", "d1", "json"))
        .await;
    let (_, bare_replay) = server
        .post(EXPORT, export_request("x2", "d1", "json"))
        .await;

    assert_eq!(
        padded_first["idempotency"],
        accepted("x2"),
        "a padded event id is not stored trimmed: {padded_first}"
    );
    assert_eq!(
        padded_replay["idempotency"],
        replayed("x1"),
        "\" x1 \" does not replay x1: {padded_replay}"
    );
    assert_eq!(
        without_idempotency(&padded_replay),
        without_idempotency(&first),
        "\" x1 \" replayed another response than x1's"
    );
    assert_eq!(
        bare_replay["idempotency"],
        replayed("x2"),
        "x2 does not replay the padded x2: {bare_replay}"
    );
    assert_eq!(
        without_idempotency(&bare_replay),
        without_idempotency(&padded_first),
        "x2 replayed another response than the padded x2's"
    );
    server.stop().await;
}

#[tokio::test]
async fn export_replay_after_confirm_keeps_artifact() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    mark_plain(&server, "d1").await;
    let (status, first) = server
        .post(EXPORT, export_request("x1", "d1", "html"))
        .await;
    assert_eq!(status, StatusCode::OK, "first export failed: {first}");
    confirm_plain(&server, "d1").await;
    let (status, fresh) = server
        .post(EXPORT, json!({"draft_id": "d1", "format": "html"}))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the confirmed draft is still exportable, so the test shows nothing: {fresh}"
    );

    let (status, replay) = server
        .post(EXPORT, export_request("x1", "d1", "html"))
        .await;

    assert_eq!(
        status,
        StatusCode::OK,
        "export replay after the draft left the queue failed: {replay}"
    );
    assert_eq!(
        replay["idempotency"],
        replayed("x1"),
        "the export after confirm is not a replay: {replay}"
    );
    assert_eq!(
        replay["artifact"], first["artifact"],
        "the replay does not return the first artifact"
    );
    assert_eq!(
        without_idempotency(&replay),
        without_idempotency(&first),
        "the replay is not the first response"
    );
    server.stop().await;
}

#[tokio::test]
async fn export_retry_after_failure_executes() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    let failures = [
        (export_request("x1", "d1", "html"), "unknown_draft"),
        (json!({"event_id": "x1", "draft_id": "d1"}), "missing_field"),
        (export_request("x1", "d1", "pdf"), "invalid_field"),
        (export_request("x1", "d1", " html"), "invalid_field"),
        (json!({"event_id": "x1", "format": "html"}), "missing_field"),
    ];
    for (failure, code) in failures {
        let (status, error) = server.post(EXPORT, failure.clone()).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "invalid export {failure} was not rejected: {error}"
        );
        assert_error_shape(&error);
        assert_eq!(
            error["code"], code,
            "invalid export {failure} has the wrong error code: {error}"
        );
    }
    mark_plain(&server, "d1").await;

    let (status, retry) = server
        .post(EXPORT, export_request("x1", "d1", "html"))
        .await;
    let (_, replay) = server.post(EXPORT, json!({"event_id": "x1"})).await;

    assert_eq!(
        status,
        StatusCode::OK,
        "corrected export after failures failed: {retry}"
    );
    assert_eq!(
        retry["idempotency"],
        accepted("x1"),
        "failed exports burned the event id: {retry}"
    );
    assert_eq!(
        retry["format"], "html",
        "the corrected export has the wrong format: {retry}"
    );
    assert_eq!(
        replay["idempotency"],
        replayed("x1"),
        "the corrected export was not recorded for replay: {replay}"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// publish_confirm

#[tokio::test]
async fn confirm_replay_ignores_changed_payload() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    mark_plain(&server, "d1").await;
    mark_plain(&server, "d2").await;
    let (status, first) = server.post(CONFIRM, confirm_request("c1", "d1")).await;
    assert_eq!(status, StatusCode::OK, "first confirm failed: {first}");

    let (status, replay) = server.post(CONFIRM, confirm_request("c1", "d2")).await;

    assert_eq!(status, StatusCode::OK, "replayed confirm failed: {replay}");
    assert_eq!(
        replay["idempotency"],
        replayed("c1"),
        "a confirm with a known event id is not a replay: {replay}"
    );
    assert_eq!(
        without_idempotency(&replay),
        without_idempotency(&first),
        "the replay is not the first response"
    );
    assert_eq!(
        queued_draft_ids(&server).await,
        ["d2"],
        "the changed payload of a replayed confirm took d2 off the queue"
    );
    assert_eq!(
        published_draft_ids(&server).await,
        ["d1"],
        "the changed payload of a replayed confirm was published"
    );
    server.stop().await;
}

#[tokio::test]
async fn confirm_replays_event_id_only_body() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    mark_plain(&server, "d1").await;
    let (status, first) = server.post(CONFIRM, confirm_request("c1", "d1")).await;
    assert_eq!(status, StatusCode::OK, "first confirm failed: {first}");

    let (status, replay) = server.post(CONFIRM, json!({"event_id": "c1"})).await;

    assert_eq!(
        status,
        StatusCode::OK,
        "a confirm body of only a known event id was not replayed: {replay}"
    );
    assert_eq!(
        replay["idempotency"],
        replayed("c1"),
        "the replay has the wrong idempotency object: {replay}"
    );
    assert_eq!(
        without_idempotency(&replay),
        without_idempotency(&first),
        "the replay is not the first response"
    );
    assert_eq!(
        published_draft_ids(&server).await,
        ["d1"],
        "the published list changed on a replay"
    );
    server.stop().await;
}

#[tokio::test]
async fn confirm_replays_after_restart() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    mark_plain(&server, "d1").await;
    let (status, first) = post_text(&server, CONFIRM, &confirm_request("c1", "d1")).await;
    assert_eq!(status, StatusCode::OK, "first confirm failed: {first}");
    server.stop().await;

    let server = TestServer::start(&dir).await;
    let (status, replay) = post_text(&server, CONFIRM, &json!({"event_id": "c1"})).await;

    assert_eq!(
        status,
        StatusCode::OK,
        "confirm replay after restart failed: {replay}"
    );
    assert_eq!(
        parse_json(&replay)["idempotency"],
        replayed("c1"),
        "the confirm after a restart is not a replay: {replay}"
    );
    assert_eq!(
        without_idempotency(&parse_json(&replay)),
        without_idempotency(&parse_json(&first)),
        "the replayed JSON differs from the first response"
    );
    assert_eq!(
        text_before_idempotency(&replay),
        text_before_idempotency(&first),
        "the replayed bytes differ from the first response"
    );
    assert_eq!(
        published_draft_ids(&server).await,
        ["d1"],
        "the published list after restart and replay is wrong"
    );
    server.stop().await;
}

#[tokio::test]
async fn confirm_replays_trimmed_event_id() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    mark_plain(&server, "d1").await;
    mark_plain(&server, "d2").await;
    mark_plain(&server, "d3").await;
    let (status, first) = server.post(CONFIRM, confirm_request("c1", "d1")).await;
    assert_eq!(status, StatusCode::OK, "first confirm failed: {first}");
    let (status, padded_first) = server.post(CONFIRM, confirm_request("\t c2\n", "d2")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "confirm with padded id failed: {padded_first}"
    );

    let (_, padded_replay) = server.post(CONFIRM, confirm_request(" c1 ", "d3")).await;
    let (_, bare_replay) = server.post(CONFIRM, confirm_request("c2", "d3")).await;

    assert_eq!(
        padded_first["idempotency"],
        accepted("c2"),
        "a padded event id is not stored trimmed: {padded_first}"
    );
    assert_eq!(
        padded_replay["idempotency"],
        replayed("c1"),
        "\" c1 \" does not replay c1: {padded_replay}"
    );
    assert_eq!(
        without_idempotency(&padded_replay),
        without_idempotency(&first),
        "\" c1 \" replayed another response than c1's"
    );
    assert_eq!(
        bare_replay["idempotency"],
        replayed("c2"),
        "c2 does not replay the padded c2: {bare_replay}"
    );
    assert_eq!(
        queued_draft_ids(&server).await,
        ["d3"],
        "a replay with a padded or bare event id confirmed d3"
    );
    server.stop().await;
}

#[tokio::test]
async fn confirm_replay_publishes_nothing_again() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    mark_plain(&server, "d1").await;
    let (status, first) = server.post(CONFIRM, confirm_request("c1", "d1")).await;
    assert_eq!(status, StatusCode::OK, "first confirm failed: {first}");
    mark_plain(&server, "d1").await;

    let (status, replay) = server.post(CONFIRM, confirm_request("c1", "d1")).await;

    assert_eq!(status, StatusCode::OK, "replayed confirm failed: {replay}");
    assert_eq!(
        replay["idempotency"],
        replayed("c1"),
        "the repeated confirm is not a replay: {replay}"
    );
    assert_eq!(
        queued_draft_ids(&server).await,
        ["d1"],
        "the replayed confirm took the marked-again draft off the queue"
    );
    assert_eq!(
        published_draft_ids(&server).await,
        ["d1"],
        "the replayed confirm published the draft a second time"
    );
    server.stop().await;
}

#[tokio::test]
async fn confirm_retry_after_failure_executes() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    let failures = [
        (
            json!({"event_id": "c1", "draft_id": "d9", "published_url": "u"}),
            "invalid_field",
        ),
        (
            json!({"event_id": "c1", "draft_id": "d9", "published_url": "ftp://garden.example/d9"}),
            "invalid_field",
        ),
        (
            json!({"event_id": "c1", "draft_id": "d9", "published_url": "/d9"}),
            "invalid_field",
        ),
        (json!({"event_id": "c1", "draft_id": "d9"}), "missing_field"),
        (confirm_request("c1", "d9"), "unknown_draft"),
    ];
    for (failure, code) in failures {
        let (status, error) = server.post(CONFIRM, failure.clone()).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "invalid confirm {failure} was not rejected: {error}"
        );
        assert_error_shape(&error);
        assert_eq!(
            error["code"], code,
            "invalid confirm {failure} has the wrong error code: {error}"
        );
    }
    mark_plain(&server, "d9").await;

    let (status, retry) = server.post(CONFIRM, confirm_request("c1", "d9")).await;
    let (_, replay) = server.post(CONFIRM, json!({"event_id": "c1"})).await;

    assert_eq!(
        status,
        StatusCode::OK,
        "corrected confirm after failures failed: {retry}"
    );
    assert_eq!(
        retry["idempotency"],
        accepted("c1"),
        "failed confirms burned the event id: {retry}"
    );
    assert_eq!(
        queued_draft_ids(&server).await,
        Vec::<String>::new(),
        "the corrected confirm left the draft in the queue"
    );
    assert_eq!(
        published_draft_ids(&server).await,
        ["d9"],
        "the corrected confirm did not publish the draft"
    );
    assert_eq!(
        replay["idempotency"],
        replayed("c1"),
        "the corrected confirm was not recorded for replay: {replay}"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Scoping

#[tokio::test]
async fn event_id_is_scoped_per_operation() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;

    let (_, mark) = server.post(MARK, mark_request("shared", "d1")).await;
    let (_, export) = server
        .post(EXPORT, export_request("shared", "d1", "markdown"))
        .await;
    let (_, confirm) = server.post(CONFIRM, confirm_request("shared", "d1")).await;
    let (_, mark_replay) = server.post(MARK, json!({"event_id": "shared"})).await;
    let (_, export_replay) = server.post(EXPORT, json!({"event_id": "shared"})).await;
    let (_, confirm_replay) = server.post(CONFIRM, json!({"event_id": "shared"})).await;

    assert_eq!(
        mark["idempotency"],
        accepted("shared"),
        "mark with a fresh id is not accepted: {mark}"
    );
    assert_eq!(
        export["idempotency"],
        accepted("shared"),
        "export with an id used only by mark is not accepted: {export}"
    );
    assert_eq!(
        confirm["idempotency"],
        accepted("shared"),
        "confirm with an id used only by mark and export is not accepted: {confirm}"
    );
    assert_eq!(
        without_idempotency(&mark_replay),
        without_idempotency(&mark),
        "the mark replay is not the mark response"
    );
    assert_eq!(
        without_idempotency(&export_replay),
        without_idempotency(&export),
        "the export replay is not the export response"
    );
    assert_eq!(
        without_idempotency(&confirm_replay),
        without_idempotency(&confirm),
        "the confirm replay is not the confirm response"
    );
    assert_eq!(
        published_draft_ids(&server).await,
        ["d1"],
        "the confirm with the shared id did not publish the draft"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Concurrent duplicates

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_marks_execute_once() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    // Each request carries its own title, so a second execution would leave
    // a title in the queue that differs from the accepted one.
    let bodies: Vec<Value> = (0..RACERS)
        .map(|racer| {
            json!({
                "event_id": "race-mark",
                "draft_id": "d1",
                "title": format!("Title {racer}"),
                "prepared_content": CONTENT,
            })
        })
        .collect();

    let responses = race(&server, MARK, bodies).await;

    let accepted_body = check_race(&responses, "race-mark");
    let queued = queue(&server).await;
    assert_eq!(
        draft_ids(&queued),
        ["d1"],
        "the raced mark did not queue exactly one draft"
    );
    assert_eq!(
        queued["items"][0]["title"], accepted_body["title"],
        "the queued title is not the accepted one, so the mark ran more than once"
    );
    let row = ledger_row(&dir, "publish_mark", "race-mark").await;
    assert_eq!(
        row.replay_count,
        (RACERS - 1) as i64,
        "the ledger did not count every concurrent replay"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_exports_execute_once() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    mark_plain(&server, "d1").await;
    let queue_before = queue(&server).await;
    let formats = ["markdown", "html", "json"];
    let bodies: Vec<Value> = (0..RACERS)
        .map(|racer| export_request("race-export", "d1", formats[racer % formats.len()]))
        .collect();

    let responses = race(&server, EXPORT, bodies).await;

    check_race(&responses, "race-export");
    let row = ledger_row(&dir, "publish_export", "race-export").await;
    assert_eq!(
        row.replay_count,
        (RACERS - 1) as i64,
        "the ledger did not count every concurrent replay"
    );
    assert_eq!(
        queue(&server).await,
        queue_before,
        "concurrent exports changed the queue"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_confirms_execute_once() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    mark_plain(&server, "d1").await;
    let bodies: Vec<Value> = (0..RACERS)
        .map(|racer| {
            json!({
                "event_id": "race-confirm",
                "draft_id": "d1",
                "published_url": format!("https://garden.example/d1/{racer}"),
            })
        })
        .collect();

    let responses = race(&server, CONFIRM, bodies).await;

    let accepted_body = check_race(&responses, "race-confirm");
    let published = published(&server).await;
    assert_eq!(
        draft_ids(&published),
        ["d1"],
        "the raced confirm did not publish exactly once"
    );
    assert_eq!(
        published["items"][0]["published_url"], accepted_body["published_url"],
        "the published URL is not the accepted one"
    );
    assert_eq!(
        queued_draft_ids(&server).await,
        Vec::<String>::new(),
        "the raced confirm left the draft in the queue"
    );
    let row = ledger_row(&dir, "publish_confirm", "race-confirm").await;
    assert_eq!(
        row.replay_count,
        (RACERS - 1) as i64,
        "the ledger did not count every concurrent replay"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// The stored ledger row

#[tokio::test]
async fn ledger_row_stores_first_exchange() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    // Keys in alphabetical order: the compact text of this object is then the
    // key-sorted form that the request hash covers.
    let request = json!({
        "draft_id": "d1",
        "event_id": " audit-1 ",
        "prepared_content": CONTENT,
        "title": "Title of d1",
    });
    let (status, first) = post_text(&server, MARK, &request).await;
    assert_eq!(status, StatusCode::OK, "first mark failed: {first}");

    let row = ledger_row(&dir, "publish_mark", "audit-1").await;

    assert_eq!(row.operation, "publish_mark", "wrong operation name");
    assert_eq!(
        row.event_id, "audit-1",
        "the event id is not stored trimmed"
    );
    assert_eq!(
        row.request_sha256.len(),
        64,
        "request_sha256 {:?} is not 64 characters long",
        row.request_sha256
    );
    assert!(
        row.request_sha256
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "request_sha256 {:?} is not lower-case hex",
        row.request_sha256
    );
    let expected_sha256 = hex::encode(Sha256::digest(request.to_string().as_bytes()));
    assert_eq!(
        row.request_sha256, expected_sha256,
        "request_sha256 is not the SHA-256 of the key-sorted request"
    );
    assert_eq!(
        parse_json(&row.request_body),
        request,
        "request_body is not the request as sent"
    );
    assert_eq!(
        parse_json(&row.response_body),
        parse_json(&first),
        "response_body is not the first response"
    );
    parse_utc_timestamp(&row.first_seen_at, "first_seen_at");
    assert_eq!(row.replay_count, 0, "a fresh row already counts replays");
    assert_eq!(
        row.last_replayed_at, None,
        "a fresh row already has a replay time"
    );
    server.stop().await;
}

#[tokio::test]
async fn ledger_row_counts_each_replay() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    mark_plain(&server, "d1").await;
    let (status, first) = server
        .post(EXPORT, export_request("audit-2", "d1", "markdown"))
        .await;
    assert_eq!(status, StatusCode::OK, "first export failed: {first}");
    let first_seen_at = ledger_row(&dir, "publish_export", "audit-2")
        .await
        .first_seen_at;
    let first_seen_at = parse_utc_timestamp(&first_seen_at, "first_seen_at");

    let mut previous_replay_at = first_seen_at;
    for expected_count in 1..=3 {
        let (status, replay) = server.post(EXPORT, json!({"event_id": "audit-2"})).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "replay {expected_count} failed: {replay}"
        );

        let row = ledger_row(&dir, "publish_export", "audit-2").await;
        assert_eq!(
            row.replay_count, expected_count,
            "replay_count after {expected_count} replays"
        );
        let last_replayed_at = row
            .last_replayed_at
            .unwrap_or_else(|| panic!("last_replayed_at is NULL after {expected_count} replays"));
        let last_replayed_at = parse_utc_timestamp(&last_replayed_at, "last_replayed_at");
        assert!(
            last_replayed_at >= previous_replay_at,
            "last_replayed_at {last_replayed_at} is before the previous time {previous_replay_at}"
        );
        previous_replay_at = last_replayed_at;
    }
    server.stop().await;
}

#[tokio::test]
async fn failed_requests_leave_no_ledger_row() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    let failures = [
        (
            MARK,
            json!({"event_id": "audit-3", "draft_id": "d1", "title": "Title of d1"}),
        ),
        (EXPORT, export_request("audit-3", "d1", "html")),
        (
            CONFIRM,
            json!({"event_id": "audit-3", "draft_id": "d1", "published_url": "u"}),
        ),
    ];

    for (path, failure) in failures {
        let (status, error) = server.post(path, failure.clone()).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "invalid request {failure} to {path} was not rejected: {error}"
        );
    }

    assert_eq!(
        ledger_row_count(&dir).await,
        0,
        "a failed request left a row in replay_records"
    );
    server.stop().await;
}
