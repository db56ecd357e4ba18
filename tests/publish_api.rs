//! The HTTP contract of the publish pipeline and the transport rules around
//! it: every endpoint's success path, each validation error with its exact
//! message, and routing, content type, body size, JSON parsing and Host checks.
//! After every rejected request the queue and the published list are read
//! back to show that nothing was stored.

mod common;

use std::time::Duration;

use common::{TestDir, TestServer, assert_error_shape, read_json};
use mind_lite::Settings;
use reqwest::{Method, RequestBuilder, StatusCode, header};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const MARK: &str = "/publish/mark-for-gom";
const EXPORT: &str = "/publish/export-for-gom";
const CONFIRM: &str = "/publish/confirm-gom";
const QUEUE: &str = "/publish/gom-queue";
const PUBLISHED: &str = "/publish/published";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Starts a server over a fresh database. The directory is returned so that
/// it outlives the server.
async fn start() -> (TestDir, TestServer) {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    (dir, server)
}

/// Starts a server over a fresh database that accepts bodies of at most
/// `limit` bytes.
async fn start_with_body_limit(limit: usize) -> (TestDir, TestServer) {
    let dir = TestDir::new();
    let mut settings = Settings::for_database(dir.database_url());
    settings.max_body_bytes = limit;
    let server = TestServer::start_with(settings).await;
    (dir, server)
}

/// Sends a prepared request and returns the status and the JSON body.
async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    read_json(request.send().await.expect("send request")).await
}

/// Returns the `idempotency` object of a write without an `event_id`.
fn not_provided() -> Value {
    json!({"event_id": null, "duplicate": false, "reason": "not_provided"})
}

/// Returns the `idempotency` object of the first successful use of
/// `event_id`.
fn accepted(event_id: &str) -> Value {
    json!({"event_id": event_id, "duplicate": false, "reason": "accepted"})
}

/// An error response that a test expects.
struct ExpectedError<'a> {
    status: StatusCode,
    message: &'a str,
    code: &'a str,
    field: Option<&'a str>,
}

/// Asserts status, shape, message, code and field of an error response.
/// `context` names the request in failure messages.
fn assert_error(context: &str, response: &(StatusCode, Value), expected: &ExpectedError) {
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
async fn queue(server: &TestServer) -> Value {
    let (status, body) = server.get(QUEUE).await;
    assert_eq!(status, StatusCode::OK, "queue listing failed: {body}");
    body
}

/// Returns the body of `GET /publish/published`.
async fn published(server: &TestServer) -> Value {
    let (status, body) = server.get(PUBLISHED).await;
    assert_eq!(status, StatusCode::OK, "published listing failed: {body}");
    body
}

/// The queue and the published list at one moment.
#[derive(Debug, Clone, PartialEq)]
struct PublishState {
    queue: Value,
    published: Value,
}

async fn publish_state(server: &TestServer) -> PublishState {
    PublishState {
        queue: queue(server).await,
        published: published(server).await,
    }
}

/// Asserts that the queue and the published list still equal `before`.
async fn assert_nothing_stored(server: &TestServer, context: &str, before: &PublishState) {
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

/// Marks a draft without an event id and asserts that it was queued.
async fn mark(server: &TestServer, draft_id: &str, title: &str, content: &str) -> Value {
    let (status, body) = server
        .post(
            MARK,
            json!({"draft_id": draft_id, "title": title, "prepared_content": content}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "marking {draft_id} failed: {body}");
    body
}

/// Confirms a draft without an event id and asserts success.
async fn confirm(server: &TestServer, draft_id: &str, published_url: &str) -> Value {
    let (status, body) = server
        .post(
            CONFIRM,
            json!({"draft_id": draft_id, "published_url": published_url}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "confirming {draft_id} failed: {body}"
    );
    body
}

/// Exports a draft without an event id and asserts success.
async fn export(server: &TestServer, draft_id: &str, format: &str) -> Value {
    let (status, body) = server
        .post(EXPORT, json!({"draft_id": draft_id, "format": format}))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "exporting {draft_id} as {format} failed: {body}"
    );
    body
}

/// Returns a queue item as listed by `GET /publish/gom-queue`.
fn queue_item(draft_id: &str, title: &str, content: &str) -> Value {
    json!({
        "draft_id": draft_id,
        "title": title,
        "prepared_content": content,
        "status": "queued_for_gom",
    })
}

/// Returns a published item as listed by `GET /publish/published`.
fn published_item(draft_id: &str, title: &str, published_url: &str) -> Value {
    json!({
        "draft_id": draft_id,
        "title": title,
        "published_url": published_url,
        "status": "published",
    })
}

/// Returns `body` with `field` set to `value`, or removed when `value` is
/// `None`.
fn with_field(body: &Value, field: &str, value: Option<&Value>) -> Value {
    let mut copy = body.clone();
    let object = copy.as_object_mut().expect("request body is an object");
    match value {
        Some(value) => {
            object.insert(field.to_owned(), value.clone());
        }
        None => {
            object.remove(field);
        }
    }
    copy
}

/// Returns labelled values that a required non-blank string field rejects.
/// `None` means that the key is absent.
fn blank_values() -> Vec<(&'static str, Option<Value>)> {
    vec![
        ("absent", None),
        ("null", Some(json!(null))),
        ("empty string", Some(json!(""))),
        ("spaces", Some(json!("   "))),
        ("ASCII whitespace", Some(json!("\t\n\u{b}\u{c}\r "))),
        (
            "separators U+001C..U+001F",
            Some(json!("\u{1c}\u{1d}\u{1e}\u{1f}")),
        ),
        (
            "Unicode spaces",
            Some(json!(
                "\u{85}\u{a0}\u{1680}\u{2000}\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}"
            )),
        ),
        ("number", Some(json!(5))),
        ("boolean", Some(json!(true))),
        ("array", Some(json!(["d1"]))),
        ("object", Some(json!({"value": "d1"}))),
    ]
}

/// Returns `event_id` values that are rejected because they are present but
/// not a non-blank string.
fn invalid_event_ids() -> Vec<Value> {
    vec![
        json!(""),
        json!("  "),
        json!("\u{1c}\u{1f}"),
        json!(0),
        json!(1),
        json!(false),
        json!(true),
        json!([]),
        json!(["e1"]),
        json!({}),
    ]
}

/// One rejected request of a validation table.
struct Rejection {
    label: String,
    body: Value,
    message: String,
    code: &'static str,
    field: &'static str,
}

/// Builds the `<field> is required` rejections of an endpoint. Each required
/// field gets every blank value while the other fields are valid. Each field
/// is also removed together with the fields after it, which shows that the
/// fields are checked in `required` order.
fn required_field_rejections(valid: &Value, required: &[&'static str]) -> Vec<Rejection> {
    let mut rejections = Vec::new();
    for (index, &field) in required.iter().enumerate() {
        for (label, value) in blank_values() {
            rejections.push(Rejection {
                label: format!("{field} {label}"),
                body: with_field(valid, field, value.as_ref()),
                message: format!("{field} is required"),
                code: "missing_field",
                field,
            });
        }
        let mut body = valid.clone();
        for later in &required[index..] {
            body = with_field(&body, later, None);
        }
        rejections.push(Rejection {
            label: format!("{field} and every later field absent"),
            body,
            message: format!("{field} is required"),
            code: "missing_field",
            field,
        });
    }
    rejections
}

/// Builds the `event_id must be a non-empty string` rejections: each invalid
/// value with otherwise valid fields, and with no other field at all, which
/// shows that `event_id` is checked before the other fields.
fn event_id_rejections(valid: &Value) -> Vec<Rejection> {
    let mut rejections = Vec::new();
    for value in invalid_event_ids() {
        for (label, body) in [
            ("valid fields", with_field(valid, "event_id", Some(&value))),
            ("no other field", json!({"event_id": value})),
        ] {
            rejections.push(Rejection {
                label: format!("event_id {value} with {label}"),
                body,
                message: "event_id must be a non-empty string".to_owned(),
                code: "invalid_field",
                field: "event_id",
            });
        }
    }
    rejections
}

/// Posts every rejection to `path`, asserts the 400 error, and asserts that
/// the queue and the published list did not change.
async fn assert_rejections(server: &TestServer, path: &str, rejections: &[Rejection]) {
    let before = publish_state(server).await;
    for rejection in rejections {
        let context = format!("POST {path} with {}: {}", rejection.label, rejection.body);
        let response = server.post(path, rejection.body.clone()).await;
        let expected = ExpectedError {
            status: StatusCode::BAD_REQUEST,
            message: &rejection.message,
            code: rejection.code,
            field: Some(rejection.field),
        };
        assert_error(&context, &response, &expected);
        assert_nothing_stored(server, &context, &before).await;
    }
}

/// Returns the `/metrics` body for the given publish counts. The run,
/// proposal and snapshot gauges stay 0 in this daemon.
fn metrics_text(queued: u64, published: u64) -> String {
    format!(
        "# HELP mind_lite_runs_total Total runs recorded\n\
         # TYPE mind_lite_runs_total gauge\n\
         mind_lite_runs_total 0\n\
         # HELP mind_lite_proposals_total Total proposals recorded\n\
         # TYPE mind_lite_proposals_total gauge\n\
         mind_lite_proposals_total 0\n\
         # HELP mind_lite_snapshots_total Total snapshots recorded\n\
         # TYPE mind_lite_snapshots_total gauge\n\
         mind_lite_snapshots_total 0\n\
         # HELP mind_lite_publish_queue_total Total drafts queued for publish\n\
         # TYPE mind_lite_publish_queue_total gauge\n\
         mind_lite_publish_queue_total {queued}\n\
         # HELP mind_lite_publish_published_total Total drafts published\n\
         # TYPE mind_lite_publish_published_total gauge\n\
         mind_lite_publish_published_total {published}\n"
    )
}

/// Reads `/metrics` and returns its content type and body.
async fn read_metrics(server: &TestServer) -> (String, String) {
    let response = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("send GET /metrics");
    assert_eq!(response.status(), StatusCode::OK, "GET /metrics failed");
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().expect("ASCII content type").to_owned())
        .unwrap_or_default();
    (content_type, response.text().await.expect("read metrics"))
}

/// Returns `n` copies of `word` separated by single spaces.
fn words(n: usize, word: &str) -> String {
    vec![word; n].join(" ")
}

/// Builds a mark request of exactly `length` bytes, padded with an unknown
/// field, which every endpoint ignores.
fn padded_mark_body(length: usize) -> String {
    let prefix = r#"{"draft_id":"d1","title":"T1","prepared_content":"c1","padding":""#;
    let suffix = r#""}"#;
    let padding = length
        .checked_sub(prefix.len() + suffix.len())
        .expect("length too small for the mark body");
    format!("{prefix}{}{suffix}", "a".repeat(padding))
}

/// Sends `request` as raw bytes over one loopback connection and returns the
/// response status and JSON body. The request must ask for `Connection:
/// close` so that the response ends with the connection.
async fn raw_exchange(server: &TestServer, request: &[u8]) -> (StatusCode, Value) {
    let address = server.base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(request).await.expect("write request");
    let mut received = Vec::new();
    // The bound only keeps a daemon that never responds from hanging the test.
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut received))
        .await
        .expect("no complete response within 20 s")
        .expect("read response");

    let text = String::from_utf8(received).expect("response is UTF-8");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("response has no header end: {text:?}"));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("response has no status line: {head:?}"));
    let status = StatusCode::from_u16(code).expect("valid status code");
    let value = serde_json::from_str(body)
        .unwrap_or_else(|error| panic!("status {status}: body is not JSON ({error}): {body:?}"));
    (status, value)
}

