//! The committed spec must match what the code generates, and the daemon must
//! serve the same spec.

mod common;

use common::{TestDir, TestServer, requests::assert_method_not_allowed};
use mind_lite::{Database, http::spec_json};
use reqwest::{Method, StatusCode};

const REGENERATE: &str = "cargo run --quiet -- openapi > openapi/openapi.json";

#[tokio::test]
async fn committed_spec_matches_generated() {
    let db = Database::connect("sqlite::memory:")
        .await
        .expect("open database");
    let generated = format!("{}\n", spec_json(&db));
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap_or_else(|error| {
                panic!("read openapi/openapi.json ({error}); run `{REGENERATE}`")
            });
    assert!(
        committed == generated,
        "openapi/openapi.json is stale; run `{REGENERATE}` and commit the result"
    );
}

#[tokio::test]
async fn served_spec_lists_every_operation_with_errors() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;

    let (status, spec) = server.get("/openapi.json").await;

    assert_eq!(status, StatusCode::OK);
    let paths = spec["paths"].as_object().expect("paths object");
    let expected = [
        ("/health", "get"),
        ("/health/ready", "get"),
        ("/metrics", "get"),
        ("/onboarding/analyze-folder", "post"),
        ("/runs", "get"),
        ("/runs/{run_id}", "get"),
        ("/runs/{run_id}/proposals", "get"),
        ("/runs/{run_id}/approve", "post"),
        ("/runs/{run_id}/apply", "post"),
        ("/runs/{run_id}/rollback", "post"),
        ("/policy/sensitivity", "get"),
        ("/policy/sensitivity/check", "post"),
        ("/policy/routing", "get"),
        ("/ask", "post"),
        ("/organize/classify", "post"),
        ("/organize/propose-structure", "post"),
        ("/links/propose", "post"),
        ("/links/apply", "post"),
        ("/publish/prepare", "post"),
        ("/publish/score", "post"),
        ("/publish/mark-for-gom", "post"),
        ("/publish/gom-queue", "get"),
        ("/publish/export-for-gom", "post"),
        ("/publish/confirm-gom", "post"),
        ("/publish/published", "get"),
    ];
    assert_eq!(paths.len(), 25, "paths: {:?}", paths.keys());
    assert_eq!(paths.len(), expected.len(), "paths: {:?}", paths.keys());
    for (path, method) in expected {
        let operation = &spec["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} missing from spec");
        assert!(
            operation["summary"].is_string(),
            "{method} {path} has no summary"
        );
        assert!(
            operation["description"].is_string(),
            "{method} {path} has no description"
        );
        if path.starts_with("/runs/") {
            assert!(
                operation["responses"]["404"]["description"].is_string(),
                "{path} lacks a described 404"
            );
        }
        if method == "post" {
            for status in ["200", "400", "413", "415", "500", "503"] {
                let response = &operation["responses"][status];
                assert!(
                    response["description"].is_string(),
                    "{path} lacks a described {status}"
                );
            }
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn every_schema_field_is_described() {
    let db = Database::connect("sqlite::memory:")
        .await
        .expect("open database");
    let spec: serde_json::Value = serde_json::from_str(&spec_json(&db)).expect("spec is JSON");

    let schemas = spec["components"]["schemas"]
        .as_object()
        .expect("schemas object");
    assert!(!schemas.is_empty(), "the spec defines no schemas");
    for (schema_name, schema) in schemas {
        let Some(properties) = schema["properties"].as_object() else {
            continue;
        };
        for (field, property) in properties {
            let described = property["description"]
                .as_str()
                .is_some_and(|text| !text.is_empty());
            assert!(described, "{schema_name}.{field} has no description");
        }
    }
}

#[tokio::test]
async fn swagger_ui_is_served() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;

    let (status, page) = server.get_text("/docs").await;

    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("swagger"),
        "page does not look like Swagger UI"
    );
    server.stop().await;
}

#[tokio::test]
async fn spec_and_docs_take_only_get() {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;

    for path in ["/openapi.json", "/docs"] {
        assert_method_not_allowed(&server, Method::POST, path).await;
        assert_method_not_allowed(&server, Method::DELETE, path).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn nullable_fields_are_marked() {
    let db = Database::connect("sqlite::memory:")
        .await
        .expect("open database");
    let spec: serde_json::Value = serde_json::from_str(&spec_json(&db)).expect("spec is JSON");
    let schemas = &spec["components"]["schemas"];

    // Fields that the daemon sends as `null`, or accepts as `null` for "none".
    let nullable = [
        ("Idempotency", "event_id"),
        ("ProviderTrace", "fallback_provider"),
        ("AskRequest", "event_id"),
        ("ApplyLinksRequest", "event_id"),
        ("MarkRequest", "event_id"),
        ("ChangeTypesRequest", "change_types"),
        ("RollbackRequest", "snapshot_id"),
    ];
    for (schema, field) in nullable {
        let property = &schemas[schema]["properties"][field];
        assert_eq!(
            property["nullable"], true,
            "{schema}.{field} must be nullable: {property}"
        );
    }
}
