//! Helpers for the policy, ask, organize, links and replay tests: route paths,
//! request-body edits, expected idempotency objects, rejection assertions,
//! raw-text requests for byte comparisons, concurrent requests and ledger
//! reads.

use std::{str::FromStr, sync::Arc};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, SqliteConnection, sqlite::SqliteConnectOptions};
use tokio::sync::Barrier;

use super::{TestDir, TestServer, assert_error_shape};

pub const SENSITIVITY: &str = "/policy/sensitivity";
pub const SENSITIVITY_CHECK: &str = "/policy/sensitivity/check";
pub const ROUTING: &str = "/policy/routing";
pub const ASK: &str = "/ask";
pub const CLASSIFY: &str = "/organize/classify";
pub const PROPOSE_STRUCTURE: &str = "/organize/propose-structure";
pub const LINKS_PROPOSE: &str = "/links/propose";
pub const LINKS_APPLY: &str = "/links/apply";

/// Every code point that the daemon trims as whitespace: Unicode
/// `White_Space` plus the separators U+001C..U+001F.
pub const ALL_WHITESPACE: &str = "\t\n\u{b}\u{c}\r\u{1c}\u{1d}\u{1e}\u{1f} \u{85}\u{a0}\u{1680}\
     \u{2000}\u{2001}\u{2002}\u{2003}\u{2004}\u{2005}\u{2006}\u{2007}\u{2008}\u{2009}\u{200a}\
     \u{2028}\u{2029}\u{202f}\u{205f}\u{3000}";

// ---------------------------------------------------------------------------
// Idempotency objects

/// Returns the `idempotency` object of a request without an event id.
pub fn not_provided() -> Value {
    json!({"event_id": null, "duplicate": false, "reason": "not_provided"})
}

/// Returns the `idempotency` object of the first successful use of
/// `event_id`.
pub fn accepted(event_id: &str) -> Value {
    json!({"event_id": event_id, "duplicate": false, "reason": "accepted"})
}

/// Returns the `idempotency` object of a replay of `event_id`.
pub fn replayed(event_id: &str) -> Value {
    json!({"event_id": event_id, "duplicate": true, "reason": "duplicate_event_id"})
}

// ---------------------------------------------------------------------------
// Request bodies

/// Returns `body` with `field` set to `value`, or removed when `value` is
/// `None`.
pub fn with_field(body: &Value, field: &str, value: Option<Value>) -> Value {
    let mut copy = body.clone();
    let object = copy.as_object_mut().expect("request body is an object");
    match value {
        Some(value) => {
            object.insert(field.to_owned(), value);
        }
        None => {
            object.remove(field);
        }
    }
    copy
}

/// Returns labelled values that a required non-blank string field rejects.
/// `None` means that the key is absent.
pub fn blank_values() -> Vec<(&'static str, Option<Value>)> {
    vec![
        ("absent", None),
        ("null", Some(json!(null))),
        ("empty string", Some(json!(""))),
        ("spaces", Some(json!("   "))),
        ("every trimmed code point", Some(json!(ALL_WHITESPACE))),
        ("number", Some(json!(5))),
        ("boolean", Some(json!(true))),
        ("array", Some(json!(["n1"]))),
        ("object", Some(json!({"value": "n1"}))),
    ]
}

/// Returns `event_id` values that are rejected because they are present but
/// not a non-blank string.
pub fn invalid_event_ids() -> Vec<Value> {
    vec![
        json!(""),
        json!("  "),
        json!(ALL_WHITESPACE),
        json!(0),
        json!(1),
        json!(false),
        json!(true),
        json!([]),
        json!(["e1"]),
        json!({}),
    ]
}

/// Returns labelled values that a required non-empty list rejects. `None`
/// means that the key is absent.
pub fn non_list_values() -> Vec<(&'static str, Option<Value>)> {
    vec![
        ("absent", None),
        ("null", Some(json!(null))),
        ("empty list", Some(json!([]))),
        ("object", Some(json!({"note_id": "n1", "title": "T"}))),
        ("string", Some(json!("n1"))),
        ("number", Some(json!(1))),
        ("boolean", Some(json!(true))),
    ]
}

/// Returns raw bodies that are not one JSON object, or that use JSON
/// extensions the daemon does not accept (`NaN`, `Infinity`, overflowing
/// numbers).
pub fn invalid_json_bodies() -> Vec<&'static str> {
    vec![
        "",
        "   ",
        "[]",
        "[{}]",
        "null",
        "true",
        "1",
        "\"text\"",
        "{",
        "{} {}",
        "{\"a\": NaN}",
        "{\"a\": Infinity}",
        "{\"a\": -Infinity}",
        "{\"a\": 1e400}",
        "\u{feff}{}",
    ]
}

// ---------------------------------------------------------------------------
// Assertions

/// Asserts a 400 with the JSON error shape, the exact `message` and `code`.
/// `field` is the expected `field` member, and `None` leaves it unchecked.
pub fn assert_rejected(
    context: &str,
    response: &(StatusCode, Value),
    message: &str,
    code: &str,
    field: Option<&str>,
) {
    let (status, body) = response;
    assert_eq!(
        *status,
        StatusCode::BAD_REQUEST,
        "{context}: wrong status, body {body}"
    );
    assert_error_shape(body);
    assert_eq!(body["error"], message, "{context}: wrong error message");
    assert_eq!(body["code"], code, "{context}: wrong error code");
    if let Some(field) = field {
        assert_eq!(body["field"], field, "{context}: wrong field in {body}");
    }
}

