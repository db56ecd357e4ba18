//! Replay guarantees of `ask` and `links_apply`, driven over HTTP against the
//! in-process daemon: a known `(operation, event_id)` returns the first
//! response whatever the new payload, across restarts and under concurrent
//! duplicates. A duplicate needs only a valid event id, but a first request
//! still reports a bad `query` or `source_note_id` before a bad event id. A
//! failed request records nothing, so a corrected retry with the same event id
//! executes.

mod common;

use common::publish::MARK;
use common::requests::{
    ASK, LINKS_APPLY, accepted, assert_rejected, check_race, ledger_count, ledger_rows,
    not_provided, parse_json, post_ok, post_text, race, replayed, text_before_idempotency,
};
use common::{TestDir, TestServer, without_idempotency};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Number of simultaneous requests in the concurrency tests.
const RACERS: usize = 32;

async fn start() -> (TestDir, TestServer) {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    (dir, server)
}

fn ask_request(event_id: &str, query: &str) -> Value {
    json!({"event_id": event_id, "query": query, "local_confidence": 0.55, "tags": ["work"]})
}

fn links_request(event_id: &str, source_note_id: &str) -> Value {
    json!({
        "event_id": event_id,
        "source_note_id": source_note_id,
        "min_confidence": 0.6,
        "links": [
            {"target_note_id": "n2", "confidence": 0.88},
            {"target_note_id": "n3", "confidence": 0.5},
            {"target_note_id": "n4", "confidence": 0.6},
        ],
    })
}

/// Posts `body`, asserts a 200 and returns the raw text.
async fn post_ok_text(server: &TestServer, path: &str, body: &Value) -> String {
    let (status, text) = post_text(server, path, body).await;
    assert_eq!(status, StatusCode::OK, "POST {path} {body} failed: {text}");
    text
}

/// Asserts that `replay` is a replay of `first` for `event_id`: the
/// duplicate idempotency object and the same bytes before it.
fn assert_replay_of(context: &str, replay: &str, first: &str, event_id: &str) {
    assert_eq!(
        parse_json(replay)["idempotency"],
        replayed(event_id),
        "{context}: not a replay of {event_id}: {replay}"
    );
    assert_eq!(
        text_before_idempotency(replay),
        text_before_idempotency(first),
        "{context}: the replayed bytes differ from the first response"
    );
}

// ---------------------------------------------------------------------------
// ask

#[tokio::test]
async fn ask_first_use_then_replay() {
    let (dir, server) = start().await;

    let first = post_ok_text(&server, ASK, &ask_request("e1", "What next?")).await;
    let replay = post_ok_text(&server, ASK, &ask_request("e1", "What next?")).await;

    let first_body = parse_json(&first);
    assert_eq!(
        first_body["idempotency"],
        accepted("e1"),
        "the first ask with e1 is not accepted: {first}"
    );
    assert_eq!(
        first_body["answer"]["text"], "Draft answer for: What next?",
        "the accepted ask has the wrong answer"
    );
    assert!(
        first.ends_with(
            ",\"idempotency\":{\"event_id\":\"e1\",\"duplicate\":false,\"reason\":\"accepted\"}}"
        ),
        "the accepted ask does not end with the idempotency object in key order: {first}"
    );
    assert!(
        replay.ends_with(
            ",\"idempotency\":{\"event_id\":\"e1\",\"duplicate\":true,\"reason\":\"duplicate_event_id\"}}"
        ),
        "the replayed ask does not end with the idempotency object in key order: {replay}"
    );
    assert_replay_of("second ask", &replay, &first, "e1");
    let rows = ledger_rows(&dir, "ask", "e1").await;
    assert_eq!(rows.len(), 1, "expected one ledger row for (ask, e1)");
    assert_eq!(
        parse_json(&rows[0].0),
        first_body,
        "the ledger does not store the first response"
    );
    assert_eq!(rows[0].1, 1, "the ledger did not count the replay");
    server.stop().await;
}

#[tokio::test]
async fn ask_replay_ignores_changed_payload() {
    let (_dir, server) = start().await;
    let first = post_ok_text(&server, ASK, &ask_request("e1", "first question")).await;
    let changed = json!({
        "event_id": "e1",
        "query": "another question",
        "allow_fallback": "garbage",
        "local_confidence": 5,
        "local_timed_out": true,
        "tags": "not a list",
    });

    let replay = post_ok_text(&server, ASK, &changed).await;

    assert_replay_of("ask with a changed payload", &replay, &first, "e1");
    server.stop().await;
}

