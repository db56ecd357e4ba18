//! Tests the HTTP rules that all endpoints share: routing and methods,
//! content type, JSON parsing, body size limits and the Host header.

mod common;

use std::time::Duration;

use common::publish::{
    CONFIRM, EXPORT, ExpectedError, MARK, PUBLISHED, QUEUE, assert_error, assert_nothing_stored,
    publish_state, queue, queue_item, start,
};
use common::{TestDir, TestServer, assert_error_shape, read_json};
use mind_lite::Settings;
use reqwest::{Method, RequestBuilder, StatusCode, header};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

// Helpers

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

// Routing and methods

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
        "/runs/",
        "/runs/run_0001/",
        "/runs/run_0001/proposals/",
        "/runs/run_0001/approve/extra",
        "/runs/run_0001/unknown-action",
        "/onboarding/analyze-folder/",
        "/capture",
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

// Content type

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

// JSON parsing

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

// Body size

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

// Host header

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

// Duplicate and absolute-form headers

/// Sends raw request bytes and returns the status line and body text.
async fn raw_status_and_body(server: &TestServer, request: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let address = server.base_url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received))
        .await
        .expect("response within 10 s")
        .expect("read response");
    let text = String::from_utf8_lossy(&received).into_owned();
    let status_line = text.lines().next().unwrap_or_default().to_owned();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status_line, body)
}

#[tokio::test]
async fn two_host_headers_are_rejected() {
    let (_dir, server) = start().await;

    let (status_line, body) = raw_status_and_body(
        &server,
        "GET /health HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    .await;

    assert!(status_line.contains(" 400 "), "status line: {status_line}");
    assert!(body.contains("\"code\":\"bad_request\""), "body: {body}");
    server.stop().await;
}

#[tokio::test]
async fn absolute_target_with_foreign_host_is_rejected() {
    let (_dir, server) = start().await;

    let (status_line, body) = raw_status_and_body(
        &server,
        "GET http://evil.example/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;

    assert!(status_line.contains(" 403 "), "status line: {status_line}");
    assert!(body.contains("\"code\":\"forbidden_host\""), "body: {body}");
    server.stop().await;
}

#[tokio::test]
async fn two_content_types_are_rejected() {
    let (_dir, server) = start().await;
    let body = r#"{"draft_id": "d1", "content": "c", "target": "gom"}"#;
    let request = format!(
        "POST /publish/prepare HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );

    let (status_line, response) = raw_status_and_body(&server, &request).await;

    assert!(status_line.contains(" 415 "), "status line: {status_line}");
    assert!(
        response.contains("more than one Content-Type header"),
        "body: {response}"
    );
    server.stop().await;
}
