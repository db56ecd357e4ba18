//! Tests `POST /links/propose` and `POST /links/apply` over HTTP: link scores
//! and reasons from title keywords, the stable sort, the confidence threshold,
//! and every validation error with its exact v1 message in v1's order.

mod common;

use common::requests::{
    ALL_WHITESPACE, LINKS_APPLY, LINKS_PROPOSE, assert_invalid_json_rejected,
    assert_method_not_allowed, assert_rejected, blank_values, invalid_event_ids, non_list_values,
    not_provided, post_ok, post_text, with_field,
};
use common::{TestDir, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn start() -> (TestDir, TestServer) {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    (dir, server)
}

fn suggestion(target_note_id: &str, confidence: f64, reason: &str) -> Value {
    json!({"target_note_id": target_note_id, "confidence": confidence, "reason": reason})
}

fn applied(target_note_id: &str, confidence: f64) -> Value {
    json!({"target_note_id": target_note_id, "confidence": confidence, "status": "applied"})
}

fn link(target_note_id: &str, confidence: Value) -> Value {
    json!({"target_note_id": target_note_id, "confidence": confidence})
}

/// Returns the `target_note_id` of every suggestion, in response order.
fn suggested_ids(body: &Value) -> Vec<String> {
    body["suggestions"]
        .as_array()
        .unwrap_or_else(|| panic!("response has no suggestions array: {body}"))
        .iter()
        .map(|item| {
            item["target_note_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// Returns the `target_note_id` of every applied link, in response order.
fn applied_ids(body: &Value) -> Vec<String> {
    body["applied_links"]
        .as_array()
        .unwrap_or_else(|| panic!("response has no applied_links array: {body}"))
        .iter()
        .map(|item| {
            item["target_note_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

// ---------------------------------------------------------------------------
// POST /links/propose

#[tokio::test]
async fn propose_spec_example() {
    let (_dir, server) = start().await;
    let body = json!({
        "source_note_id": "n1",
        "candidate_notes": [
            {"note_id": "n3", "title": "Daily journal"},
            {"note_id": "n2", "title": "Architecture review"},
        ],
    });

    let response = post_ok(&server, LINKS_PROPOSE, body).await;

    assert_eq!(
        response,
        json!({"source_note_id": "n1", "suggestions": [
            suggestion("n2", 0.88, "structural_overlap"),
            suggestion("n3", 0.61, "semantic_similarity"),
        ]}),
        "wrong suggestions for the spec's example"
    );
    server.stop().await;
}

#[tokio::test]
async fn propose_scores_title_keywords() {
    let (_dir, server) = start().await;
    let cases = [
        ("My Project", 0.82, "semantic_similarity"),
        ("atlas architecture", 0.88, "shared_project_context"),
        ("ATLAS", 0.88, "shared_project_context"),
        ("Atlassian notes", 0.88, "shared_project_context"),
        ("Software Architecture", 0.88, "structural_overlap"),
        ("project architecture", 0.88, "structural_overlap"),
        ("Project Atlas", 0.88, "shared_project_context"),
        ("Projection", 0.82, "semantic_similarity"),
        ("Gardening", 0.61, "semantic_similarity"),
    ];

    for (title, confidence, reason) in cases {
        let body = json!({
            "source_note_id": "n1",
            "candidate_notes": [{"note_id": "t", "title": title}],
        });
        let response = post_ok(&server, LINKS_PROPOSE, body).await;
        assert_eq!(
            response["suggestions"],
            json!([suggestion("t", confidence, reason)]),
            "wrong suggestion for the title {title:?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn propose_sorts_stably() {
    let (_dir, server) = start().await;
    let candidates = json!([
        {"note_id": "a", "title": "misc a"},
        {"note_id": "b", "title": "Atlas b"},
        {"note_id": "c", "title": "misc c"},
        {"note_id": "d", "title": "Project d"},
        {"note_id": "e", "title": "Architecture e"},
        {"note_id": "f", "title": "misc f"},
        {"note_id": "g", "title": "project g"},
        {"note_id": "h", "title": "atlas h"},
    ]);

    let response = post_ok(
        &server,
        LINKS_PROPOSE,
        json!({"source_note_id": "n1", "candidate_notes": candidates}),
    )
    .await;

    assert_eq!(
        suggested_ids(&response),
        ["b", "e", "h", "d", "g", "a", "c", "f"],
        "suggestions are not sorted by confidence with ties in request order"
    );
    server.stop().await;
}

#[tokio::test]
async fn propose_trims_and_keeps_duplicates() {
    let (_dir, server) = start().await;
    let body = json!({
        "source_note_id": format!("{ALL_WHITESPACE}n1 "),
        "candidate_notes": [
            {"note_id": " n1 ", "title": "Self"},
            {"note_id": "n2\u{3000}", "title": "Same"},
            {"note_id": "n2", "title": "Same", "extra": [1]},
        ],
        "top_k": 1,
    });

    let response = post_ok(&server, LINKS_PROPOSE, body).await;

    assert_eq!(
        response,
        json!({"source_note_id": "n1", "suggestions": [
            suggestion("n1", 0.61, "semantic_similarity"),
            suggestion("n2", 0.61, "semantic_similarity"),
            suggestion("n2", 0.61, "semantic_similarity"),
        ]}),
        "ids are not trimmed, or the source or a duplicate was dropped"
    );
    server.stop().await;
}

#[tokio::test]
async fn propose_requires_source_note_id() {
    let (_dir, server) = start().await;
    let valid = json!({
        "source_note_id": "n1",
        "candidate_notes": [{"note_id": "n2", "title": "T"}],
    });

    for (label, value) in blank_values() {
        let body = with_field(&valid, "source_note_id", value);
        let response = server.post(LINKS_PROPOSE, body).await;
        assert_rejected(
            &format!("source_note_id {label}"),
            &response,
            "source_note_id is required",
            "missing_field",
            Some("source_note_id"),
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn propose_rejects_bad_candidate_list() {
    let (_dir, server) = start().await;
    let valid = json!({"source_note_id": "n1"});

    for (label, value) in non_list_values() {
        let body = with_field(&valid, "candidate_notes", value);
        let response = server.post(LINKS_PROPOSE, body).await;
        assert_rejected(
            &format!("candidate_notes {label}"),
            &response,
            "candidate_notes must be a non-empty list",
            "invalid_field",
            Some("candidate_notes"),
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn propose_rejects_bad_candidates() {
    let (_dir, server) = start().await;
    let good = json!({"note_id": "n2", "title": "T"});
    let mut cases: Vec<(String, Value, &str, &str)> = Vec::new();
    for value in [json!(null), json!("n2"), json!(3), json!([good])] {
        cases.push((
            format!("candidate {value}"),
            value,
            "each candidate note must be an object",
            "invalid_field",
        ));
    }
    for (label, value) in blank_values() {
        cases.push((
            format!("note_id {label}"),
            with_field(&good, "note_id", value),
            "candidate note_id is required",
            "missing_field",
        ));
    }
    for (label, value) in blank_values() {
        cases.push((
            format!("title {label}"),
            with_field(&good, "title", value),
            "candidate title is required",
            "missing_field",
        ));
    }

    for (label, candidate, message, code) in cases {
        let body = json!({"source_note_id": "n1", "candidate_notes": [candidate]});
        let response = server.post(LINKS_PROPOSE, body).await;
        assert_rejected(&label, &response, message, code, None);
    }
    server.stop().await;
}

#[tokio::test]
async fn propose_first_failing_check_wins() {
    let (_dir, server) = start().await;
    let good = json!({"note_id": "n2", "title": "T"});
    let cases = [
        (
            json!({"source_note_id": " ", "candidate_notes": []}),
            "source_note_id is required",
        ),
        (
            json!({"source_note_id": "n1", "candidate_notes": null}),
            "candidate_notes must be a non-empty list",
        ),
        (
            json!({"source_note_id": "n1", "candidate_notes": [good, 1, {"title": "T"}]}),
            "each candidate note must be an object",
        ),
        (
            json!({"source_note_id": "n1", "candidate_notes": [good, {"title": " "}, 1]}),
            "candidate note_id is required",
        ),
        (
            json!({"source_note_id": "n1", "candidate_notes": [good, {"note_id": "n3"}, 1]}),
            "candidate title is required",
        ),
    ];

    for (body, message) in cases {
        let response = server.post(LINKS_PROPOSE, body.clone()).await;
        let (status, error) = &response;
        assert_eq!(
            *status,
            StatusCode::BAD_REQUEST,
            "{body}: wrong status, body {error}"
        );
        assert_eq!(error["error"], message, "{body}: wrong error message");
    }
    server.stop().await;
}

#[tokio::test]
async fn propose_rejects_invalid_json() {
    let (_dir, server) = start().await;

    assert_invalid_json_rejected(&server, LINKS_PROPOSE).await;
    server.stop().await;
}

// ---------------------------------------------------------------------------
// POST /links/apply: successes

#[tokio::test]
async fn apply_spec_example() {
    let (_dir, server) = start().await;

    let response = post_ok(
        &server,
        LINKS_APPLY,
        json!({"source_note_id": "n1", "links": [link("n2", json!(0.88))]}),
    )
    .await;

    assert_eq!(
        response,
        json!({
            "source_note_id": "n1",
            "applied_count": 1,
            "applied_links": [applied("n2", 0.88)],
            "idempotency": not_provided(),
        }),
        "wrong response to the spec's example"
    );
    server.stop().await;
}

#[tokio::test]
async fn apply_filters_by_min_confidence() {
    let (_dir, server) = start().await;
    let body = json!({
        "source_note_id": " n1 ",
        "min_confidence": 0.7,
        "links": [
            link("low", json!(0.69)),
            link(" high ", json!(0.88)),
            link("equal", json!(0.7)),
            link("zero", json!(0)),
            link("top", json!(1)),
        ],
        "event_id": null,
    });

    let response = post_ok(&server, LINKS_APPLY, body).await;

    assert_eq!(
        response,
        json!({
            "source_note_id": "n1",
            "applied_count": 3,
            "applied_links": [applied("high", 0.88), applied("equal", 0.7), applied("top", 1.0)],
            "idempotency": not_provided(),
        }),
        "links below the threshold were kept, or kept links changed order"
    );
    server.stop().await;
}

#[tokio::test]
async fn apply_keeps_link_at_threshold() {
    let (_dir, server) = start().await;
    let thresholds = [0.0, 0.61, 0.7, 0.82, 0.88, 1.0];

    for threshold in thresholds {
        let body = json!({
            "source_note_id": "n1",
            "min_confidence": threshold,
            "links": [link("equal", json!(threshold))],
        });
        let response = post_ok(&server, LINKS_APPLY, body).await;
        assert_eq!(
            applied_ids(&response),
            ["equal"],
            "a link whose confidence equals min_confidence {threshold} was skipped"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn apply_may_apply_nothing() {
    let (_dir, server) = start().await;
    let body = json!({
        "source_note_id": "n1",
        "min_confidence": 1.0,
        "links": [link("n2", json!(0.99)), link("n3", json!(0.0))],
    });

    let response = post_ok(&server, LINKS_APPLY, body).await;

    assert_eq!(
        response,
        json!({
            "source_note_id": "n1",
            "applied_count": 0,
            "applied_links": [],
            "idempotency": not_provided(),
        }),
        "links below min_confidence 1.0 were applied"
    );
    server.stop().await;
}

#[tokio::test]
async fn apply_default_min_confidence_keeps_all() {
    let (_dir, server) = start().await;
    let body = json!({
        "source_note_id": "n1",
        "links": [link("n2", json!(0.0)), link("n3", json!(0.5)), link("n2", json!(1.0))],
        "dry_run": true,
    });

    let response = post_ok(&server, LINKS_APPLY, body).await;

    assert_eq!(
        applied_ids(&response),
        ["n2", "n3", "n2"],
        "the default min_confidence 0.0 skipped a link or dropped a duplicate"
    );
    assert_eq!(response["applied_count"], 3, "wrong applied_count");
    server.stop().await;
}

#[tokio::test]
async fn apply_writes_confidence_as_float() {
    let (_dir, server) = start().await;
    let body = json!({
        "source_note_id": "n1",
        "min_confidence": 0,
        "links": [link("zero", json!(0)), link("one", json!(1))],
    });

    let (status, text) = post_text(&server, LINKS_APPLY, &body).await;

    assert_eq!(status, StatusCode::OK, "integer confidences failed: {text}");
    assert!(
        text.contains(
            "\"applied_links\":[{\"target_note_id\":\"zero\",\"confidence\":0.0,\"status\":\"applied\"},\
             {\"target_note_id\":\"one\",\"confidence\":1.0,\"status\":\"applied\"}]"
        ),
        "integer confidences are not written as floats: {text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn apply_stores_nothing_visible() {
    let (_dir, server) = start().await;
    let (_, metrics_before) = server.get_text("/metrics").await;
    let body = json!({"source_note_id": "n1", "links": [link("n2", json!(0.9))]});

    let first = post_ok(&server, LINKS_APPLY, body.clone()).await;
    let second = post_ok(&server, LINKS_APPLY, body).await;
    let (_, metrics_after) = server.get_text("/metrics").await;

    assert_eq!(
        first, second,
        "two applies without an event id answered differently"
    );
    assert_eq!(
        second["idempotency"],
        not_provided(),
        "a repeated apply without an event id is not not_provided"
    );
    assert_eq!(
        metrics_after, metrics_before,
        "applied links changed the metrics"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// POST /links/apply: rejections

#[tokio::test]
async fn apply_requires_source_note_id() {
    let (_dir, server) = start().await;
    let valid = json!({"source_note_id": "n1", "links": [link("n2", json!(0.9))]});

    for (label, value) in blank_values() {
        let body = with_field(&valid, "source_note_id", value);
        let response = server.post(LINKS_APPLY, body).await;
        assert_rejected(
            &format!("source_note_id {label}"),
            &response,
            "source_note_id is required",
            "missing_field",
            Some("source_note_id"),
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn apply_rejects_invalid_event_id() {
    let (_dir, server) = start().await;

    for event_id in invalid_event_ids() {
        let body = json!({
            "source_note_id": "n1",
            "event_id": event_id,
            "links": [link("n2", json!(0.9))],
        });
        let response = server.post(LINKS_APPLY, body).await;
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
async fn apply_rejects_bad_links_list() {
    let (_dir, server) = start().await;
    let valid = json!({"source_note_id": "n1"});

    for (label, value) in non_list_values() {
        let body = with_field(&valid, "links", value);
        let response = server.post(LINKS_APPLY, body).await;
        assert_rejected(
            &format!("links {label}"),
            &response,
            "links must be a non-empty list",
            "invalid_field",
            Some("links"),
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn apply_rejects_bad_min_confidence() {
    let (_dir, server) = start().await;
    let cases = [
        (json!(null), "min_confidence must be a number"),
        (json!(true), "min_confidence must be a number"),
        (json!(false), "min_confidence must be a number"),
        (json!("0.5"), "min_confidence must be a number"),
        (json!([0.5]), "min_confidence must be a number"),
        (json!({}), "min_confidence must be a number"),
        (json!(-0.1), "min_confidence must be between 0.0 and 1.0"),
        (json!(-1), "min_confidence must be between 0.0 and 1.0"),
        (json!(1.01), "min_confidence must be between 0.0 and 1.0"),
        (json!(5), "min_confidence must be between 0.0 and 1.0"),
        (json!(1e308), "min_confidence must be between 0.0 and 1.0"),
    ];

    for (value, message) in cases {
        let body = json!({
            "source_note_id": "n1",
            "links": [link("n2", json!(0.9))],
            "min_confidence": value,
        });
        let response = server.post(LINKS_APPLY, body).await;
        assert_rejected(
            &format!("min_confidence {value}"),
            &response,
            message,
            "invalid_field",
            Some("min_confidence"),
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn apply_rejects_bad_link_confidence() {
    let (_dir, server) = start().await;
    let cases = [
        (None, "confidence must be a number"),
        (Some(json!(null)), "confidence must be a number"),
        (Some(json!(true)), "confidence must be a number"),
        (Some(json!(false)), "confidence must be a number"),
        (Some(json!("0.9")), "confidence must be a number"),
        (Some(json!([0.9])), "confidence must be a number"),
        (Some(json!(-0.5)), "confidence must be between 0.0 and 1.0"),
        (Some(json!(1.5)), "confidence must be between 0.0 and 1.0"),
        (Some(json!(5)), "confidence must be between 0.0 and 1.0"),
        (
            Some(json!(-1e308)),
            "confidence must be between 0.0 and 1.0",
        ),
    ];

    for (value, message) in cases {
        let label = value
            .as_ref()
            .map_or_else(|| "absent".to_owned(), Value::to_string);
        let bad_link = with_field(&json!({"target_note_id": "n4"}), "confidence", value);
        let body = json!({
            "source_note_id": "n1",
            "links": [link("n2", json!(0.9)), link("n3", json!(0.1)), bad_link],
            "min_confidence": 0.5,
        });
        let response = server.post(LINKS_APPLY, body).await;
        assert_rejected(
            &format!("third link's confidence {label}"),
            &response,
            message,
            "invalid_field",
            Some("links[2].confidence"),
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn apply_rejects_non_finite_json() {
    let (_dir, server) = start().await;
    let bodies = [
        r#"{"source_note_id": "n1", "links": [{"target_note_id": "n2", "confidence": NaN}]}"#,
        r#"{"source_note_id": "n1", "links": [{"target_note_id": "n2", "confidence": Infinity}]}"#,
        r#"{"source_note_id": "n1", "links": [{"target_note_id": "n2", "confidence": 1e400}]}"#,
        r#"{"source_note_id": "n1", "links": [{"target_note_id": "n2", "confidence": 0.5}], "min_confidence": NaN}"#,
        r#"{"source_note_id": "n1", "links": [{"target_note_id": "n2", "confidence": 0.5}], "min_confidence": -Infinity}"#,
    ];

    for raw in bodies {
        let response = server
            .post_raw(LINKS_APPLY, Some("application/json"), raw)
            .await;
        assert_rejected(raw, &response, "invalid json", "invalid_json", None);
    }
    server.stop().await;
}

#[tokio::test]
async fn apply_rejects_bad_links() {
    let (_dir, server) = start().await;
    let good = link("n2", json!(0.9));
    let mut cases: Vec<(String, Value, &str, &str)> = Vec::new();
    for value in [json!(null), json!("n2"), json!(0.9), json!([good])] {
        cases.push((
            format!("link {value}"),
            value,
            "each link must be an object",
            "invalid_field",
        ));
    }
    for (label, value) in blank_values() {
        cases.push((
            format!("target_note_id {label}"),
            with_field(&good, "target_note_id", value),
            "target_note_id is required",
            "missing_field",
        ));
    }

    for (label, bad_link, message, code) in cases {
        let body = json!({"source_note_id": "n1", "links": [good, bad_link]});
        let response = server.post(LINKS_APPLY, body).await;
        assert_rejected(
            &format!("second link: {label}"),
            &response,
            message,
            code,
            None,
        );
    }
    server.stop().await;
}

/// Starts from a body where every field is invalid and fixes one field at a
/// time, in v1's validation order: each step must report the next check.
#[tokio::test]
async fn apply_first_failing_check_wins() {
    let (_dir, server) = start().await;
    let mut body = json!({
        "source_note_id": "",
        "event_id": "  ",
        "links": "garbage",
        "min_confidence": "high",
    });
    let steps = [
        ("source_note_id", json!("n1"), "source_note_id is required"),
        (
            "event_id",
            json!(null),
            "event_id must be a non-empty string",
        ),
        (
            "links",
            json!([link("n2", json!(0.9)), 7, {"confidence": "x"}, link("n3", json!(2))]),
            "links must be a non-empty list",
        ),
        (
            "min_confidence",
            json!(0.5),
            "min_confidence must be a number",
        ),
    ];
    for (field, fix, message) in steps {
        let response = server.post(LINKS_APPLY, body.clone()).await;
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

    // (index of the link fixed next, its fix, the error before the fix)
    let per_link = [
        (1, link("n5", json!(0.3)), "each link must be an object"),
        (
            2,
            json!({"target_note_id": "n6", "confidence": "x"}),
            "target_note_id is required",
        ),
        (2, link("n6", json!(0.6)), "confidence must be a number"),
        (
            3,
            link("n3", json!(0.5)),
            "confidence must be between 0.0 and 1.0",
        ),
    ];
    for (index, fix, message) in per_link {
        let response = server.post(LINKS_APPLY, body.clone()).await;
        let (status, error) = &response;
        assert_eq!(
            *status,
            StatusCode::BAD_REQUEST,
            "before fixing link {index}: wrong status, body {error}"
        );
        assert_eq!(
            error["error"], message,
            "before fixing link {index}: wrong error message"
        );
        body["links"][index] = fix;
    }

    let response = post_ok(&server, LINKS_APPLY, body).await;
    assert_eq!(
        applied_ids(&response),
        ["n2", "n6", "n3"],
        "the corrected body applied the wrong links"
    );
    server.stop().await;
}

#[tokio::test]
async fn apply_rejects_invalid_json() {
    let (_dir, server) = start().await;

    assert_invalid_json_rejected(&server, LINKS_APPLY).await;
    server.stop().await;
}

#[tokio::test]
async fn links_wrong_method_is_405() {
    let (_dir, server) = start().await;

    assert_method_not_allowed(&server, Method::GET, LINKS_PROPOSE).await;
    assert_method_not_allowed(&server, Method::PATCH, LINKS_PROPOSE).await;
    assert_method_not_allowed(&server, Method::GET, LINKS_APPLY).await;
    assert_method_not_allowed(&server, Method::DELETE, LINKS_APPLY).await;
    server.stop().await;
}