/// Builds a raw HTTP/1.1 POST to the mark endpoint that sends `body` in
/// chunks of at most `chunk_size` bytes, with no Content-Length.
fn chunked_mark_request(body: &str, chunk_size: usize) -> Vec<u8> {
    let mut request = format!(
        "POST {MARK} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.as_bytes().chunks(chunk_size) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    request
}

// ---------------------------------------------------------------------------
// Health and metrics
// ---------------------------------------------------------------------------

#[tokio::test]
async fn health_returns_status_ok() {
    let (_dir, server) = start().await;

    let (status, body) = server.get("/health").await;

    assert_eq!(status, StatusCode::OK, "GET /health failed: {body}");
    assert_eq!(body, json!({"status": "ok"}), "wrong health body");
    server.stop().await;
}

#[tokio::test]
async fn ready_returns_status_ready() {
    let (_dir, server) = start().await;

    let (status, body) = server.get("/health/ready").await;

    assert_eq!(status, StatusCode::OK, "GET /health/ready failed: {body}");
    assert_eq!(body, json!({"status": "ready"}), "wrong readiness body");
    server.stop().await;
}

#[tokio::test]
async fn get_ignores_query_string() {
    let (_dir, server) = start().await;

    let (status, body) = server.get("/health?verbose=1&x").await;

    assert_eq!(status, StatusCode::OK, "GET /health with a query failed");
    assert_eq!(body, json!({"status": "ok"}), "query changed the body");
    server.stop().await;
}

#[tokio::test]
async fn metrics_start_at_zero() {
    let (_dir, server) = start().await;

    let (content_type, text) = read_metrics(&server).await;

    assert_eq!(
        content_type, "text/plain; version=0.0.4",
        "metrics must use the Prometheus text content type"
    );
    assert_eq!(
        text.lines().count(),
        15,
        "metrics must have exactly 15 lines: {text:?}"
    );
    assert_eq!(
        text,
        metrics_text(0, 0),
        "wrong metrics text on a new database"
    );
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_queue_and_published() {
    let (_dir, server) = start().await;
    for draft_id in ["d1", "d2", "d3"] {
        mark(&server, draft_id, "Title", "Content").await;
    }

    let (_, after_marks) = read_metrics(&server).await;
    confirm(&server, "d2", "https://gom.example/d2").await;
    let (_, after_confirm) = read_metrics(&server).await;

    assert_eq!(
        after_marks,
        metrics_text(3, 0),
        "queue gauge must count the three queued drafts"
    );
    assert_eq!(
        after_confirm,
        metrics_text(2, 1),
        "confirm must move one draft from the queue gauge to the published gauge"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Prepare and score
// ---------------------------------------------------------------------------

#[tokio::test]
async fn prepare_normalises_content() {
    let (_dir, server) = start().await;

    let (status, body) = server
        .post(
            "/publish/prepare",
            json!({
                "draft_id": "\u{1c} draft_003\u{3000}",
                "content": "  a\r\nb\rc\n\r\n  ",
                "target": "\u{a0}gom\u{1f}",
            }),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "prepare failed: {body}");
    assert_eq!(
        body,
        json!({
            "draft_id": "draft_003",
            "target": "gom",
            "prepared_content": "a\nb\rc",
            "sanitized": true,
        }),
        "prepare must trim the fields and turn CR LF into LF, keeping a lone CR"
    );
    assert_eq!(
        queue(&server).await["count"],
        0,
        "prepare must not queue anything"
    );
    server.stop().await;
}

#[tokio::test]
async fn prepare_keeps_markup_and_inner_whitespace() {
    let (_dir, server) = start().await;
    let content = "# Title\n\n<b>bold</b> &amp;  two  spaces\t\u{1c}inner";

    let (status, body) = server
        .post(
            "/publish/prepare",
            json!({"draft_id": "d1", "content": content, "target": "anything"}),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "prepare failed: {body}");
    assert_eq!(
        body["prepared_content"], content,
        "prepare must not change markup or inner whitespace"
    );
    assert_eq!(body["target"], "anything", "any target is accepted");
    server.stop().await;
}

#[tokio::test]
async fn score_matches_v1_vectors() {
    let (_dir, server) = start().await;
    let sentence = "This is a clear project update with concrete outcomes and next steps.";
    // (content, structure, clarity, safety, overall, gate_passed)
    let cases: Vec<(String, f64, f64, f64, f64, bool)> = vec![
        ("TODO".to_owned(), 0.01, 0.4, 0.2, 0.2, false),
        (words(19, "a"), 0.27, 0.4, 0.9, 0.52, false),
        (words(20, "a"), 0.29, 0.6, 0.9, 0.6, false),
        (format!("{} .", words(39, "a")), 0.57, 0.9, 0.9, 0.79, false),
        (format!("{} .", words(40, "a")), 0.59, 0.9, 0.9, 0.8, true),
        (sentence.repeat(4), 0.64, 0.9, 0.9, 0.81, true),
        (words(61, "a"), 0.87, 0.6, 0.9, 0.79, false),
        (words(62, "a"), 0.89, 0.6, 0.9, 0.8, true),
        (words(100, "a"), 1.0, 0.6, 0.9, 0.83, true),
        (words(70, "a."), 1.0, 0.9, 0.9, 0.93, true),
        (
            format!("{} . todo", words(69, "a")),
            1.0,
            0.9,
            0.2,
            0.7,
            false,
        ),
        (
            format!("{}.", words(51, "mastodon")),
            0.73,
            0.9,
            0.2,
            0.61,
            false,
        ),
        // U+001C..U+001F separate words as in v1: 20 words.
        (
            format!("{}\u{1c}b", words(19, "a")),
            0.29,
            0.6,
            0.9,
            0.6,
            false,
        ),
        // Surrounding whitespace is trimmed before counting.
        (
            format!("\u{3000} {} \u{1f}", words(19, "a")),
            0.27,
            0.4,
            0.9,
            0.52,
            false,
        ),
    ];

    for (content, structure, clarity, safety, overall, gate_passed) in cases {
        let label: String = content.chars().take(40).collect();
        let (status, body) = server
            .post(
                "/publish/score",
                json!({"draft_id": "d1", "content": content}),
            )
            .await;

        assert_eq!(status, StatusCode::OK, "score of {label:?} failed: {body}");
        let scores = &body["scores"];
        assert_eq!(scores["structure"], structure, "structure of {label:?}");
        assert_eq!(scores["clarity"], clarity, "clarity of {label:?}");
        assert_eq!(scores["safety"], safety, "safety of {label:?}");
        assert_eq!(scores["overall"], overall, "overall of {label:?}");
        assert_eq!(body["gate_passed"], gate_passed, "gate of {label:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn score_response_has_v1_shape() {
    let (_dir, server) = start().await;

    let (status, body) = server
        .post(
            "/publish/score",
            json!({"draft_id": " draft_001\u{1d}", "content": "TODO", "unknown": [1, 2]}),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "score failed: {body}");
    assert_eq!(
        body,
        json!({
            "draft_id": "draft_001",
            "scores": {"structure": 0.01, "clarity": 0.4, "safety": 0.2, "overall": 0.2},
            "gate_passed": false,
        }),
        "score must echo the trimmed draft id and the four scores"
    );
    assert_eq!(
        queue(&server).await["count"],
        0,
        "score must not queue anything"
    );
    server.stop().await;
}

#[tokio::test]
async fn prepare_requires_each_field() {
    let (_dir, server) = start().await;
    let valid = json!({"draft_id": "d1", "content": "c1", "target": "gom"});

    let rejections = required_field_rejections(&valid, &["draft_id", "content", "target"]);

    assert_rejections(&server, "/publish/prepare", &rejections).await;
    server.stop().await;
}

#[tokio::test]
async fn score_requires_each_field() {
    let (_dir, server) = start().await;
    let valid = json!({"draft_id": "d1", "content": "c1"});

    let rejections = required_field_rejections(&valid, &["draft_id", "content"]);

    assert_rejections(&server, "/publish/score", &rejections).await;
    server.stop().await;
}

#[tokio::test]
async fn prepare_and_score_ignore_event_id() {
    let (_dir, server) = start().await;
    let cases = [
        (
            "/publish/prepare",
            json!({"draft_id": "d1", "content": "c1", "target": "gom"}),
        ),
        ("/publish/score", json!({"draft_id": "d1", "content": "c1"})),
    ];

    for (path, valid) in cases {
        for event_id in [json!(""), json!(5), json!("e1")] {
            let body = with_field(&valid, "event_id", Some(&event_id));
            let (status, response) = server.post(path, body).await;

            assert_eq!(
                status,
                StatusCode::OK,
                "{path} must ignore event_id {event_id}: {response}"
            );
            assert!(
                response.get("idempotency").is_none(),
                "{path} must not report idempotency: {response}"
            );
        }
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Mark and the queue
// ---------------------------------------------------------------------------

#[tokio::test]
async fn mark_queues_trimmed_draft() {
    let (_dir, server) = start().await;

    let (status, body) = server
        .post(
            MARK,
            json!({
                "draft_id": " draft_010\u{1c}",
                "title": "\tProject Atlas Weekly\u{3000}",
                "prepared_content": "\u{1f} Ready for export.\r\nLine two \n",
                "event_id": null,
                "unknown": "ignored",
            }),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "mark failed: {body}");
    assert_eq!(
        body,
        json!({
            "draft_id": "draft_010",
            "title": "Project Atlas Weekly",
            "prepared_content": "Ready for export.\r\nLine two",
            "status": "queued_for_gom",
            "idempotency": not_provided(),
        }),
        "mark must return the stored draft, trimmed but otherwise unchanged"
    );
    assert_eq!(
        queue(&server).await,
        json!({
            "count": 1,
            "items": [queue_item("draft_010", "Project Atlas Weekly", "Ready for export.\r\nLine two")],
        }),
        "the queue must list the marked draft as stored"
    );
    server.stop().await;
}

#[tokio::test]
async fn mark_reports_accepted_event_id() {
    let (_dir, server) = start().await;

    let (status, body) = server
        .post(
            MARK,
            json!({
                "event_id": " \u{1c}mark-1\u{a0}",
                "draft_id": "d1",
                "title": "T1",
                "prepared_content": "c1",
            }),
        )
        .await;

    assert_eq!(
        status,
        StatusCode::OK,
        "mark with an event id failed: {body}"
    );
    assert_eq!(
        body["idempotency"],
        accepted("mark-1"),
        "mark must report the trimmed event id as accepted"
    );
    server.stop().await;
}

#[tokio::test]
async fn queue_lists_oldest_first() {
    let (_dir, server) = start().await;
    mark(&server, "d2", "T2", "c2").await;
    mark(&server, "d1", "T1", "c1").await;
    mark(&server, "d3", "T3", "c3").await;

    let listed = queue(&server).await;

    assert_eq!(
        listed,
        json!({
            "count": 3,
            "items": [
                queue_item("d2", "T2", "c2"),
                queue_item("d1", "T1", "c1"),
                queue_item("d3", "T3", "c3"),
            ],
        }),
        "the queue must list drafts in marking order, oldest first"
    );
    server.stop().await;
}

#[tokio::test]
async fn queue_starts_empty() {
    let (_dir, server) = start().await;

    let state = publish_state(&server).await;

    assert_eq!(
        state.queue,
        json!({"count": 0, "items": []}),
        "a new database must have an empty queue"
    );
    assert_eq!(
        state.published,
        json!({"count": 0, "items": []}),
        "a new database must have an empty published list"
    );
    server.stop().await;
}

#[tokio::test]
async fn listed_items_omit_idempotency() {
    let (_dir, server) = start().await;
    let (status, body) = server
        .post(
            MARK,
            json!({"event_id": "m1", "draft_id": "d1", "title": "T1", "prepared_content": "c1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "mark failed: {body}");
    mark(&server, "d2", "T2", "c2").await;
    let (status, body) = server
        .post(
            CONFIRM,
            json!({"event_id": "c1", "draft_id": "d1", "published_url": "https://gom.example/d1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "confirm failed: {body}");
    assert_eq!(
        body["idempotency"],
        accepted("c1"),
        "the confirm response itself must carry the idempotency object"
    );

    let state = publish_state(&server).await;

    for item in state.queue["items"].as_array().expect("queue items") {
        assert!(
            item.get("idempotency").is_none(),
            "queue items must not carry an idempotency object: {item}"
        );
    }
    for item in state.published["items"]
        .as_array()
        .expect("published items")
    {
        assert!(
            item.get("idempotency").is_none(),
            "published items must not carry an idempotency object: {item}"
        );
    }
    assert_eq!(
        state.queue["count"], 1,
        "d2 must still be queued: {}",
        state.queue
    );
    assert_eq!(
        state.published["count"], 1,
        "d1 must be published: {}",
        state.published
    );
    server.stop().await;
}

#[tokio::test]
async fn remark_updates_draft_in_place() {
    let (_dir, server) = start().await;
    mark(&server, "d1", "T1", "c1").await;
    mark(&server, "d2", "T2", "c2").await;

    let remarked = mark(&server, " d1 ", "T1b", "c1b").await;
    let listed = queue(&server).await;
    let exported = export(&server, "d1", "markdown").await;

    assert_eq!(
        remarked["title"], "T1b",
        "re-mark must return the new title"
    );
    assert_eq!(
        listed,
        json!({
            "count": 2,
            "items": [queue_item("d1", "T1b", "c1b"), queue_item("d2", "T2", "c2")],
        }),
        "re-mark must update d1 in place, keep its position and add no second copy"
    );
    assert_eq!(
        exported["artifact"], "c1b",
        "export after a re-mark must use the new content"
    );
    server.stop().await;
}

#[tokio::test]
async fn mark_requires_each_field() {
    let (_dir, server) = start().await;
    mark(&server, "d1", "T1", "c1").await;
    // A failed re-mark of d1 must not update it in place either.
    let valid = json!({"draft_id": "d1", "title": "T2", "prepared_content": "c2"});

    let rejections = required_field_rejections(&valid, &["draft_id", "title", "prepared_content"]);

    assert_rejections(&server, MARK, &rejections).await;
    server.stop().await;
}

#[tokio::test]
async fn mark_rejects_invalid_event_id() {
    let (_dir, server) = start().await;
    mark(&server, "d1", "T1", "c1").await;
    let valid = json!({"draft_id": "d2", "title": "T2", "prepared_content": "c2"});

    assert_rejections(&server, MARK, &event_id_rejections(&valid)).await;
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Export
// ---------------------------------------------------------------------------

#[tokio::test]
async fn export_markdown_returns_content() {
    let (_dir, server) = start().await;
    mark(&server, "d1", "T1", "c1 <b>&\"é").await;

    let body = export(&server, "d1", "markdown").await;

    assert_eq!(
        body,
        json!({
            "draft_id": "d1",
            "format": "markdown",
            "status": "export_ready",
            "artifact": "c1 <b>&\"é",
            "idempotency": not_provided(),
        }),
        "markdown export must return the content unchanged"
    );
    server.stop().await;
}

#[tokio::test]
async fn export_html_escapes_special_characters() {
    let (_dir, server) = start().await;
    mark(&server, "d1", "T1", "c1 <b>&\"'é\n<script>x</script>").await;

    let body = export(&server, "d1", "html").await;

    assert_eq!(
        body["artifact"], "<p>c1 &lt;b&gt;&amp;&quot;&#x27;é\n&lt;script&gt;x&lt;/script&gt;</p>",
        "html export must escape & < > \" ' inside one paragraph"
    );
    assert_eq!(body["format"], "html", "wrong format echoed");
    assert_eq!(body["status"], "export_ready", "wrong export status");
    server.stop().await;
}

#[tokio::test]
async fn export_json_uses_v1_text_style() {
    let (_dir, server) = start().await;
    mark(&server, "d1", "T1", "c1 <b>&\"é").await;

    let body = export(&server, "d1", "json").await;

    assert_eq!(
        body["artifact"],
        r#"{"draft_id": "d1", "prepared_content": "c1 <b>&\"\u00e9", "title": "T1"}"#,
        "json export must use sorted keys, \", \" and \": \" separators and \\u escapes"
    );
    assert_eq!(body["format"], "json", "wrong format echoed");
    server.stop().await;
}

#[tokio::test]
async fn export_json_escapes_astral_characters() {
    let (_dir, server) = start().await;
    mark(&server, "d1", "T\u{7f}", "😀/\u{1}\t").await;

    let body = export(&server, "d1", "json").await;

    assert_eq!(
        body["artifact"],
        r#"{"draft_id": "d1", "prepared_content": "\ud83d\ude00/\u0001", "title": "T\u007f"}"#,
        "json export must escape astral characters as surrogate pairs, U+007F and controls, and keep /"
    );
    server.stop().await;
}

#[tokio::test]
async fn export_leaves_queue_unchanged() {
    let (_dir, server) = start().await;
    mark(&server, "d1", "T1", "c1").await;
    mark(&server, "d2", "T2", "c2").await;
    let before = publish_state(&server).await;

    for format in ["markdown", "html", "json"] {
        export(&server, "d1", format).await;
    }
    let after = publish_state(&server).await;

    assert_eq!(
        after, before,
        "export must not change the queue or the published list"
    );
    server.stop().await;
}

#[tokio::test]
async fn export_trims_draft_id() {
    let (_dir, server) = start().await;
    mark(&server, "d1", "T1", "c1").await;

    let (status, body) = server
        .post(
            EXPORT,
            json!({"draft_id": "\u{1e} d1\u{2028}", "format": "markdown", "event_id": " x1 "}),
        )
        .await;

    assert_eq!(
        status,
        StatusCode::OK,
        "export with a padded id failed: {body}"
    );
    assert_eq!(body["draft_id"], "d1", "export must echo the queued id");
    assert_eq!(body["artifact"], "c1", "export found the wrong draft");
    assert_eq!(
        body["idempotency"],
        accepted("x1"),
        "export must report the trimmed event id as accepted"
    );
    server.stop().await;
}

#[tokio::test]
async fn export_requires_each_field() {
    let (_dir, server) = start().await;
    mark(&server, "d1", "T1", "c1").await;
    let valid = json!({"draft_id": "d1", "format": "markdown"});

    let rejections = required_field_rejections(&valid, &["draft_id", "format"]);

    assert_rejections(&server, EXPORT, &rejections).await;
    server.stop().await;
}

#[tokio::test]
async fn export_rejects_unknown_format() {
    let (_dir, server) = start().await;
    mark(&server, "d1", "T1", "c1").await;
    let mut rejections = Vec::new();
    // `format` is compared untrimmed and case-sensitively. d9 is not queued,
    // so these cases also show that the format is checked before the lookup.
    for format in [
        " html",
        "html ",
        "\u{1c}json",
        "HTML",
        "Markdown",
        "md",
        "pdf",
        "text/html",
    ] {
        for draft_id in ["d1", "d9"] {
            rejections.push(Rejection {
                label: format!("format {format:?} for {draft_id}"),
                body: json!({"draft_id": draft_id, "format": format}),
                message: "format must be one of: markdown, html, json".to_owned(),
                code: "invalid_field",
                field: "format",
            });
        }
    }

    assert_rejections(&server, EXPORT, &rejections).await;
    server.stop().await;
}

#[tokio::test]
async fn export_rejects_invalid_event_id() {
    let (_dir, server) = start().await;
    mark(&server, "d1", "T1", "c1").await;
    let valid = json!({"draft_id": "d1", "format": "markdown"});

    assert_rejections(&server, EXPORT, &event_id_rejections(&valid)).await;
    server.stop().await;
}

#[tokio::test]
async fn export_rejects_unknown_draft() {
    let (_dir, server) = start().await;
    mark(&server, "d1", "T1", "c1").await;
    let mut rejections = Vec::new();
    // The message quotes the trimmed id, and lookups are case-sensitive.
    for (draft_id, quoted) in [
        ("d9", "d9"),
        (" d9 ", "d9"),
        ("\u{1c}zz\u{3000}", "zz"),
        ("D1", "D1"),
    ] {
        rejections.push(Rejection {
            label: format!("draft_id {draft_id:?}"),
            body: json!({"draft_id": draft_id, "format": "html"}),
            message: format!("unknown draft id: {quoted}"),
            code: "unknown_draft",
            field: "draft_id",
        });
    }

    assert_rejections(&server, EXPORT, &rejections).await;
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Confirm and the published list
// ---------------------------------------------------------------------------

#[tokio::test]
async fn confirm_moves_draft_to_published() {
    let (_dir, server) = start().await;
    mark(&server, "d1", "Atlas Publish", "c1").await;
    mark(&server, "d2", "T2", "c2").await;

    let (status, body) = server
        .post(
            CONFIRM,
            json!({
                "draft_id": " d1\u{1f}",
                "published_url": "\u{a0}https://gom.example/posts/atlas-publish ",
            }),
        )
        .await;
    let state = publish_state(&server).await;

    assert_eq!(status, StatusCode::OK, "confirm failed: {body}");
    assert_eq!(
        body,
        json!({
            "draft_id": "d1",
            "title": "Atlas Publish",
            "published_url": "https://gom.example/posts/atlas-publish",
            "status": "published",
            "idempotency": not_provided(),
        }),
        "confirm must return the published draft with the trimmed URL"
    );
    assert_eq!(
        state.queue,
        json!({"count": 1, "items": [queue_item("d2", "T2", "c2")]}),
        "confirm must remove d1 from the queue and keep d2"
    );
    assert_eq!(
        state.published,
        json!({
            "count": 1,
            "items": [published_item("d1", "Atlas Publish", "https://gom.example/posts/atlas-publish")],
        }),
        "confirm must append d1 to the published list"
    );
    server.stop().await;
}

#[tokio::test]
async fn published_lists_confirmation_order() {
    let (_dir, server) = start().await;
    for draft_id in ["d1", "d2", "d3"] {
        mark(&server, draft_id, &format!("T-{draft_id}"), "c").await;
    }

    confirm(&server, "d3", "https://gom.example/3").await;
    confirm(&server, "d1", "http://gom.example/1").await;
    let listed = published(&server).await;

    assert_eq!(
        listed,
        json!({
            "count": 2,
            "items": [
                published_item("d3", "T-d3", "https://gom.example/3"),
                published_item("d1", "T-d1", "http://gom.example/1"),
            ],
        }),
        "the published list must be in confirmation order"
    );
    server.stop().await;
}

#[tokio::test]
async fn remark_after_confirm_queues_again() {
    let (_dir, server) = start().await;
    mark(&server, "d1", "T1", "c1").await;
    confirm(&server, "d1", "https://gom.example/u1").await;

    let (status, gone) = server
        .post(EXPORT, json!({"draft_id": "d1", "format": "markdown"}))
        .await;
    mark(&server, "d1", "T1b", "c1b").await;
    let queued_again = queue(&server).await;
    confirm(&server, "d1", "https://gom.example/u2").await;
    let state = publish_state(&server).await;

    assert_error(
        "export of a confirmed draft",
        &(status, gone),
        &ExpectedError {
            status: StatusCode::BAD_REQUEST,
            message: "unknown draft id: d1",
            code: "unknown_draft",
            field: Some("draft_id"),
        },
    );
    assert_eq!(
        queued_again,
        json!({"count": 1, "items": [queue_item("d1", "T1b", "c1b")]}),
        "a re-mark after confirm must queue the draft again"
    );
    assert_eq!(
        state.queue,
        json!({"count": 0, "items": []}),
        "the second confirm must empty the queue"
    );
    assert_eq!(
        state.published,
        json!({
            "count": 2,
            "items": [
                published_item("d1", "T1", "https://gom.example/u1"),
                published_item("d1", "T1b", "https://gom.example/u2"),
            ],
        }),
        "the published list must hold both publications of d1"
    );
    server.stop().await;
}

#[tokio::test]
async fn confirm_accepts_http_and_https() {
    let (_dir, server) = start().await;
    let urls = [
        ("https://gom.example/posts/1", "https://gom.example/posts/1"),
        ("http://gom.example", "http://gom.example"),
        (
            "HTTPS://GOM.example/Path?q=1#top",
            "HTTPS://GOM.example/Path?q=1#top",
        ),
        ("http://localhost:4000/x", "http://localhost:4000/x"),
        ("http://[::1]/x", "http://[::1]/x"),
        (
            "\u{1c} https://gom.example/trimmed\t",
            "https://gom.example/trimmed",
        ),
    ];

    for (index, (url, stored)) in urls.into_iter().enumerate() {
        let draft_id = format!("d{index}");
        mark(&server, &draft_id, "T", "c").await;
        let (status, body) = server
            .post(CONFIRM, json!({"draft_id": draft_id, "published_url": url}))
            .await;

        assert_eq!(
            status,
            StatusCode::OK,
            "confirm with {url:?} failed: {body}"
        );
        assert_eq!(
            body["published_url"], stored,
            "confirm must store {url:?} trimmed and otherwise unchanged"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn confirm_requires_each_field() {
    let (_dir, server) = start().await;
    mark(&server, "d1", "T1", "c1").await;
    let valid = json!({"draft_id": "d1", "published_url": "https://gom.example/d1"});

    let rejections = required_field_rejections(&valid, &["draft_id", "published_url"]);

    assert_rejections(&server, CONFIRM, &rejections).await;
    server.stop().await;
}

#[tokio::test]
async fn confirm_rejects_relative_urls() {
    let (_dir, server) = start().await;
    mark(&server, "d1", "T1", "c1").await;
    let mut rejections = Vec::new();
    let urls = [
        "not a url",
        "/posts/1",
        "posts/1",
        "gom.example/posts/1",
        "//gom.example/posts/1",
        "ftp://gom.example/posts/1",
        "file:///tmp/post.html",
        "mailto:editor@gom.example",
        "javascript:alert(1)",
        "http://",
        "https://",
        "http//gom.example",
    ];
    // d9 is not queued, so the d9 cases show that the URL is checked before
    // the draft lookup.
    for url in urls {
        for draft_id in ["d1", "d9"] {
            rejections.push(Rejection {
                label: format!("published_url {url:?} for {draft_id}"),
                body: json!({"draft_id": draft_id, "published_url": url}),
                message: "published_url must be an absolute http or https URL".to_owned(),
                code: "invalid_field",
                field: "published_url",
            });
        }
    }

    assert_rejections(&server, CONFIRM, &rejections).await;
    server.stop().await;
}

#[tokio::test]
async fn confirm_rejects_invalid_event_id() {
    let (_dir, server) = start().await;
    mark(&server, "d1", "T1", "c1").await;
    let valid = json!({"draft_id": "d1", "published_url": "https://gom.example/d1"});

    assert_rejections(&server, CONFIRM, &event_id_rejections(&valid)).await;
    server.stop().await;
}

#[tokio::test]
async fn confirm_rejects_unknown_draft() {
    let (_dir, server) = start().await;
    mark(&server, "d1", "T1", "c1").await;
    let mut rejections = Vec::new();
    for (draft_id, quoted) in [
        ("d9", "d9"),
        (" d9 ", "d9"),
        ("\u{1c}zz\u{3000}", "zz"),
        ("D1", "D1"),
    ] {
        rejections.push(Rejection {
            label: format!("draft_id {draft_id:?}"),
            body: json!({"draft_id": draft_id, "published_url": "https://gom.example/x"}),
            message: format!("unknown draft id: {quoted}"),
            code: "unknown_draft",
            field: "draft_id",
        });
    }

    assert_rejections(&server, CONFIRM, &rejections).await;
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Routing and methods
// ---------------------------------------------------------------------------

#[tokio::test]
async fn unknown_path_returns_not_found() {
    let (_dir, server) = start_with_body_limit(64).await;
    let paths = [
        "/nope",
        "/publish",
        "/publish/",
        "/publish/unknown",
        "/health/",
        "/Health",
        "/publish/mark-for-gom/",
        "/PUBLISH/MARK-FOR-GOM",
        "/ask",
        "/runs",
        "/onboarding/analyze-folder",
    ];
    // (content type, body): an object, no body, invalid JSON, a non-JSON
    // content type, and a body over the limit.
    let bodies: [(Option<&str>, String); 5] = [
        (Some("application/json"), "{}".to_owned()),
        (None, String::new()),
        (Some("application/json"), "{not json".to_owned()),
        (Some("text/plain"), "hello".to_owned()),
        (Some("application/json"), padded_mark_body(200)),
    ];
    let before = publish_state(&server).await;

    for path in paths {
        for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            for (content_type, body) in &bodies {
                let context = format!("{method} {path} with {content_type:?} body {body:.20}");
                let mut request = server
                    .client
                    .request(method.clone(), server.url(path))
                    .body(body.clone());
                if let Some(content_type) = content_type {
                    request = request.header(header::CONTENT_TYPE, *content_type);
                }
                let (status, response) = send(request).await;

                assert_eq!(
                    status,
                    StatusCode::NOT_FOUND,
                    "{context}: wrong status {response}"
                );
                assert_eq!(
                    response,
                    json!({"error": "not found", "code": "not_found"}),
                    "{context}: wrong body"
                );
            }
        }
    }
    assert_nothing_stored(&server, "requests to unknown paths", &before).await;
    server.stop().await;
}

#[tokio::test]
async fn wrong_method_returns_method_not_allowed() {
    let (_dir, server) = start().await;
    let post_paths = ["/publish/prepare", "/publish/score", MARK, EXPORT, CONFIRM];
    let get_paths = ["/health", "/health/ready", "/metrics", QUEUE, PUBLISHED];
    let mut cases: Vec<(Method, &str)> = Vec::new();
    for path in post_paths {
        for method in [Method::GET, Method::PUT, Method::DELETE, Method::PATCH] {
            cases.push((method, path));
        }
    }
    for path in get_paths {
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            cases.push((method, path));
        }
    }
    let before = publish_state(&server).await;

    for (method, path) in cases {
        // A valid mark body with a non-JSON content type: the method must be
        // rejected before the content type or the body is looked at.
        let request = server
            .client
            .request(method.clone(), server.url(path))
            .header(header::CONTENT_TYPE, "text/plain")
            .body(r#"{"draft_id": "d1", "title": "T1", "prepared_content": "c1"}"#);
        let (status, body) = send(request).await;
        let context = format!("{method} {path}");

        assert_eq!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{context}: wrong status, body {body}"
        );
        assert_error_shape(&body);
        assert_eq!(body["code"], "method_not_allowed", "{context}: wrong code");
        assert_eq!(
            body["error"],
            format!("method {method} is not allowed on {path}"),
            "{context}: wrong message"
        );
    }
    assert_nothing_stored(&server, "requests with the wrong method", &before).await;
    server.stop().await;
}

#[tokio::test]
async fn post_ignores_query_string() {
    let (_dir, server) = start().await;

    let (status, body) = server
        .post(
            "/publish/prepare?draft_id=other&x",
            json!({"draft_id": "d1", "content": "c1", "target": "gom"}),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "POST with a query failed: {body}");
    assert_eq!(
        body["draft_id"], "d1",
        "the query must not override the body"
    );
    server.stop().await;
}

#[tokio::test]
async fn responses_declare_json_content_type() {
    let (_dir, server) = start().await;
    let mark_body = r#"{"draft_id": "d1", "title": "T1", "prepared_content": "c1"}"#;
    // (label, method, path, Host, content type, body, expected status)
    let cases = [
        (
            "success",
            Method::POST,
            MARK,
            None,
            "application/json",
            mark_body,
            StatusCode::OK,
        ),
        (
            "listing",
            Method::GET,
            QUEUE,
            None,
            "application/json",
            "",
            StatusCode::OK,
        ),
        (
            "invalid json",
            Method::POST,
            MARK,
            None,
            "application/json",
            "[]",
            StatusCode::BAD_REQUEST,
        ),
        (
            "validation error",
            Method::POST,
            MARK,
            None,
            "application/json",
            "{}",
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown path",
            Method::POST,
            "/nope",
            None,
            "application/json",
            "{}",
            StatusCode::NOT_FOUND,
        ),
        (
            "wrong method",
            Method::GET,
            MARK,
            None,
            "application/json",
            "",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "wrong content type",
            Method::POST,
            MARK,
            None,
            "text/plain",
            mark_body,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "foreign host",
            Method::GET,
            "/health",
            Some("evil.example"),
            "application/json",
            "",
            StatusCode::FORBIDDEN,
        ),
    ];

    for (label, method, path, host, content_type, body, expected_status) in cases {
        let mut request = server
            .client
            .request(method, server.url(path))
            .header(header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(host) = host {
            request = request.header(header::HOST, host);
        }
        let response = request.send().await.expect("send request");
        let status = response.status();
        let declared = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let (_, json_body) = read_json(response).await;

        assert_eq!(
            status, expected_status,
            "{label}: wrong status, body {json_body}"
        );
        let essence = declared.split(';').next().unwrap_or_default().trim();
        assert_eq!(
            essence, "application/json",
            "{label}: a JSON body must be declared as application/json, got {declared:?}"
        );
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Content type
// ---------------------------------------------------------------------------

#[tokio::test]
async fn post_requires_json_content_type() {
    let (_dir, server) = start().await;
    let body = r#"{"draft_id": "d1", "title": "T1", "prepared_content": "c1"}"#;
    let content_types = [
        None,
        Some("text/plain"),
        Some("text/json"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonx"),
        Some("application/json-patch+json"),
        Some("application/problem+json"),
        Some("multipart/form-data; boundary=x"),
        Some(""),
    ];
    let before = publish_state(&server).await;

    for path in ["/publish/prepare", "/publish/score", MARK, EXPORT, CONFIRM] {
        for content_type in content_types {
            let mut request = server.client.post(server.url(path)).body(body);
            if let Some(content_type) = content_type {
                request = request.header(header::CONTENT_TYPE, content_type);
            }
            let (status, response) = send(request).await;
            let context = format!("POST {path} with content type {content_type:?}");

            assert_eq!(
                status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{context}: wrong status, body {response}"
            );
            assert_error_shape(&response);
            assert_eq!(
                response["code"], "unsupported_media_type",
                "{context}: wrong code"
            );
            assert!(
                response["error"]
                    .as_str()
                    .is_some_and(|message| message.contains("application/json")),
                "{context}: the message must name application/json: {response}"
            );
        }
    }
    assert_nothing_stored(&server, "POSTs without a JSON content type", &before).await;
    server.stop().await;
}

#[tokio::test]
async fn json_content_type_parameters_are_accepted() {
    let (_dir, server) = start().await;
    let content_types = [
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "application/json ; charset=utf-8",
        "Application/JSON",
    ];

    for (index, content_type) in content_types.into_iter().enumerate() {
        let draft_id = format!("d{index}");
        let request = server
            .client
            .post(server.url(MARK))
            .header(header::CONTENT_TYPE, content_type)
            .body(json!({"draft_id": draft_id, "title": "T", "prepared_content": "c"}).to_string());
        let (status, body) = send(request).await;

        assert_eq!(
            status,
            StatusCode::OK,
            "content type {content_type:?} must be accepted: {body}"
        );
    }
    assert_eq!(
        queue(&server).await["count"],
        4,
        "every accepted mark must be queued"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// JSON parsing
// ---------------------------------------------------------------------------

#[tokio::test]
async fn invalid_json_is_rejected() {
    let (_dir, server) = start().await;
    let valid_fields = r#""draft_id": "d1", "title": "T1", "prepared_content": "c1""#;
    let huge_integer = format!("1{}", "0".repeat(400));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty body", Vec::new()),
        ("whitespace only", b" \n ".to_vec()),
        ("array", format!("[{{{valid_fields}}}]").into_bytes()),
        ("string", br#""d1""#.to_vec()),
        ("number", b"1".to_vec()),
        ("null", b"null".to_vec()),
        ("true", b"true".to_vec()),
        ("truncated object", format!("{{{valid_fields}").into_bytes()),
        (
            "two objects",
            format!("{{{valid_fields}}} {{}}").into_bytes(),
        ),
        (
            "trailing comma",
            format!("{{{valid_fields},}}").into_bytes(),
        ),
        ("single quotes", b"{'draft_id': 'd1'}".to_vec()),
        ("byte-order mark", {
            let mut bytes = b"\xef\xbb\xbf".to_vec();
            bytes.extend_from_slice(format!("{{{valid_fields}}}").as_bytes());
            bytes
        }),
        (
            "NaN",
            format!("{{{valid_fields}, \"n\": NaN}}").into_bytes(),
        ),
        (
            "Infinity",
            format!("{{{valid_fields}, \"n\": Infinity}}").into_bytes(),
        ),
        (
            "-Infinity",
            format!("{{{valid_fields}, \"n\": -Infinity}}").into_bytes(),
        ),
        (
            "1e400",
            format!("{{{valid_fields}, \"n\": 1e400}}").into_bytes(),
        ),
        (
            "-1e400",
            format!("{{{valid_fields}, \"n\": -1e400}}").into_bytes(),
        ),
        (
            "401-digit integer",
            format!("{{{valid_fields}, \"n\": {huge_integer}}}").into_bytes(),
        ),
        (
            "nesting 128 levels deep",
            format!(
                "{{{valid_fields}, \"n\": {}{}}}",
                "[".repeat(127),
                "]".repeat(127)
            )
            .into_bytes(),
        ),
        (
            "nesting 2000 levels deep",
            format!(
                "{{{valid_fields}, \"n\": {}{}}}",
                "[".repeat(1999),
                "]".repeat(1999)
            )
            .into_bytes(),
        ),
        ("invalid UTF-8 in a value", {
            let mut bytes = br#"{"draft_id": "d1", "title": "T"#.to_vec();
            bytes.push(0xff);
            bytes.extend_from_slice(br#"", "prepared_content": "c1"}"#);
            bytes
        }),
        ("overlong UTF-8 encoding", {
            let mut bytes = br#"{"draft_id": "d1", "title": "T"#.to_vec();
            bytes.extend_from_slice(&[0xc0, 0xaf]);
            bytes.extend_from_slice(br#"", "prepared_content": "c1"}"#);
            bytes
        }),
        (
            "lone high surrogate",
            br#"{"draft_id": "d1", "title": "T\ud800", "prepared_content": "c1"}"#.to_vec(),
        ),
        (
            "lone low surrogate",
            br#"{"draft_id": "d1", "title": "T\udc00", "prepared_content": "c1"}"#.to_vec(),
        ),
        (
            "raw control character in a string",
            b"{\"draft_id\": \"d1\", \"title\": \"T\x01\", \"prepared_content\": \"c1\"}".to_vec(),
        ),
    ];
    let before = publish_state(&server).await;

    for path in [MARK, "/publish/prepare", EXPORT, CONFIRM] {
        for (label, body) in &cases {
            let context = format!("POST {path} with {label}");
            let response = server
                .post_raw(path, Some("application/json"), body.clone())
                .await;

            assert_error(
                &context,
                &response,
                &ExpectedError {
                    status: StatusCode::BAD_REQUEST,
                    message: "invalid json",
                    code: "invalid_json",
                    field: None,
                },
            );
        }
    }
    assert_nothing_stored(&server, "POSTs with invalid JSON", &before).await;
    server.stop().await;
}

#[tokio::test]
async fn nesting_127_levels_is_accepted() {
    let (_dir, server) = start().await;
    // The object itself is level 1, so 126 arrays make 127 levels, the
    // deepest that serde_json's recursion limit of 128 lets through.
    let body = format!(
        r#"{{"draft_id": "d1", "title": "T1", "prepared_content": "c1", "n": {}{}}}"#,
        "[".repeat(126),
        "]".repeat(126)
    );

    let (status, response) = server.post_raw(MARK, Some("application/json"), body).await;

    assert_eq!(
        status,
        StatusCode::OK,
        "a body nested 127 levels deep must be accepted: {response}"
    );
    server.stop().await;
}

#[tokio::test]
async fn json_edge_values_are_accepted() {
    let (_dir, server) = start().await;
    // Duplicate keys keep the last value, a surrogate pair is one character,
    // and large but finite numbers in ignored fields are fine.
    let body = r#"{"draft_id": "dx", "draft_id": "d1", "title": "T\ud83d\ude00",
        "prepared_content": "c1", "n": 1e308, "m": 123456789012345678901234567890}"#;

    let (status, response) = server.post_raw(MARK, Some("application/json"), body).await;

    assert_eq!(status, StatusCode::OK, "mark failed: {response}");
    assert_eq!(
        response["draft_id"], "d1",
        "the last duplicate key must win"
    );
    assert_eq!(
        response["title"], "T😀",
        "a surrogate pair escape must decode to one character"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Body size
// ---------------------------------------------------------------------------

#[tokio::test]
async fn body_over_limit_is_rejected() {
    let limit = 100;
    let (_dir, server) = start_with_body_limit(limit).await;

    let (status, body) = server
        .post_raw(MARK, Some("application/json"), padded_mark_body(limit + 1))
        .await;
    let state_after_rejection = publish_state(&server).await;
    let (accepted_status, accepted_body) = server
        .post_raw(MARK, Some("application/json"), padded_mark_body(limit))
        .await;

    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "a body one byte over the limit must be rejected: {body}"
    );
    assert_error_shape(&body);
    assert_eq!(body["code"], "payload_too_large", "wrong code");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|message| message.contains(&limit.to_string())),
        "the message must state the limit: {body}"
    );
    assert_eq!(
        state_after_rejection.queue["count"], 0,
        "a rejected body must not be queued"
    );
    assert_eq!(
        accepted_status,
        StatusCode::OK,
        "a body exactly at the limit must be accepted: {accepted_body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn default_limit_is_one_mebibyte() {
    let (_dir, server) = start().await;
    let limit = 1 << 20;

    let (status, body) = server
        .post_raw(MARK, Some("application/json"), padded_mark_body(limit + 1))
        .await;
    let state_after_rejection = publish_state(&server).await;
    let (accepted_status, accepted_body) = server
        .post_raw(MARK, Some("application/json"), padded_mark_body(limit))
        .await;

    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "a body of 1 MiB + 1 byte must be rejected: {body}"
    );
    assert_eq!(body["code"], "payload_too_large", "wrong code");
    assert_eq!(
        state_after_rejection.queue["count"], 0,
        "a rejected body must not be queued"
    );
    assert_eq!(
        accepted_status,
        StatusCode::OK,
        "a body of exactly 1 MiB must be accepted: {accepted_body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn chunked_body_over_limit_is_rejected() {
    let limit = 100;
    let (_dir, server) = start_with_body_limit(limit).await;
    let request = chunked_mark_request(&padded_mark_body(limit + 50), 16);

    let (status, body) = raw_exchange(&server, &request).await;

    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "a chunked body over the limit must be rejected: {body}"
    );
    assert_error_shape(&body);
    assert_eq!(body["code"], "payload_too_large", "wrong code");
    assert_eq!(
        queue(&server).await["count"],
        0,
        "a rejected chunked body must not be queued"
    );
    server.stop().await;
}

#[tokio::test]
async fn chunked_body_under_limit_is_accepted() {
    let limit = 100;
    let (_dir, server) = start_with_body_limit(limit).await;
    let request = chunked_mark_request(&padded_mark_body(limit), 7);

    let (status, body) = raw_exchange(&server, &request).await;

    assert_eq!(
        status,
        StatusCode::OK,
        "a chunked body within the limit must be accepted: {body}"
    );
    assert_eq!(
        queue(&server).await,
        json!({"count": 1, "items": [queue_item("d1", "T1", "c1")]}),
        "the chunked mark must be queued"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Host header
// ---------------------------------------------------------------------------

#[tokio::test]
async fn foreign_host_is_forbidden() {
    let (_dir, server) = start().await;
    let hosts = [
        "evil.example",
        "evil.example:8000",
        "127.0.0.2",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "[::2]:8000",
        "0.0.0.0",
    ];
    let mark_body = r#"{"draft_id": "d1", "title": "T1", "prepared_content": "c1"}"#;
    let before = publish_state(&server).await;

    for host in hosts {
        for (method, path) in [
            (Method::GET, "/health"),
            (Method::GET, QUEUE),
            (Method::POST, MARK),
            (Method::POST, "/nope"),
        ] {
            let request = server
                .client
                .request(method.clone(), server.url(path))
                .header(header::HOST, host)
                .header(header::CONTENT_TYPE, "application/json")
                .body(mark_body);
            let (status, body) = send(request).await;
            let context = format!("{method} {path} with Host {host}");

            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{context}: wrong status, body {body}"
            );
            assert_error_shape(&body);
            assert_eq!(body["code"], "forbidden_host", "{context}: wrong code");
            let message = body["error"].as_str().unwrap_or_default();
            assert!(
                message.contains("MIND_LITE_ALLOWED_HOSTS"),
                "{context}: the message must name MIND_LITE_ALLOWED_HOSTS: {message}"
            );
            assert!(
                message.contains(host),
                "{context}: the message must name the rejected host: {message}"
            );
        }
    }
    assert_nothing_stored(&server, "requests with a foreign Host", &before).await;
    server.stop().await;
}

#[tokio::test]
async fn loopback_hosts_are_allowed() {
    let (_dir, server) = start().await;
    let hosts = [
        "localhost",
        "localhost:8000",
        "LOCALHOST:1",
        "127.0.0.1",
        "127.0.0.1:65535",
        "[::1]",
        "[::1]:8000",
    ];

    for host in hosts {
        let request = server
            .client
            .get(server.url("/health"))
            .header(header::HOST, host);
        let (status, body) = send(request).await;

        assert_eq!(
            status,
            StatusCode::OK,
            "Host {host} must be allowed: {body}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn configured_host_is_allowed() {
    let dir = TestDir::new();
    let mut settings = Settings::for_database(dir.database_url());
    settings.allowed_hosts = vec!["Notes.Local".to_owned(), "mind.example".to_owned()];
    let server = TestServer::start_with(settings).await;

    for host in [
        "notes.local",
        "notes.local:8000",
        "NOTES.LOCAL",
        "mind.example:1",
        "localhost",
    ] {
        let request = server
            .client
            .post(server.url("/publish/prepare"))
            .header(header::HOST, host)
            .header(header::CONTENT_TYPE, "application/json")
            .body(r#"{"draft_id": "d1", "content": "c1", "target": "gom"}"#);
        let (status, body) = send(request).await;

        assert_eq!(
            status,
            StatusCode::OK,
            "configured Host {host} must be allowed: {body}"
        );
    }
    for host in [
        "other.local",
        "notes.local.evil.example",
        "mind.example.evil",
    ] {
        let request = server
            .client
            .get(server.url("/health"))
            .header(header::HOST, host);
        let (status, body) = send(request).await;

        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "Host {host} is not configured and must be rejected: {body}"
        );
        assert_eq!(body["code"], "forbidden_host", "Host {host}: wrong code");
    }
    server.stop().await;
}
