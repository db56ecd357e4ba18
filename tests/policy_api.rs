//! Tests the policy routes over HTTP: the sensitivity rules, the sensitivity
//! check with the content, path, tag and front matter rules, and the routing
//! and budget settings, with exact v1 values and error messages.

mod common;

use common::requests::{
    ROUTING, SENSITIVITY, SENSITIVITY_CHECK, assert_invalid_json_rejected,
    assert_method_not_allowed, assert_rejected, post_ok,
};
use common::{TestDir, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn start() -> (TestDir, TestServer) {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    (dir, server)
}

/// Checks `body` and returns the response.
async fn check(server: &TestServer, body: Value) -> Value {
    post_ok(server, SENSITIVITY_CHECK, body).await
}

fn allowed() -> Value {
    json!({"allowed": true, "reasons": []})
}

fn blocked_by(reason: &str) -> Value {
    json!({"allowed": false, "reasons": [reason]})
}

// ---------------------------------------------------------------------------
// GET /policy/sensitivity and GET /policy/routing

#[tokio::test]
async fn sensitivity_policy_lists_rules() {
    let (_dir, server) = start().await;

    let (status, body) = server.get(SENSITIVITY).await;

    assert_eq!(status, StatusCode::OK, "GET {SENSITIVITY} failed: {body}");
    assert_eq!(
        body,
        json!({
            "protected_tags": ["private", "secret", "sensitive"],
            "protected_path_prefixes": ["private/", "secrets/", "finance/"],
            "secret_pattern_count": 2,
        }),
        "wrong sensitivity policy"
    );
    server.stop().await;
}

#[tokio::test]
async fn routing_policy_is_v1_constant() {
    let (_dir, server) = start().await;

    let (status, body) = server.get(ROUTING).await;

    assert_eq!(status, StatusCode::OK, "GET {ROUTING} failed: {body}");
    assert_eq!(
        body,
        json!({
            "routing": {
                "local_provider": "local",
                "fallback_provider": "openai",
                "local_confidence_threshold": 0.7,
                "fallback_reasons": ["timeout", "grounding_failure", "low_confidence"],
                "fallback_preview": {
                    "timeout": "openai",
                    "grounding_failure": "openai",
                    "low_confidence": "openai",
                },
            },
            "budget": {
                "monthly_spend": 0.0,
                "monthly_cap": 30.0,
                "status": "normal",
                "cloud_allowed": true,
                "local_only_mode": false,
            },
        }),
        "wrong routing policy"
    );
    server.stop().await;
}

#[tokio::test]
async fn routing_writes_budget_as_floats() {
    let (_dir, server) = start().await;

    let (status, text) = server.get_text(ROUTING).await;

    assert_eq!(status, StatusCode::OK, "GET {ROUTING} failed: {text}");
    assert!(
        text.contains("\"monthly_spend\":0.0"),
        "monthly_spend is not written as the float 0.0: {text}"
    );
    assert!(
        text.contains("\"monthly_cap\":30.0"),
        "monthly_cap is not written as the float 30.0: {text}"
    );
    assert!(
        text.contains("\"local_confidence_threshold\":0.7"),
        "the threshold is not written as 0.7: {text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn policy_gets_ignore_body_and_query() {
    let (_dir, server) = start().await;
    let (_, plain_sensitivity) = server.get(SENSITIVITY).await;
    let (_, plain_routing) = server.get(ROUTING).await;

    for (path, plain) in [(SENSITIVITY, plain_sensitivity), (ROUTING, plain_routing)] {
        let response = server
            .client
            .get(server.url(&format!("{path}?status=hard_stop&x")))
            .header("content-type", "application/json")
            .body("{\"monthly_spend\": 30}")
            .send()
            .await
            .expect("send GET");
        let (status, body) = common::read_json(response).await;

        assert_eq!(status, StatusCode::OK, "GET {path} with a body failed");
        assert_eq!(body, plain, "a query string or body changed GET {path}");
    }
    server.stop().await;
}

/// NOTE: success responses declare `application/json; charset=utf-8`, while
/// v1 sent no charset parameter, so only the media type is compared here.
#[tokio::test]
async fn policy_responses_declare_json() {
    let (_dir, server) = start().await;
    let requests = [
        server.client.get(server.url(SENSITIVITY)),
        server.client.get(server.url(ROUTING)),
        server
            .client
            .post(server.url(SENSITIVITY_CHECK))
            .header("content-type", "application/json")
            .body("{}"),
    ];

    for request in requests {
        let response = request.send().await.expect("send request");
        let url = response.url().to_string();
        let declared = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let media_type = declared.split(';').next().unwrap_or_default().trim();
        assert_eq!(
            media_type, "application/json",
            "{url} declares {declared:?} instead of JSON"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn policy_wrong_method_is_405() {
    let (_dir, server) = start().await;

    assert_method_not_allowed(&server, Method::POST, SENSITIVITY).await;
    assert_method_not_allowed(&server, Method::DELETE, SENSITIVITY).await;
    assert_method_not_allowed(&server, Method::GET, SENSITIVITY_CHECK).await;
    assert_method_not_allowed(&server, Method::PUT, SENSITIVITY_CHECK).await;
    assert_method_not_allowed(&server, Method::POST, ROUTING).await;
    assert_method_not_allowed(&server, Method::PATCH, ROUTING).await;
    server.stop().await;
}

// ---------------------------------------------------------------------------
// POST /policy/sensitivity/check: successes

#[tokio::test]
async fn check_allows_empty_note() {
    let (_dir, server) = start().await;

    let empty = check(&server, json!({})).await;
    let explicit = check(
        &server,
        json!({"frontmatter": {}, "tags": [], "path": "", "content": ""}),
    )
    .await;

    assert_eq!(empty, allowed(), "an empty body is not allowed");
    assert_eq!(explicit, allowed(), "explicit empty fields are not allowed");
    server.stop().await;
}

#[tokio::test]
async fn check_ignores_unknown_fields() {
    let (_dir, server) = start().await;

    let body = check(
        &server,
        json!({"provider": "openai", "note_id": "n1", "Sensitive": true, "title": "secret"}),
    )
    .await;

    assert_eq!(body, allowed(), "an unknown field changed the verdict");
    server.stop().await;
}

#[tokio::test]
async fn check_content_examples() {
    let (_dir, server) = start().await;
    let cases = [
        ("OPENAI_API_KEY=sk-test-1234", true),
        ("x OPENAI_API_KEY=1", true),
        ("OPENAI_API_KEY", true),
        ("MY_OPENAI_API_KEY", false),
        ("openai_api_key", false),
        ("OPENAI_API_KEYS", false),
        ("sk-abcdefg", false),
        ("sk-abcdefgh", true),
        ("sk-abcdefgh-", true),
        ("ask-abcdefgh12", false),
        ("sk-abcdefghé", false),
        ("-sk--------a", true),
        ("sk--------", false),
        ("token: sk-ABC_def-123\nnext line", true),
        ("plain notes without secrets", false),
    ];

    for (content, blocked) in cases {
        let body = check(&server, json!({"content": content})).await;
        let expected = if blocked {
            blocked_by("blocked_by_regex_pattern")
        } else {
            allowed()
        };
        assert_eq!(body, expected, "wrong verdict for content {content:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn check_path_examples() {
    let (_dir, server) = start().await;
    let cases = [
        ("Private/Finances/budget.md", true),
        ("private/x.md", true),
        ("PRIVATE/x", true),
        ("Finance\\x.md", true),
        ("finance/2024/taxes.md", true),
        ("Secrets/x", true),
        ("secrets\\keys\\a.md", true),
        ("  private/x", true),
        ("\u{3000}\u{1c}private/x\t", true),
        ("private", false),
        ("/private/x", false),
        ("./private/x", false),
        ("notes/private/x", false),
        ("finances/x", false),
        ("secret/x", false),
        ("", false),
    ];

    for (path, blocked) in cases {
        let body = check(&server, json!({"path": path})).await;
        let expected = if blocked {
            blocked_by("blocked_by_path_rule")
        } else {
            allowed()
        };
        assert_eq!(body, expected, "wrong verdict for path {path:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn check_tag_examples() {
    let (_dir, server) = start().await;
    let cases = [
        (json!(["private"]), true),
        (json!(["PRIVATE"]), true),
        (json!(["Secret"]), true),
        (json!(["sensitive"]), true),
        (json!(["work", "secret", "ideas"]), true),
        (json!(["private", "secret", "sensitive"]), true),
        (json!(["#private"]), false),
        (json!([" secret"]), false),
        (json!(["secret "]), false),
        (json!(["secrets"]), false),
        (json!(["confidential"]), false),
        (json!([""]), false),
        (json!([]), false),
    ];

    for (tags, blocked) in cases {
        let body = check(&server, json!({"tags": tags})).await;
        let expected = if blocked {
            blocked_by("blocked_by_tag_rule")
        } else {
            allowed()
        };
        assert_eq!(body, expected, "wrong verdict for tags {tags}");
    }
    server.stop().await;
}

#[tokio::test]
async fn check_frontmatter_truthiness() {
    let (_dir, server) = start().await;
    let values = [
        (json!(true), true),
        (json!(false), false),
        (json!(null), false),
        (json!(1), true),
        (json!(-1), true),
        (json!(0.5), true),
        (json!(0), false),
        (json!(0.0), false),
        (json!(-0.0), false),
        (json!("false"), true),
        (json!("0"), true),
        (json!(" "), true),
        (json!(""), false),
        (json!([0]), true),
        (json!([]), false),
        (json!({"a": 1}), true),
        (json!({}), false),
    ];

    for key in ["sensitive", "private"] {
        for (value, blocked) in &values {
            let body = check(&server, json!({"frontmatter": {key: value}})).await;
            let expected = if *blocked {
                blocked_by("blocked_by_frontmatter_flag")
            } else {
                allowed()
            };
            assert_eq!(
                body, expected,
                "wrong verdict for frontmatter {key}: {value}"
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn check_frontmatter_keys_exact() {
    let (_dir, server) = start().await;
    let frontmatters = [
        json!({"Sensitive": true}),
        json!({"PRIVATE": true}),
        json!({"sensitive ": true}),
        json!({"secret": true}),
        json!({"tags": ["private"]}),
        json!({"nested": {"sensitive": true}}),
    ];

    for frontmatter in frontmatters {
        let body = check(&server, json!({"frontmatter": frontmatter})).await;
        assert_eq!(
            body,
            allowed(),
            "frontmatter {frontmatter} blocked the note"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn check_reports_reasons_in_rule_order() {
    let (_dir, server) = start().await;
    let every_rule = json!({
        "content": "OPENAI_API_KEY and sk-abcdefgh12",
        "path": "finance/report.md",
        "tags": ["secret", "private"],
        "frontmatter": {"private": "yes", "sensitive": true},
    });

    let body = check(&server, every_rule).await;

    assert_eq!(
        body,
        json!({
            "allowed": false,
            "reasons": [
                "blocked_by_frontmatter_flag",
                "blocked_by_tag_rule",
                "blocked_by_path_rule",
                "blocked_by_regex_pattern",
            ],
        }),
        "every rule fires once, in rule order"
    );

    let two_rules = check(
        &server,
        json!({"content": "sk-abcdefgh12", "tags": ["Private"]}),
    )
    .await;
    assert_eq!(
        two_rules,
        json!({"allowed": false, "reasons": ["blocked_by_tag_rule", "blocked_by_regex_pattern"]}),
        "the tag and content rules fire in rule order"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// POST /policy/sensitivity/check: rejections

#[tokio::test]
async fn check_rejects_invalid_fields() {
    let (_dir, server) = start().await;
    let cases = [
        ("frontmatter", json!(null), "frontmatter must be an object"),
        ("frontmatter", json!([]), "frontmatter must be an object"),
        (
            "frontmatter",
            json!("sensitive"),
            "frontmatter must be an object",
        ),
        ("frontmatter", json!(true), "frontmatter must be an object"),
        ("frontmatter", json!(1), "frontmatter must be an object"),
        ("tags", json!(null), "tags must be a list of strings"),
        ("tags", json!("private"), "tags must be a list of strings"),
        (
            "tags",
            json!({"a": "private"}),
            "tags must be a list of strings",
        ),
        ("tags", json!([1]), "tags must be a list of strings"),
        ("tags", json!(["a", null]), "tags must be a list of strings"),
        (
            "tags",
            json!([["private"]]),
            "tags must be a list of strings",
        ),
        ("path", json!(null), "path must be a string"),
        ("path", json!(1), "path must be a string"),
        ("path", json!(["private/x"]), "path must be a string"),
        ("path", json!(false), "path must be a string"),
        ("content", json!(null), "content must be a string"),
        ("content", json!(0), "content must be a string"),
        ("content", json!({"text": "x"}), "content must be a string"),
        ("content", json!(true), "content must be a string"),
    ];

    for (field, value, message) in cases {
        let response = server
            .post(SENSITIVITY_CHECK, json!({ field: value }))
            .await;
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

#[tokio::test]
async fn check_first_failing_field_wins() {
    let (_dir, server) = start().await;
    let cases = [
        (
            json!({"content": 1, "path": 1, "tags": 1, "frontmatter": 1}),
            "frontmatter must be an object",
        ),
        (
            json!({"content": 1, "path": 1, "tags": 1, "frontmatter": {"sensitive": true}}),
            "tags must be a list of strings",
        ),
        (
            json!({"content": 1, "path": 1, "tags": ["secret"]}),
            "path must be a string",
        ),
        (
            json!({"content": null, "path": "private/x"}),
            "content must be a string",
        ),
    ];

    for (body, message) in cases {
        let response = server.post(SENSITIVITY_CHECK, body.clone()).await;
        assert_rejected(&body.to_string(), &response, message, "invalid_field", None);
    }
    server.stop().await;
}

#[tokio::test]
async fn check_rejects_invalid_json() {
    let (_dir, server) = start().await;

    assert_invalid_json_rejected(&server, SENSITIVITY_CHECK).await;
    server.stop().await;
}
