//! Tests `POST /ask` over HTTP: the answer text, the routing rows with and
//! without cloud access, the sensitivity and budget objects, and every
//! validation error with its exact v1 message in v1's order.

mod common;

use common::requests::{
    ALL_WHITESPACE, ASK, assert_invalid_json_rejected, assert_method_not_allowed, assert_rejected,
    blank_values, invalid_event_ids, not_provided, post_ok, post_text, with_field,
};
use common::{TestDir, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn start() -> (TestDir, TestServer) {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    (dir, server)
}

async fn ask(server: &TestServer, body: Value) -> Value {
    post_ok(server, ASK, body).await
}

fn allowed_sensitivity() -> Value {
    json!({"allowed": true, "reasons": []})
}

fn normal_budget() -> Value {
    json!({"status": "normal", "cloud_allowed": true, "local_only_mode": false})
}

/// Returns the `provider_trace` of a fallback to the cloud for `reason`.
fn cloud_trace(reason: &str) -> Value {
    json!({
        "initial": "local",
        "provider": "openai",
        "fallback_used": true,
        "fallback_provider": "openai",
        "fallback_reason": reason,
    })
}

/// Returns the `provider_trace` of an answer that stays local for `reason`.
fn local_trace(reason: &str) -> Value {
    json!({
        "initial": "local",
        "provider": "local",
        "fallback_used": false,
        "fallback_provider": null,
        "fallback_reason": reason,
    })
}

// ---------------------------------------------------------------------------
// Successes

#[tokio::test]
async fn ask_spec_example_falls_back() {
    let (_dir, server) = start().await;

    let body = ask(
        &server,
        json!({"query": "What should I work on?", "local_confidence": 0.55}),
    )
    .await;

    assert_eq!(
        body,
        json!({
            "answer": {"text": "Draft answer for: What should I work on?", "confidence": 0.55},
            "provider_trace": cloud_trace("low_confidence"),
            "sensitivity": allowed_sensitivity(),
            "budget": normal_budget(),
            "idempotency": not_provided(),
        }),
        "wrong response to the spec's example"
    );
    server.stop().await;
}

#[tokio::test]
async fn ask_defaults_stay_local() {
    let (_dir, server) = start().await;

    let body = ask(&server, json!({"query": "q"})).await;

    assert_eq!(
        body,
        json!({
            "answer": {"text": "Draft answer for: q", "confidence": 0.85},
            "provider_trace": local_trace("local_success"),
            "sensitivity": allowed_sensitivity(),
            "budget": normal_budget(),
            "idempotency": not_provided(),
        }),
        "wrong response with every default"
    );
    server.stop().await;
}

#[tokio::test]
async fn ask_trims_query_for_answer() {
    let (_dir, server) = start().await;
    let query = format!("{ALL_WHITESPACE}What  is\tthis?{ALL_WHITESPACE}");

    let body = ask(&server, json!({ "query": query })).await;

    assert_eq!(
        body["answer"]["text"], "Draft answer for: What  is\tthis?",
        "the query is not trimmed, or inner whitespace changed"
    );
    server.stop().await;
}

#[tokio::test]
async fn ask_keeps_non_ascii_query() {
    let (_dir, server) = start().await;

    let body = ask(&server, json!({"query": "Café ☕ 𝄞 \"quoted\" \\ </b>"})).await;

    assert_eq!(
        body["answer"]["text"], "Draft answer for: Café ☕ 𝄞 \"quoted\" \\ </b>",
        "the query text changed in the answer"
    );
    server.stop().await;
}

#[tokio::test]
async fn ask_ignores_unknown_fields() {
    let (_dir, server) = start().await;

    let plain = ask(&server, json!({"query": "q"})).await;
    let extra = ask(
        &server,
        json!({"query": "q", "provider": "openai", "top_k": 5, "Allow_Fallback": "no"}),
    )
    .await;

    assert_eq!(extra, plain, "an unknown field changed the response");
    server.stop().await;
}

#[tokio::test]
async fn ask_routing_rows_with_cloud() {
    let (_dir, server) = start().await;
    let cases = [
        (
            "row 1: timeout wins over every other trigger",
            json!({"local_timed_out": true, "grounding_failed": true, "local_confidence": 0.1}),
            cloud_trace("timeout"),
        ),
        (
            "row 1: timeout with a high confidence",
            json!({"local_timed_out": true, "local_confidence": 0.9}),
            cloud_trace("timeout"),
        ),
        (
            "row 2: grounding failure wins over low confidence",
            json!({"grounding_failed": true, "local_confidence": 0.1}),
            cloud_trace("grounding_failure"),
        ),
        (
            "row 2: grounding failure with a high confidence",
            json!({"grounding_failed": true, "local_timed_out": false, "local_confidence": 1.0}),
            cloud_trace("grounding_failure"),
        ),
        (
            "row 3: confidence just below 0.70",
            json!({"local_confidence": 0.69}),
            cloud_trace("low_confidence"),
        ),
        (
            "row 3: confidence 0.0",
            json!({"local_confidence": 0.0}),
            cloud_trace("low_confidence"),
        ),
        (
            "row 4: confidence exactly 0.70",
            json!({"local_confidence": 0.7}),
            local_trace("local_success"),
        ),
        (
            "row 4: confidence 1.0",
            json!({"local_confidence": 1.0, "allow_fallback": true}),
            local_trace("local_success"),
        ),
    ];

    for (label, fields, expected) in cases {
        let mut body = fields.clone();
        body["query"] = json!("q");
        let response = ask(&server, body).await;
        assert_eq!(
            response["provider_trace"], expected,
            "{label}: wrong provider trace"
        );
        assert_eq!(response["budget"], normal_budget(), "{label}: wrong budget");
    }
    server.stop().await;
}

#[tokio::test]
async fn ask_blocked_without_fallback() {
    let (_dir, server) = start().await;
    let cases = [
        (
            "row 1'",
            json!({"local_timed_out": true}),
            local_trace("cloud_blocked"),
        ),
        (
            "row 2'",
            json!({"grounding_failed": true}),
            local_trace("cloud_blocked"),
        ),
        (
            "row 3'",
            json!({"local_confidence": 0.2}),
            local_trace("cloud_blocked"),
        ),
        (
            "row 4 without fallback",
            json!({"local_confidence": 0.95}),
            local_trace("local_success"),
        ),
    ];

    for (label, fields, expected) in cases {
        let mut body = fields.clone();
        body["query"] = json!("q");
        body["allow_fallback"] = json!(false);
        let response = ask(&server, body).await;
        assert_eq!(
            response["provider_trace"], expected,
            "{label}: wrong provider trace"
        );
        assert_eq!(
            response["sensitivity"],
            allowed_sensitivity(),
            "{label}: a blocked fallback changed the sensitivity verdict"
        );
        assert_eq!(
            response["budget"],
            normal_budget(),
            "{label}: a blocked fallback changed the budget"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn ask_blocked_for_sensitive_note() {
    let (_dir, server) = start().await;
    let notes = [
        (
            json!({"frontmatter": {"sensitive": "false"}}),
            "blocked_by_frontmatter_flag",
        ),
        (json!({"tags": ["Private"]}), "blocked_by_tag_rule"),
        (json!({"path": "Finance\\taxes.md"}), "blocked_by_path_rule"),
        (
            json!({"content": "key OPENAI_API_KEY here"}),
            "blocked_by_regex_pattern",
        ),
    ];
    let triggers = [
        (json!({"local_timed_out": true}), "timeout"),
        (json!({"grounding_failed": true}), "grounding failure"),
        (json!({"local_confidence": 0.3}), "low confidence"),
    ];

    for (note, reason) in &notes {
        for (trigger, trigger_label) in &triggers {
            let mut body = note.clone();
            for (key, value) in trigger.as_object().expect("trigger is an object") {
                body[key] = value.clone();
            }
            body["query"] = json!("q");
            let response = ask(&server, body).await;
            assert_eq!(
                response["provider_trace"],
                local_trace("cloud_blocked"),
                "{trigger_label} for a note {reason}: the cloud was not blocked"
            );
            assert_eq!(
                response["sensitivity"],
                json!({"allowed": false, "reasons": [reason]}),
                "{trigger_label} for a note {reason}: wrong sensitivity"
            );
        }
    }

    let calm = ask(
        &server,
        json!({"query": "q", "tags": ["secret"], "local_confidence": 0.9}),
    )
    .await;
    assert_eq!(
        calm["provider_trace"],
        local_trace("local_success"),
        "a sensitive note with a confident local answer is not local_success"
    );

    let both = ask(
        &server,
        json!({"query": "q", "allow_fallback": false, "path": "private/x", "local_confidence": 0.1}),
    )
    .await;
    assert_eq!(
        both["sensitivity"],
        json!({"allowed": false, "reasons": ["blocked_by_path_rule"]}),
        "sensitivity is not computed when the fallback is off"
    );
    assert_eq!(
        both["provider_trace"],
        local_trace("cloud_blocked"),
        "a sensitive note without fallback is not cloud_blocked"
    );
    server.stop().await;
}

#[tokio::test]
async fn ask_accepts_confidence_bounds() {
    let (_dir, server) = start().await;
    let cases = [
        (json!(0.0), "0.0", "low_confidence"),
        (json!(0), "0.0", "low_confidence"),
        (json!(1.0), "1.0", "local_success"),
        (json!(1), "1.0", "local_success"),
        (json!(0.5), "0.5", "low_confidence"),
    ];

    for (value, written, reason) in cases {
        let (status, text) = post_text(
            &server,
            ASK,
            &json!({"query": "q", "local_confidence": value}),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "local_confidence {value} was rejected: {text}"
        );
        assert!(
            text.contains(&format!(
                "\"answer\":{{\"text\":\"Draft answer for: q\",\"confidence\":{written}}}"
            )),
            "local_confidence {value} is not echoed as the float {written}: {text}"
        );
        let body: Value = serde_json::from_str(&text).expect("response is JSON");
        assert_eq!(
            body["provider_trace"]["fallback_reason"], reason,
            "local_confidence {value}: wrong routing reason"
        );
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Rejections

#[tokio::test]
async fn ask_requires_query() {
    let (_dir, server) = start().await;
    let valid = json!({"query": "q"});

    for (label, value) in blank_values() {
        let body = with_field(&valid, "query", value);
        let response = server.post(ASK, body).await;
        assert_rejected(
            &format!("query {label}"),
            &response,
            "query is required",
            "missing_field",
            Some("query"),
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn ask_rejects_invalid_event_id() {
    let (_dir, server) = start().await;

    for event_id in invalid_event_ids() {
        let response = server
            .post(ASK, json!({"query": "q", "event_id": event_id}))
            .await;
        assert_rejected(
            &format!("event_id {event_id}"),
            &response,
            "event_id must be a non-empty string",
            "invalid_field",
            Some("event_id"),
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn ask_null_event_id_is_absent() {
    let (_dir, server) = start().await;

    let null_id = ask(&server, json!({"query": "q", "event_id": null})).await;
    let no_id = ask(&server, json!({"query": "q"})).await;

    assert_eq!(
        null_id["idempotency"],
        not_provided(),
        "a null event_id is not treated as absent"
    );
    assert_eq!(null_id, no_id, "a null event_id changed the response");
    server.stop().await;
}

#[tokio::test]
async fn ask_rejects_invalid_booleans() {
    let (_dir, server) = start().await;
    let invalid = [
        json!(null),
        json!(0),
        json!(1),
        json!("true"),
        json!("false"),
        json!([]),
        json!({}),
    ];

    for field in ["allow_fallback", "local_timed_out", "grounding_failed"] {
        for value in &invalid {
            let response = server.post(ASK, json!({"query": "q", field: value})).await;
            assert_rejected(
                &format!("{field} = {value}"),
                &response,
                &format!("{field} must be a boolean"),
                "invalid_field",
                Some(field),
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn ask_rejects_non_number_confidence() {
    let (_dir, server) = start().await;
    let invalid = [
        json!(true),
        json!(false),
        json!(null),
        json!("0.9"),
        json!(""),
        json!([0.9]),
        json!({"value": 0.9}),
    ];

    for value in invalid {
        let response = server
            .post(ASK, json!({"query": "q", "local_confidence": value}))
            .await;
        assert_rejected(
            &format!("local_confidence = {value}"),
            &response,
            "local_confidence must be a number",
            "invalid_field",
            Some("local_confidence"),
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn ask_rejects_out_of_range_confidence() {
    let (_dir, server) = start().await;
    let invalid = [
        json!(-5),
        json!(-0.01),
        json!(1.0000001),
        json!(2),
        json!(1e300),
        json!(-1e300),
        json!(u64::MAX),
        json!(i64::MIN),
    ];

    for value in invalid {
        let response = server
            .post(ASK, json!({"query": "q", "local_confidence": value}))
            .await;
        assert_rejected(
            &format!("local_confidence = {value}"),
            &response,
            "local_confidence must be between 0.0 and 1.0",
            "invalid_field",
            Some("local_confidence"),
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn ask_rejects_non_finite_confidence() {
    let (_dir, server) = start().await;

    for literal in ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"] {
        let raw = format!("{{\"query\": \"q\", \"local_confidence\": {literal}}}");
        let response = server
            .post_raw(ASK, Some("application/json"), raw.clone())
            .await;
        assert_rejected(&raw, &response, "invalid json", "invalid_json", None);
    }
    server.stop().await;
}

#[tokio::test]
async fn ask_rejects_invalid_note_fields() {
    let (_dir, server) = start().await;
    let cases = [
        ("frontmatter", json!(null), "frontmatter must be an object"),
        ("frontmatter", json!([]), "frontmatter must be an object"),
        ("tags", json!(null), "tags must be a list of strings"),
        ("tags", json!([1]), "tags must be a list of strings"),
        ("tags", json!("secret"), "tags must be a list of strings"),
        ("path", json!(null), "path must be a string"),
        ("path", json!(7), "path must be a string"),
        ("content", json!(null), "content must be a string"),
        ("content", json!(["x"]), "content must be a string"),
    ];

    for (field, value, message) in cases {
        let response = server.post(ASK, json!({"query": "q", field: value})).await;
        assert_rejected(
            &format!("{field} = {value}"),
            &response,
            message,
            "invalid_field",
            Some(field),
        );
    }
    server.stop().await;
}

/// Starts from a body where every field is invalid and fixes one field at a
/// time, in v1's validation order: each step must report the next field.
#[tokio::test]
async fn ask_first_failing_check_wins() {
    let (_dir, server) = start().await;
    let mut body = json!({
        "query": "   ",
        "event_id": 5,
        "allow_fallback": "yes",
        "local_confidence": true,
        "local_timed_out": null,
        "grounding_failed": 0,
        "frontmatter": [],
        "tags": [1],
        "path": null,
        "content": null,
    });
    let steps = [
        ("query", json!("q"), "query is required"),
        (
            "event_id",
            json!(null),
            "event_id must be a non-empty string",
        ),
        (
            "allow_fallback",
            json!(true),
            "allow_fallback must be a boolean",
        ),
        (
            "local_confidence",
            json!(0.5),
            "local_confidence must be a number",
        ),
        (
            "local_timed_out",
            json!(false),
            "local_timed_out must be a boolean",
        ),
        (
            "grounding_failed",
            json!(false),
            "grounding_failed must be a boolean",
        ),
        ("frontmatter", json!({}), "frontmatter must be an object"),
        ("tags", json!([]), "tags must be a list of strings"),
        ("path", json!(""), "path must be a string"),
        ("content", json!(""), "content must be a string"),
    ];

    for (field, fix, message) in steps {
        let response = server.post(ASK, body.clone()).await;
        assert_rejected(
            &format!("before fixing {field}: {body}"),
            &response,
            message,
            if message.ends_with("is required") {
                "missing_field"
            } else {
                "invalid_field"
            },
            Some(field),
        );
        body[field] = fix;
    }

    let response = ask(&server, body).await;
    assert_eq!(
        response["provider_trace"],
        cloud_trace("low_confidence"),
        "the fully corrected body routes wrongly"
    );
    server.stop().await;
}

#[tokio::test]
async fn ask_range_checked_before_booleans() {
    let (_dir, server) = start().await;

    let response = server
        .post(
            ASK,
            json!({"query": "q", "local_confidence": 1.5, "local_timed_out": "x"}),
        )
        .await;

    assert_rejected(
        "out-of-range confidence and a bad local_timed_out",
        &response,
        "local_confidence must be between 0.0 and 1.0",
        "invalid_field",
        Some("local_confidence"),
    );
    server.stop().await;
}

#[tokio::test]
async fn ask_rejects_invalid_json() {
    let (_dir, server) = start().await;

    assert_invalid_json_rejected(&server, ASK).await;
    server.stop().await;
}

#[tokio::test]
async fn ask_wrong_method_is_405() {
    let (_dir, server) = start().await;

    assert_method_not_allowed(&server, Method::GET, ASK).await;
    assert_method_not_allowed(&server, Method::PUT, ASK).await;
    server.stop().await;
}
