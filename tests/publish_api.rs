//! Tests health, metrics, prepare, score and the publish pipeline over HTTP,
//! with exact error messages and no stored change after a rejected request.

mod common;

use common::TestServer;
use common::publish::{
    CONFIRM, EXPORT, ExpectedError, MARK, assert_error, assert_nothing_stored, publish_state,
    published, queue, queue_item, start,
};
use common::requests::{accepted, not_provided};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

// Helpers

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

// Health and metrics

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

// Prepare and score

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

// Mark and the queue

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

// Export

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

// Confirm and the published list

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