#[tokio::test]
async fn ask_duplicate_without_query_replays() {
    let (_dir, server) = start().await;
    let first = post_ok_text(&server, ASK, &ask_request("e1", "q")).await;

    let bare = post_ok_text(&server, ASK, &json!({"event_id": "e1"})).await;
    let blank = post_ok_text(&server, ASK, &json!({"event_id": "e1", "query": " "})).await;
    let number = post_ok_text(&server, ASK, &json!({"event_id": "e1", "query": 7})).await;

    assert_replay_of("ask of only the event id", &bare, &first, "e1");
    assert_replay_of("ask with a blank query", &blank, &first, "e1");
    assert_replay_of("ask with a number query", &number, &first, "e1");
    server.stop().await;
}

#[tokio::test]
async fn ask_first_request_reports_query_first() {
    let (dir, server) = start().await;
    let cases = [
        json!({"event_id": 5}),
        json!({"event_id": ""}),
        json!({"query": "  ", "event_id": "   "}),
        json!({"query": null, "event_id": ["e1"]}),
        json!({"event_id": "e1"}),
        json!({"event_id": "e1", "query": ""}),
    ];

    for body in cases {
        let response = server.post(ASK, body.clone()).await;
        assert_rejected(
            &body.to_string(),
            &response,
            "query is required",
            "missing_field",
            Some("query"),
        );
    }
    assert_eq!(
        ledger_count(&dir, "ask").await,
        0,
        "an ask without a query left a ledger row"
    );

    let retry = post_ok(&server, ASK, ask_request("e1", "q")).await;
    assert_eq!(
        retry["idempotency"],
        accepted("e1"),
        "asks without a query burned the event id"
    );
    server.stop().await;
}

#[tokio::test]
async fn ask_replay_needs_valid_event_id() {
    let (_dir, server) = start().await;
    post_ok(&server, ASK, ask_request("e1", "q")).await;

    let response = server.post(ASK, json!({"event_id": 1})).await;

    assert_rejected(
        "duplicate-looking ask with a number event id",
        &response,
        "query is required",
        "missing_field",
        Some("query"),
    );
    let response = server
        .post(ASK, json!({"query": "q", "event_id": ""}))
        .await;
    assert_rejected(
        "ask with a blank event id",
        &response,
        "event_id must be a non-empty string",
        "invalid_field",
        Some("event_id"),
    );
    server.stop().await;
}

#[tokio::test]
async fn ask_replays_after_restart() {
    let (dir, server) = start().await;
    let first = post_ok_text(&server, ASK, &ask_request("e1", "Café ☕ question")).await;
    server.stop().await;

    let server = TestServer::start(&dir).await;
    let replay = post_ok_text(&server, ASK, &json!({"event_id": "e1"})).await;
    let fresh = post_ok(&server, ASK, ask_request("e2", "q")).await;

    assert_replay_of("ask after a restart", &replay, &first, "e1");
    assert_eq!(
        fresh["idempotency"],
        accepted("e2"),
        "a new event id after a restart is not accepted"
    );
    server.stop().await;
}

#[tokio::test]
async fn ask_failed_attempt_records_nothing() {
    let (dir, server) = start().await;
    let failures = [
        (
            json!({"allow_fallback": "no"}),
            "allow_fallback must be a boolean",
        ),
        (
            json!({"allow_fallback": null}),
            "allow_fallback must be a boolean",
        ),
        (
            json!({"local_confidence": true}),
            "local_confidence must be a number",
        ),
        (
            json!({"local_confidence": 1.5}),
            "local_confidence must be between 0.0 and 1.0",
        ),
        (
            json!({"local_confidence": -5}),
            "local_confidence must be between 0.0 and 1.0",
        ),
        (
            json!({"local_timed_out": 1}),
            "local_timed_out must be a boolean",
        ),
        (
            json!({"grounding_failed": "false"}),
            "grounding_failed must be a boolean",
        ),
        (
            json!({"frontmatter": null}),
            "frontmatter must be an object",
        ),
        (json!({"tags": [1]}), "tags must be a list of strings"),
        (json!({"path": 3}), "path must be a string"),
        (json!({"content": null}), "content must be a string"),
    ];

    for (fields, message) in failures {
        let mut body = fields.clone();
        body["query"] = json!("q");
        body["event_id"] = json!("e1");
        let response = server.post(ASK, body.clone()).await;
        assert_rejected(&body.to_string(), &response, message, "invalid_field", None);
    }
    assert_eq!(
        ledger_count(&dir, "ask").await,
        0,
        "a failed ask left a ledger row"
    );

    let retry = post_ok_text(&server, ASK, &ask_request("e1", "q")).await;
    let replay = post_ok_text(&server, ASK, &json!({"event_id": "e1"})).await;

    assert_eq!(
        parse_json(&retry)["idempotency"],
        accepted("e1"),
        "failed asks burned the event id: {retry}"
    );
    assert_replay_of("replay of the corrected ask", &replay, &retry, "e1");
    server.stop().await;
}

