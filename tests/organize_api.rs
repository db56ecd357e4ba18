//! Tests `POST /organize/classify` and `POST /organize/propose-structure` over
//! HTTP: PARA categories and folder proposals from title keywords, with exact
//! v1 values and error messages in v1's order.

mod common;

use common::requests::{
    ALL_WHITESPACE, CLASSIFY, PROPOSE_STRUCTURE, assert_invalid_json_rejected,
    assert_method_not_allowed, assert_rejected, blank_values, non_list_values, post_ok, with_field,
};
use common::{TestDir, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

async fn start() -> (TestDir, TestServer) {
    let dir = TestDir::new();
    let server = TestServer::start(&dir).await;
    (dir, server)
}

/// Returns one classification result.
fn classified(note_id: &str, para: &str, confidence: f64, action_mode: &str) -> Value {
    json!({
        "note_id": note_id,
        "primary_para": para,
        "secondary_para": [],
        "confidence": confidence,
        "action_mode": action_mode,
    })
}

/// Returns one folder proposal.
fn proposal(note_id: &str, current_folder: &str, proposed_folder: &str) -> Value {
    json!({
        "note_id": note_id,
        "current_folder": current_folder,
        "proposed_folder": proposed_folder,
        "reason": "folder_standardization",
        "action_mode": "manual",
    })
}

// ---------------------------------------------------------------------------
// POST /organize/classify

#[tokio::test]
async fn classify_spec_examples() {
    let (_dir, server) = start().await;
    let notes = json!([
        {"note_id": "n1", "title": "Project Atlas Weekly Plan"},
        {"note_id": "n2", "title": "Reference Notes: Zettelkasten"},
        {"note_id": "n3", "title": "Hectarea"},
        {"note_id": "n4", "title": "archive area project"},
        {"note_id": "n5", "title": "Old ARCHIVE of 2019"},
        {"note_id": "n6", "title": "Focus Area: Health"},
        {"note_id": "n7", "title": "Projection methods"},
        {"note_id": "n8", "title": "area archive"},
    ]);

    let body = post_ok(&server, CLASSIFY, json!({ "notes": notes })).await;

    assert_eq!(
        body,
        json!({"results": [
            classified("n1", "project", 0.86, "auto"),
            classified("n2", "resource", 0.79, "manual"),
            classified("n3", "area", 0.83, "auto"),
            classified("n4", "project", 0.86, "auto"),
            classified("n5", "archive", 0.81, "auto"),
            classified("n6", "area", 0.83, "auto"),
            classified("n7", "project", 0.86, "auto"),
            classified("n8", "area", 0.83, "auto"),
        ]}),
        "wrong classifications"
    );
    server.stop().await;
}

#[tokio::test]
async fn classify_trims_and_keeps_duplicates() {
    let (_dir, server) = start().await;
    let padded = format!("{ALL_WHITESPACE}n1{ALL_WHITESPACE}");
    let notes = json!([
        {"note_id": padded, "title": "Misc", "folder": 5, "extra": null},
        {"note_id": "n1", "title": "  Project  "},
        {"note_id": "n1", "title": "Misc"},
    ]);

    let body = post_ok(&server, CLASSIFY, json!({"notes": notes, "mode": "fast"})).await;

    assert_eq!(
        body,
        json!({"results": [
            classified("n1", "resource", 0.79, "manual"),
            classified("n1", "project", 0.86, "auto"),
            classified("n1", "resource", 0.79, "manual"),
        ]}),
        "note ids are not trimmed, or duplicates were merged"
    );
    server.stop().await;
}

#[tokio::test]
async fn classify_rejects_bad_notes_list() {
    let (_dir, server) = start().await;

    for (label, value) in non_list_values() {
        let body = with_field(&json!({}), "notes", value);
        let response = server.post(CLASSIFY, body).await;
        assert_rejected(
            &format!("notes {label}"),
            &response,
            "notes must be a non-empty list",
            "invalid_field",
            Some("notes"),
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn classify_rejects_bad_notes() {
    let (_dir, server) = start().await;
    let good = json!({"note_id": "n1", "title": "Project"});
    let mut cases: Vec<(String, Value, &str, &str)> = Vec::new();
    for value in [json!(null), json!("n1"), json!(1), json!([]), json!(true)] {
        cases.push((
            format!("note {value}"),
            value,
            "each note must be an object",
            "invalid_field",
        ));
    }
    for (label, value) in blank_values() {
        cases.push((
            format!("note_id {label}"),
            with_field(&good, "note_id", value),
            "note_id is required",
            "missing_field",
        ));
    }
    for (label, value) in blank_values() {
        cases.push((
            format!("title {label}"),
            with_field(&good, "title", value),
            "title is required",
            "missing_field",
        ));
    }

    for (label, note, message, code) in cases {
        let response = server.post(CLASSIFY, json!({"notes": [note]})).await;
        assert_rejected(&label, &response, message, code, None);
    }
    server.stop().await;
}

#[tokio::test]
async fn classify_first_bad_note_wins() {
    let (_dir, server) = start().await;
    let good = json!({"note_id": "n1", "title": "Project"});
    let cases = [
        (
            json!([good, {"title": "T"}, 5]),
            "note_id is required",
            "missing_field",
        ),
        (
            json!([good, 5, {"title": "T"}]),
            "each note must be an object",
            "invalid_field",
        ),
        (
            json!([good, good, {"note_id": "n3"}, {"title": "T"}]),
            "title is required",
            "missing_field",
        ),
        (
            json!([{"note_id": " ", "title": " "}]),
            "note_id is required",
            "missing_field",
        ),
    ];

    for (notes, message, code) in cases {
        let response = server.post(CLASSIFY, json!({ "notes": notes })).await;
        assert_rejected(&notes.to_string(), &response, message, code, None);
    }
    server.stop().await;
}

#[tokio::test]
async fn classify_rejects_invalid_json() {
    let (_dir, server) = start().await;

    assert_invalid_json_rejected(&server, CLASSIFY).await;
    server.stop().await;
}

// ---------------------------------------------------------------------------
// POST /organize/propose-structure

#[tokio::test]
async fn propose_structure_spec_examples() {
    let (_dir, server) = start().await;
    let notes = json!([
        {"note_id": "n1", "title": "Atlas Scratchpad", "folder": "Inbox"},
        {"note_id": "n2", "title": "misc", "folder": " Areas/Health "},
        {"note_id": "n3", "title": "misc", "folder": "  "},
        {"note_id": "n4", "title": "misc"},
        {"note_id": "n5", "title": "misc", "folder": ""},
        {"note_id": "n6", "title": "Atlassian tools", "folder": "Resources"},
        {"note_id": "n7", "title": "Project archive", "folder": "Archive"},
        {"note_id": "n8", "title": "ARCHIVE 2020", "folder": "Areas"},
        {"note_id": "n9", "title": "misc", "folder": ALL_WHITESPACE},
        {"note_id": "n10", "title": "misc", "folder": "Inbox"},
        {"note_id": "n11", "title": "My project", "folder": "Projects"},
    ]);

    let body = post_ok(&server, PROPOSE_STRUCTURE, json!({ "notes": notes })).await;

    assert_eq!(
        body,
        json!({"proposals": [
            proposal("n1", "Inbox", "Projects"),
            proposal("n2", " Areas/Health ", " Areas/Health "),
            proposal("n3", "  ", "Resources"),
            proposal("n4", "Inbox", "Inbox"),
            proposal("n5", "", "Resources"),
            proposal("n6", "Resources", "Projects"),
            proposal("n7", "Archive", "Projects"),
            proposal("n8", "Areas", "Archive"),
            proposal("n9", ALL_WHITESPACE, "Resources"),
            proposal("n10", "Inbox", "Inbox"),
            proposal("n11", "Projects", "Projects"),
        ]}),
        "wrong folder proposals"
    );
    server.stop().await;
}

#[tokio::test]
async fn propose_structure_trims_note_ids() {
    let (_dir, server) = start().await;
    let notes = json!([
        {"note_id": format!("{ALL_WHITESPACE}n1\u{3000}"), "title": "misc"},
        {"note_id": "n1", "title": "misc"},
    ]);

    let body = post_ok(&server, PROPOSE_STRUCTURE, json!({ "notes": notes })).await;

    assert_eq!(
        body,
        json!({"proposals": [
            proposal("n1", "Inbox", "Inbox"),
            proposal("n1", "Inbox", "Inbox"),
        ]}),
        "note ids are not trimmed, or duplicates were merged"
    );
    server.stop().await;
}

#[tokio::test]
async fn propose_structure_rejects_bad_list() {
    let (_dir, server) = start().await;

    for (label, value) in non_list_values() {
        let body = with_field(&json!({}), "notes", value);
        let response = server.post(PROPOSE_STRUCTURE, body).await;
        assert_rejected(
            &format!("notes {label}"),
            &response,
            "notes must be a non-empty list",
            "invalid_field",
            Some("notes"),
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn propose_structure_rejects_bad_notes() {
    let (_dir, server) = start().await;
    let good = json!({"note_id": "n1", "title": "misc", "folder": "Inbox"});
    let mut cases: Vec<(String, Value, &str, &str)> = Vec::new();
    for value in [json!(null), json!("n1"), json!(2.5), json!([good])] {
        cases.push((
            format!("note {value}"),
            value,
            "each note must be an object",
            "invalid_field",
        ));
    }
    for (label, value) in blank_values() {
        cases.push((
            format!("note_id {label}"),
            with_field(&good, "note_id", value),
            "note_id is required",
            "missing_field",
        ));
    }
    for (label, value) in blank_values() {
        cases.push((
            format!("title {label}"),
            with_field(&good, "title", value),
            "title is required",
            "missing_field",
        ));
    }
    for value in [
        json!(null),
        json!(1),
        json!(false),
        json!(["Inbox"]),
        json!({}),
    ] {
        cases.push((
            format!("folder {value}"),
            with_field(&good, "folder", Some(value)),
            "folder must be a string",
            "invalid_field",
        ));
    }

    for (label, note, message, code) in cases {
        let response = server
            .post(PROPOSE_STRUCTURE, json!({"notes": [note]}))
            .await;
        assert_rejected(&label, &response, message, code, None);
    }
    server.stop().await;
}

#[tokio::test]
async fn propose_structure_first_bad_note_wins() {
    let (_dir, server) = start().await;
    let good = json!({"note_id": "n1", "title": "misc"});
    let cases = [
        (
            json!([{"note_id": " ", "title": " ", "folder": null}]),
            "note_id is required",
            "missing_field",
        ),
        (
            json!([{"note_id": "n1", "title": 1, "folder": null}]),
            "title is required",
            "missing_field",
        ),
        (
            json!([good, {"note_id": "n2", "title": "t", "folder": null}, {"title": "t"}]),
            "folder must be a string",
            "invalid_field",
        ),
        (
            json!([good, "n2", {"note_id": "n3", "title": "t", "folder": 1}]),
            "each note must be an object",
            "invalid_field",
        ),
    ];

    for (notes, message, code) in cases {
        let response = server
            .post(PROPOSE_STRUCTURE, json!({ "notes": notes }))
            .await;
        assert_rejected(&notes.to_string(), &response, message, code, None);
    }
    server.stop().await;
}

#[tokio::test]
async fn propose_structure_rejects_invalid_json() {
    let (_dir, server) = start().await;

    assert_invalid_json_rejected(&server, PROPOSE_STRUCTURE).await;
    server.stop().await;
}

#[tokio::test]
async fn organize_wrong_method_is_405() {
    let (_dir, server) = start().await;

    assert_method_not_allowed(&server, Method::GET, CLASSIFY).await;
    assert_method_not_allowed(&server, Method::DELETE, CLASSIFY).await;
    assert_method_not_allowed(&server, Method::GET, PROPOSE_STRUCTURE).await;
    assert_method_not_allowed(&server, Method::PUT, PROPOSE_STRUCTURE).await;
    server.stop().await;
}

#[tokio::test]
async fn item_errors_name_the_list_index() {
    let (_dir, server) = start().await;
    let good = json!({"note_id": "n1", "title": "t"});
    // (route, body, message, code, field at fault)
    let cases = [
        (
            CLASSIFY,
            json!({"notes": [good, {"note_id": "n2", "title": " "}]}),
            "title is required",
            "missing_field",
            "notes[1].title",
        ),
        (
            CLASSIFY,
            json!({"notes": [good, good, 7]}),
            "each note must be an object",
            "invalid_field",
            "notes[2]",
        ),
        (
            PROPOSE_STRUCTURE,
            json!({"notes": [{"note_id": "", "title": "t"}]}),
            "note_id is required",
            "missing_field",
            "notes[0].note_id",
        ),
        (
            PROPOSE_STRUCTURE,
            json!({"notes": [good, {"note_id": "n2", "title": "t", "folder": null}]}),
            "folder must be a string",
            "invalid_field",
            "notes[1].folder",
        ),
    ];
    for (route, body, message, code, field) in cases {
        let response = server.post(route, body.clone()).await;
        let context = format!("{route} {body}");
        assert_rejected(&context, &response, message, code, Some(field));
    }
    server.stop().await;
}