/// Posts every raw body of [`invalid_json_bodies`] to `path` and asserts v1's
/// `invalid json` error for each.
pub async fn assert_invalid_json_rejected(server: &TestServer, path: &str) {
    for raw in invalid_json_bodies() {
        let response = server
            .post_raw(path, Some("application/json"), raw.to_owned())
            .await;
        assert_rejected(
            &format!("POST {path} with body {raw:?}"),
            &response,
            "invalid json",
            "invalid_json",
            None,
        );
        assert!(
            response.1.get("field").is_none(),
            "POST {path} with body {raw:?}: invalid json names a field: {}",
            response.1
        );
    }
}

/// Sends `method` to `path` and asserts the 405 JSON error.
pub async fn assert_method_not_allowed(server: &TestServer, method: reqwest::Method, path: &str) {
    let response = server
        .client
        .request(method.clone(), server.url(path))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("send request");
    let (status, body) = super::read_json(response).await;
    assert_eq!(
        status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{method} {path}: wrong status, body {body}"
    );
    assert_error_shape(&body);
    assert_eq!(
        body["code"], "method_not_allowed",
        "{method} {path}: wrong code"
    );
}

/// Posts `body` and asserts a 200, returning the JSON body.
pub async fn post_ok(server: &TestServer, path: &str, body: Value) -> Value {
    let (status, response) = server.post(path, body.clone()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "POST {path} {body} failed: {response}"
    );
    response
}

// ---------------------------------------------------------------------------
// Raw text

/// Sends `body` as JSON and returns the status and the raw response text.
pub async fn send_text(client: &reqwest::Client, url: &str, body: &Value) -> (StatusCode, String) {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("send POST");
    let status = response.status();
    let text = response.text().await.expect("read response body");
    (status, text)
}

pub async fn post_text(server: &TestServer, path: &str, body: &Value) -> (StatusCode, String) {
    send_text(&server.client, &server.url(path), body).await
}

pub fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("body is not JSON ({error}): {text}"))
}

/// Returns the raw response text in front of its trailing `idempotency`
/// member, so that two responses can be compared byte for byte apart from
/// that object.
pub fn text_before_idempotency(text: &str) -> &str {
    let start = text
        .rfind(",\"idempotency\":")
        .unwrap_or_else(|| panic!("response has no idempotency member: {text}"));
    &text[..start]
}

// ---------------------------------------------------------------------------
// Concurrency

/// Sends every body to `path` at once, each from its own task, and returns
/// the responses in the order of `bodies`.
pub async fn race(
    server: &TestServer,
    path: &str,
    bodies: Vec<Value>,
) -> Vec<(StatusCode, String)> {
    let barrier = Arc::new(Barrier::new(bodies.len()));
    let url = server.url(path);
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let client = server.client.clone();
            let url = url.clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                send_text(&client, &url, &body).await
            })
        })
        .collect();

    let mut responses = Vec::with_capacity(tasks.len());
    for task in tasks {
        responses.push(task.await.expect("request task panicked"));
    }
    responses
}

/// Checks the responses of a race on one new event id: all 200, exactly one
/// `accepted`, every other one a replay, all bodies equal apart from the
/// idempotency object. Returns the accepted body.
pub fn check_race(responses: &[(StatusCode, String)], event_id: &str) -> Value {
    for (status, text) in responses {
        assert_eq!(
            *status,
            StatusCode::OK,
            "a concurrent request with event id {event_id} got an error: {text}"
        );
    }

    let racers = responses.len();
    let bodies: Vec<Value> = responses.iter().map(|(_, text)| parse_json(text)).collect();
    let accepted_count = bodies
        .iter()
        .filter(|body| body["idempotency"] == accepted(event_id))
        .count();
    assert_eq!(
        accepted_count, 1,
        "expected exactly one accepted response among {racers} concurrent requests"
    );
    let replayed_count = bodies
        .iter()
        .filter(|body| body["idempotency"] == replayed(event_id))
        .count();
    assert_eq!(
        replayed_count,
        racers - 1,
        "expected every other concurrent response to be a replay"
    );

    let reference = text_before_idempotency(&responses[0].1);
    for (_, text) in responses {
        assert_eq!(
            text_before_idempotency(text),
            reference,
            "concurrent responses differ apart from the idempotency object"
        );
    }

    bodies
        .into_iter()
        .find(|body| body["idempotency"] == accepted(event_id))
        .expect("one response is accepted")
}

// ---------------------------------------------------------------------------
// The replay ledger

/// Opens the test database read-only, next to the running daemon.
pub async fn open_read_only(dir: &TestDir) -> SqliteConnection {
    let options = SqliteConnectOptions::from_str(&dir.database_url())
        .expect("parse database URL")
        .read_only(true);
    SqliteConnection::connect_with(&options)
        .await
        .expect("open the test database read-only")
}

/// Returns the number of `replay_records` rows of `operation`.
pub async fn ledger_count(dir: &TestDir, operation: &str) -> i64 {
    let mut connection = open_read_only(dir).await;
    let count: i64 = sqlx::query_scalar("select count(*) from replay_records where operation = ?1")
        .bind(operation)
        .fetch_one(&mut connection)
        .await
        .expect("count replay_records");
    connection.close().await.expect("close the test database");
    count
}

/// Returns the stored `response_body` and `replay_count` of every row of
/// `(operation, event_id)`.
pub async fn ledger_rows(dir: &TestDir, operation: &str, event_id: &str) -> Vec<(String, i64)> {
    let mut connection = open_read_only(dir).await;
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "select response_body, replay_count from replay_records
         where operation = ?1 and event_id = ?2",
    )
    .bind(operation)
    .bind(event_id)
    .fetch_all(&mut connection)
    .await
    .expect("query replay_records");
    connection.close().await.expect("close the test database");
    rows
}