#[tokio::test]
async fn ask_trims_event_id() {
    let (_dir, server) = start().await;
    let first = post_ok_text(&server, ASK, &ask_request("e1", "first")).await;
    let padded_first = post_ok_text(&server, ASK, &ask_request("\u{3000}\t e2\n", "second")).await;

    let padded_replay = post_ok_text(&server, ASK, &ask_request(" e1 ", "third")).await;
    let bare_replay = post_ok_text(&server, ASK, &ask_request("e2", "fourth")).await;

    assert_eq!(
        parse_json(&padded_first)["idempotency"],
        accepted("e2"),
        "a padded event id is not stored trimmed: {padded_first}"
    );
    assert_replay_of("\" e1 \" after e1", &padded_replay, &first, "e1");
    assert_replay_of("e2 after a padded e2", &bare_replay, &padded_first, "e2");
    server.stop().await;
}

#[tokio::test]
async fn ask_event_id_case_sensitive() {
    let (_dir, server) = start().await;
    post_ok(&server, ASK, ask_request("e1", "lower")).await;

    let upper = post_ok(&server, ASK, ask_request("E1", "upper")).await;

    assert_eq!(
        upper["idempotency"],
        accepted("E1"),
        "E1 was treated as e1: {upper}"
    );
    assert_eq!(
        upper["answer"]["text"], "Draft answer for: upper",
        "E1 returned e1's answer"
    );
    server.stop().await;
}

#[tokio::test]
async fn ask_without_event_id_records_nothing() {
    let (dir, server) = start().await;
    let body = json!({"query": "q"});

    let first = post_ok(&server, ASK, body.clone()).await;
    let second = post_ok(&server, ASK, body).await;
    let null_id = post_ok(&server, ASK, json!({"query": "q", "event_id": null})).await;

    assert_eq!(
        first["idempotency"],
        not_provided(),
        "an ask without an event id is not not_provided"
    );
    assert_eq!(
        second["idempotency"],
        not_provided(),
        "a repeated ask without an event id is not not_provided"
    );
    assert_eq!(
        null_id["idempotency"],
        not_provided(),
        "an ask with a null event id is not not_provided"
    );
    assert_eq!(
        ledger_count(&dir, "ask").await,
        0,
        "an ask without an event id left a ledger row"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_asks_execute_once() {
    let (dir, server) = start().await;
    // Each request carries its own query, so a second execution would give
    // a body that differs from the accepted one.
    let bodies: Vec<Value> = (0..RACERS)
        .map(|racer| ask_request("race-ask", &format!("question {racer}")))
        .collect();

    let responses = race(&server, ASK, bodies).await;

    check_race(&responses, "race-ask");
    let rows = ledger_rows(&dir, "ask", "race-ask").await;
    assert_eq!(rows.len(), 1, "expected one ledger row for the raced ask");
    assert_eq!(
        rows[0].1,
        (RACERS - 1) as i64,
        "the ledger did not count every concurrent replay"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// links_apply

#[tokio::test]
async fn links_first_use_then_replay() {
    let (dir, server) = start().await;

    let first = post_ok_text(&server, LINKS_APPLY, &links_request("e1", "n1")).await;
    let replay = post_ok_text(&server, LINKS_APPLY, &links_request("e1", "n1")).await;

    let first_body = parse_json(&first);
    assert_eq!(
        first_body["idempotency"],
        accepted("e1"),
        "the first apply with e1 is not accepted: {first}"
    );
    assert_eq!(
        first_body["applied_count"], 2,
        "the accepted apply kept the wrong links: {first}"
    );
    assert_replay_of("second apply", &replay, &first, "e1");
    let rows = ledger_rows(&dir, "links_apply", "e1").await;
    assert_eq!(
        rows.len(),
        1,
        "expected one ledger row for (links_apply, e1)"
    );
    assert_eq!(
        parse_json(&rows[0].0),
        first_body,
        "the ledger does not store the first response"
    );
    server.stop().await;
}

#[tokio::test]
async fn links_replay_ignores_changed_payload() {
    let (_dir, server) = start().await;
    let first = post_ok_text(&server, LINKS_APPLY, &links_request("e1", "n1")).await;
    let changed = json!({
        "event_id": "e1",
        "source_note_id": "other",
        "links": "garbage",
        "min_confidence": true,
    });

    let replay = post_ok_text(&server, LINKS_APPLY, &changed).await;

    assert_replay_of("apply with a changed payload", &replay, &first, "e1");
    assert_eq!(
        parse_json(&replay)["source_note_id"],
        "n1",
        "the replay carries the new source note"
    );
    server.stop().await;
}

#[tokio::test]
async fn links_duplicate_without_source_replays() {
    let (_dir, server) = start().await;
    let first = post_ok_text(&server, LINKS_APPLY, &links_request("e1", "n1")).await;

    let bare = post_ok_text(&server, LINKS_APPLY, &json!({"event_id": "e1"})).await;
    let blank = post_ok_text(
        &server,
        LINKS_APPLY,
        &json!({"event_id": "e1", "source_note_id": "", "links": []}),
    )
    .await;

    assert_replay_of("apply of only the event id", &bare, &first, "e1");
    assert_replay_of("apply with a blank source", &blank, &first, "e1");
    server.stop().await;
}

#[tokio::test]
async fn links_first_request_reports_source_first() {
    let (dir, server) = start().await;
    let cases = [
        json!({"event_id": 5}),
        json!({"event_id": " ", "links": []}),
        json!({"source_note_id": null, "event_id": {}}),
        json!({"event_id": "e1", "links": [{"target_note_id": "n2", "confidence": 0.9}]}),
        json!({"event_id": "e1", "source_note_id": "\t"}),
    ];

    for body in cases {
        let response = server.post(LINKS_APPLY, body.clone()).await;
        assert_rejected(
            &body.to_string(),
            &response,
            "source_note_id is required",
            "missing_field",
            Some("source_note_id"),
        );
    }
    assert_eq!(
        ledger_count(&dir, "links_apply").await,
        0,
        "an apply without a source note left a ledger row"
    );

    let retry = post_ok(&server, LINKS_APPLY, links_request("e1", "n1")).await;
    assert_eq!(
        retry["idempotency"],
        accepted("e1"),
        "applies without a source note burned the event id"
    );
    server.stop().await;
}

#[tokio::test]
async fn links_replays_after_restart() {
    let (dir, server) = start().await;
    let first = post_ok_text(&server, LINKS_APPLY, &links_request("e1", "n1")).await;
    server.stop().await;

    let server = TestServer::start(&dir).await;
    let replay = post_ok_text(&server, LINKS_APPLY, &json!({"event_id": "e1"})).await;
    let fresh = post_ok(&server, LINKS_APPLY, links_request("e2", "n1")).await;

    assert_replay_of("apply after a restart", &replay, &first, "e1");
    assert_eq!(
        fresh["idempotency"],
        accepted("e2"),
        "a new event id after a restart is not accepted"
    );
    server.stop().await;
}

#[tokio::test]
async fn links_failed_attempt_records_nothing() {
    let (dir, server) = start().await;
    let good_link = json!({"target_note_id": "n2", "confidence": 0.9});
    let failures = [
        (json!({"links": []}), "links must be a non-empty list"),
        (json!({"links": null}), "links must be a non-empty list"),
        (
            json!({"links": [good_link], "min_confidence": null}),
            "min_confidence must be a number",
        ),
        (
            json!({"links": [good_link], "min_confidence": 1.2}),
            "min_confidence must be between 0.0 and 1.0",
        ),
        (
            json!({"links": [good_link, "n3"]}),
            "each link must be an object",
        ),
        (
            json!({"links": [good_link, {"confidence": 0.9}]}),
            "target_note_id is required",
        ),
        (
            json!({"links": [good_link, {"target_note_id": "n3", "confidence": false}]}),
            "confidence must be a number",
        ),
        (
            json!({"links": [good_link, {"target_note_id": "n3", "confidence": -0.1}]}),
            "confidence must be between 0.0 and 1.0",
        ),
    ];

    for (fields, message) in failures {
        let mut body = fields.clone();
        body["source_note_id"] = json!("n1");
        body["event_id"] = json!("e1");
        let (status, error) = server.post(LINKS_APPLY, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{body}: wrong status, body {error}"
        );
        assert_eq!(error["error"], message, "{body}: wrong error message");
    }
    assert_eq!(
        ledger_count(&dir, "links_apply").await,
        0,
        "a failed apply left a ledger row"
    );

    let retry = post_ok_text(&server, LINKS_APPLY, &links_request("e1", "n1")).await;
    let replay = post_ok_text(&server, LINKS_APPLY, &json!({"event_id": "e1"})).await;

    assert_eq!(
        parse_json(&retry)["idempotency"],
        accepted("e1"),
        "failed applies burned the event id: {retry}"
    );
    assert_replay_of("replay of the corrected apply", &replay, &retry, "e1");
    server.stop().await;
}

#[tokio::test]
async fn links_trims_event_id() {
    let (_dir, server) = start().await;
    let first = post_ok_text(&server, LINKS_APPLY, &links_request("e1", "n1")).await;
    let padded_first = post_ok_text(&server, LINKS_APPLY, &links_request(" e2\u{a0}", "n5")).await;

    let padded_replay = post_ok_text(&server, LINKS_APPLY, &links_request(" e1 ", "n7")).await;
    let bare_replay = post_ok_text(&server, LINKS_APPLY, &links_request("e2", "n8")).await;

    assert_eq!(
        parse_json(&padded_first)["idempotency"],
        accepted("e2"),
        "a padded event id is not stored trimmed: {padded_first}"
    );
    assert_replay_of("\" e1 \" after e1", &padded_replay, &first, "e1");
    assert_replay_of("e2 after a padded e2", &bare_replay, &padded_first, "e2");
    server.stop().await;
}

#[tokio::test]
async fn links_event_id_case_sensitive() {
    let (_dir, server) = start().await;
    post_ok(&server, LINKS_APPLY, links_request("e1", "n1")).await;

    let upper = post_ok(&server, LINKS_APPLY, links_request("E1", "n9")).await;

    assert_eq!(
        upper["idempotency"],
        accepted("E1"),
        "E1 was treated as e1: {upper}"
    );
    assert_eq!(upper["source_note_id"], "n9", "E1 returned e1's response");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_applies_execute_once() {
    let (dir, server) = start().await;
    // Each request names its own source note, so a second execution would
    // give a body that differs from the accepted one.
    let bodies: Vec<Value> = (0..RACERS)
        .map(|racer| links_request("race-links", &format!("n{racer}")))
        .collect();

    let responses = race(&server, LINKS_APPLY, bodies).await;

    check_race(&responses, "race-links");
    let rows = ledger_rows(&dir, "links_apply", "race-links").await;
    assert_eq!(rows.len(), 1, "expected one ledger row for the raced apply");
    assert_eq!(
        rows[0].1,
        (RACERS - 1) as i64,
        "the ledger did not count every concurrent replay"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Scoping

#[tokio::test]
async fn event_id_scoped_per_operation() {
    let (dir, server) = start().await;
    let mark_body = json!({
        "event_id": "shared",
        "draft_id": "d1",
        "title": "Title",
        "prepared_content": "Content",
    });

    let ask = post_ok_text(&server, ASK, &ask_request("shared", "q")).await;
    let links = post_ok_text(&server, LINKS_APPLY, &links_request("shared", "n1")).await;
    let mark = post_ok_text(&server, MARK, &mark_body).await;
    let ask_replay = post_ok_text(&server, ASK, &json!({"event_id": "shared"})).await;
    let links_replay = post_ok_text(&server, LINKS_APPLY, &json!({"event_id": "shared"})).await;
    let mark_replay = post_ok_text(&server, MARK, &json!({"event_id": "shared"})).await;

    assert_eq!(
        parse_json(&ask)["idempotency"],
        accepted("shared"),
        "ask with a fresh id is not accepted: {ask}"
    );
    assert_eq!(
        parse_json(&links)["idempotency"],
        accepted("shared"),
        "apply with an id used only by ask is not accepted: {links}"
    );
    assert_eq!(
        parse_json(&mark)["idempotency"],
        accepted("shared"),
        "mark with an id used by ask and apply is not accepted: {mark}"
    );
    assert_replay_of("ask replay", &ask_replay, &ask, "shared");
    assert_replay_of("apply replay", &links_replay, &links, "shared");
    assert_eq!(
        without_idempotency(&parse_json(&mark_replay)),
        without_idempotency(&parse_json(&mark)),
        "the mark replay is not the mark response"
    );
    for operation in ["ask", "links_apply", "publish_mark"] {
        assert_eq!(
            ledger_rows(&dir, operation, "shared").await.len(),
            1,
            "expected one ledger row for ({operation}, shared)"
        );
    }
    server.stop().await;
}
