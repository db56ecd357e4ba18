//! The run workflow over HTTP against the in-process daemon. Covers run
//! records and their initial proposals, the run and proposal listings with
//! their query filters, and approve, apply and rollback with every validation
//! error. Also covers real rollback, metrics, run ids past 9999, restarts and
//! concurrent applies.

mod common;

use std::{str::FromStr, sync::Arc};

use common::{
    TestDir, TestServer,
    publish::{ExpectedError, assert_error},
    runs::{
        ANALYZE, RUNS, Vault, action, analyze, analyze_raw, get_proposals, get_run,
        initial_proposals, metric, proposal_ids, proposal_statuses, restart, run_ids, start,
    },
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, SqliteConnection, sqlite::SqliteConnectOptions};
use tokio::sync::Barrier;

/// Number of simultaneous requests in the concurrency tests.
const RACERS: usize = 16;

// ---------------------------------------------------------------------------
// Helpers

/// Analyses the two-note example folder and returns the new run id.
async fn new_run(server: &TestServer, vault: &Vault) -> String {
    let run = analyze(server, &vault.folder_path()).await;
    run["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("analysis returned no run_id: {run}"))
        .to_owned()
}

/// Posts a run action and asserts success.
async fn act(server: &TestServer, run_id: &str, name: &str, body: Value) -> Value {
    let (status, response) = server.post(&action(run_id, name), body.clone()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{name} on {run_id} with {body} failed: {response}"
    );
    response
}

fn bad_request<'a>(message: &'a str, code: &'a str, field: Option<&'a str>) -> ExpectedError<'a> {
    ExpectedError {
        status: StatusCode::BAD_REQUEST,
        message,
        code,
        field,
    }
}

fn invalid_json() -> ExpectedError<'static> {
    bad_request("invalid json", "invalid_json", None)
}

fn no_matching(message: &str) -> ExpectedError<'_> {
    bad_request(message, "no_matching_proposals", None)
}

fn snapshot_required() -> ExpectedError<'static> {
    bad_request(
        "snapshot_id is required",
        "missing_field",
        Some("snapshot_id"),
    )
}

fn rollback_rejected<'a>(message: &'a str, code: &'a str) -> ExpectedError<'a> {
    bad_request(message, code, Some("snapshot_id"))
}

fn expected_profile() -> Value {
    json!({"note_count": 2, "orphan_notes": 1, "link_density": 0.5})
}

/// Opens the test database for writing while no server runs on it.
async fn open_database(dir: &TestDir) -> SqliteConnection {
    let options = SqliteConnectOptions::from_str(&dir.database_url()).expect("parse database URL");
    SqliteConnection::connect_with(&options)
        .await
        .expect("open the test database")
}

// ---------------------------------------------------------------------------
// Run records and proposals

#[tokio::test]
async fn analyze_returns_new_run_record() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();

    let run = analyze(&server, &vault.folder_path()).await;
    let stored = get_run(&server, "run_0001").await;

    let expected =
        json!({"run_id": "run_0001", "state": "analyzing", "profile": expected_profile()});
    assert_eq!(run, expected, "analysis response is not the new run record");
    assert_eq!(
        stored, expected,
        "GET /runs/run_0001 differs from the analysis response"
    );
}

#[tokio::test]
async fn new_run_has_two_proposals() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    new_run(&server, &vault).await;
    new_run(&server, &vault).await;

    for run_id in ["run_0001", "run_0002"] {
        let (status, body) = server.get(&action(run_id, "proposals")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "proposals of {run_id} failed: {body}"
        );
        assert_eq!(
            body,
            json!({"run_id": run_id, "proposals": initial_proposals(run_id)}),
            "{run_id} does not list the two initial proposals"
        );
    }
}

#[tokio::test]
async fn run_list_empty_when_fresh() {
    let (_dir, server) = start().await;

    let (status, body) = server.get(RUNS).await;

    assert_eq!(status, StatusCode::OK, "GET /runs failed: {body}");
    assert_eq!(body, json!({"runs": []}), "a fresh server lists runs");
}

#[tokio::test]
async fn run_list_filters_by_state() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    for _ in 0..4 {
        new_run(&server, &vault).await;
    }
    act(&server, "run_0002", "approve", json!({})).await;
    act(&server, "run_0003", "apply", json!({})).await;
    act(&server, "run_0004", "apply", json!({})).await;
    act(&server, "run_0004", "rollback", json!({})).await;

    let all = ["run_0001", "run_0002", "run_0003", "run_0004"];
    let cases: &[(&str, &[&str])] = &[
        ("", &all),
        ("?state=analyzing", &["run_0001"]),
        ("?state=approved", &["run_0002"]),
        ("?state=applied", &["run_0003"]),
        ("?state=rolled_back", &["run_0004"]),
        ("?state=", &all),
        ("?state=applied&state=", &["run_0003"]),
        ("?state=analyzing&state=applied", &["run_0003"]),
        ("?state=&state=approved&state=", &["run_0002"]),
        ("?colour=red", &all),
        ("?colour=red&state=approved", &["run_0002"]),
        ("?State=applied", &all),
        ("?state=Applied", &[]),
        ("?state=nope", &[]),
        ("?state=rolled%5Fback", &["run_0004"]),
        ("?state=rolled+back", &[]),
        ("?state=applied;colour=red", &[]),
    ];
    for (query, expected) in cases {
        assert_eq!(
            run_ids(&server, query).await,
            *expected,
            "GET /runs{query} lists the wrong runs"
        );
    }
}

#[tokio::test]
async fn run_list_records_match_get() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    new_run(&server, &vault).await;
    new_run(&server, &vault).await;
    act(&server, "run_0002", "apply", json!({})).await;
    act(&server, "run_0002", "rollback", json!({})).await;

    let (status, body) = server.get(RUNS).await;

    assert_eq!(status, StatusCode::OK, "GET /runs failed: {body}");
    let listed = body["runs"].as_array().expect("runs is an array").clone();
    let expected = vec![
        get_run(&server, "run_0001").await,
        get_run(&server, "run_0002").await,
    ];
    assert_eq!(
        listed, expected,
        "listed records differ from GET /runs/{{id}}"
    );
}

#[tokio::test]
async fn get_unknown_run_is_404() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    new_run(&server, &vault).await;

    for run_id in ["run_0002", "nope", "RUN_0001", "run_1"] {
        let response = server.get(&format!("{RUNS}/{run_id}")).await;
        let message = format!("unknown run id: {run_id}");
        let expected = ExpectedError {
            status: StatusCode::NOT_FOUND,
            message: &message,
            code: "unknown_run",
            field: None,
        };
        assert_error(&format!("GET /runs/{run_id}"), &response, &expected);
    }
}

#[tokio::test]
async fn proposal_filters_combine_with_and() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let run_id = new_run(&server, &vault).await;
    act(
        &server,
        &run_id,
        "apply",
        json!({"change_types": ["tag_enrichment"]}),
    )
    .await;

    let tag = "run_0001-prop-01";
    let link = "run_0001-prop-02";
    let cases: &[(&str, &[&str])] = &[
        ("", &[tag, link]),
        ("?risk_tier=low", &[tag]),
        ("?risk_tier=medium", &[link]),
        ("?risk_tier=high", &[]),
        ("?action_mode=auto", &[tag]),
        ("?action_mode=suggest", &[link]),
        ("?action_mode=manual", &[]),
        ("?status=applied", &[tag]),
        ("?status=pending", &[link]),
        ("?status=approved", &[]),
        ("?risk_tier=low&status=applied", &[tag]),
        ("?risk_tier=low&status=pending", &[]),
        (
            "?risk_tier=medium&action_mode=suggest&status=pending",
            &[link],
        ),
        ("?risk_tier=low&action_mode=suggest", &[]),
        ("?risk_tier=", &[tag, link]),
        ("?risk_tier=low&risk_tier=", &[tag]),
        ("?risk_tier=low&risk_tier=medium", &[link]),
        ("?status=&action_mode=", &[tag, link]),
        ("?colour=red", &[tag, link]),
        ("?colour=red&status=pending", &[link]),
        ("?Risk_tier=low", &[tag, link]),
        ("?status=Applied", &[]),
        ("?action_mode=%73uggest", &[link]),
    ];
    for (query, expected) in cases {
        assert_eq!(
            proposal_ids(&server, &run_id, query).await,
            *expected,
            "GET /runs/{run_id}/proposals{query} lists the wrong proposals"
        );
    }
}

#[tokio::test]
async fn proposals_of_unknown_run_404() {
    let (_dir, server) = start().await;

    for query in ["", "?risk_tier=low", "?colour=red&status="] {
        let response = server.get(&format!("/runs/nope/proposals{query}")).await;
        let expected = ExpectedError {
            status: StatusCode::NOT_FOUND,
            message: "unknown run id: nope",
            code: "unknown_run",
            field: None,
        };
        assert_error(&format!("proposals{query}"), &response, &expected);
    }
}

// ---------------------------------------------------------------------------
// Approve, apply and rollback: success

#[tokio::test]
async fn approve_selects_by_change_type() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let run_id = new_run(&server, &vault).await;

    let approved = act(
        &server,
        &run_id,
        "approve",
        json!({"change_types": ["link_add"], "scope": "everything"}),
    )
    .await;

    assert_eq!(
        approved,
        json!({"run_id": "run_0001", "state": "approved", "approved_count": 1}),
        "approve response"
    );
    assert_eq!(
        proposal_statuses(&server, &run_id).await,
        ["pending", "approved"],
        "only link_add should be approved"
    );
    assert_eq!(
        get_run(&server, &run_id).await["state"],
        "approved",
        "run state after approve"
    );
}

#[tokio::test]
async fn change_types_null_means_all() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let run_id = new_run(&server, &vault).await;

    let approved = act(&server, &run_id, "approve", json!({"change_types": null})).await;

    assert_eq!(
        approved["approved_count"], 2,
        "null change_types must select both"
    );
    assert_eq!(
        proposal_statuses(&server, &run_id).await,
        ["approved", "approved"],
        "statuses after approving all"
    );
}

#[tokio::test]
async fn apply_and_rollback_shapes() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let run_id = new_run(&server, &vault).await;
    act(&server, &run_id, "approve", json!({})).await;

    let applied = act(
        &server,
        &run_id,
        "apply",
        json!({"change_types": ["tag_enrichment"]}),
    )
    .await;
    let after_apply = get_run(&server, &run_id).await;
    let rolled_back = act(&server, &run_id, "rollback", json!({})).await;
    let after_rollback = get_run(&server, &run_id).await;

    assert_eq!(
        applied,
        json!({"run_id": "run_0001", "state": "applied", "snapshot_id": "snap-run_0001-1", "applied_count": 1}),
        "apply response"
    );
    assert_eq!(
        after_apply,
        json!({
            "run_id": "run_0001",
            "state": "applied",
            "profile": expected_profile(),
            "snapshot_id": "snap-run_0001-1",
        }),
        "run record after apply"
    );
    assert_eq!(
        rolled_back,
        json!({"run_id": "run_0001", "state": "rolled_back", "rolled_back_snapshot_id": "snap-run_0001-1"}),
        "rollback response"
    );
    assert_eq!(
        after_rollback,
        json!({
            "run_id": "run_0001",
            "state": "rolled_back",
            "profile": expected_profile(),
            "snapshot_id": "snap-run_0001-1",
            "rolled_back_snapshot_id": "snap-run_0001-1",
        }),
        "run record after rollback"
    );
}

#[tokio::test]
async fn rollback_accepts_explicit_snapshot() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let run_id = new_run(&server, &vault).await;
    act(&server, &run_id, "apply", json!({})).await;

    let rolled_back = act(
        &server,
        &run_id,
        "rollback",
        json!({"snapshot_id": "snap-run_0001-1"}),
    )
    .await;

    assert_eq!(
        rolled_back["rolled_back_snapshot_id"], "snap-run_0001-1",
        "rollback of the named snapshot"
    );
}

#[tokio::test]
async fn apply_without_approve_applies_both() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let run_id = new_run(&server, &vault).await;

    let applied = act(&server, &run_id, "apply", json!({})).await;

    assert_eq!(
        applied,
        json!({"run_id": "run_0001", "state": "applied", "snapshot_id": "snap-run_0001-1", "applied_count": 2}),
        "apply of pending proposals"
    );
    assert_eq!(
        proposal_statuses(&server, &run_id).await,
        ["applied", "applied"],
        "both pending proposals, the suggest-mode link_add included, must be applied"
    );
}

#[tokio::test]
async fn reapproval_counts_again() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let run_id = new_run(&server, &vault).await;

    let first = act(&server, &run_id, "approve", json!({})).await;
    let second = act(&server, &run_id, "approve", json!({})).await;
    let only_tags = act(
        &server,
        &run_id,
        "approve",
        json!({"change_types": ["tag_enrichment"]}),
    )
    .await;

    assert_eq!(
        first["approved_count"], 2,
        "first approve of two pending proposals"
    );
    assert_eq!(
        second["approved_count"], 2,
        "approved proposals are selected again"
    );
    assert_eq!(
        only_tags["approved_count"], 1,
        "re-approval of one change type"
    );
    assert_eq!(
        proposal_statuses(&server, &run_id).await,
        ["approved", "approved"],
        "statuses after repeated approvals"
    );
}

#[tokio::test]
async fn approve_after_partial_apply() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let run_id = new_run(&server, &vault).await;
    act(
        &server,
        &run_id,
        "apply",
        json!({"change_types": ["tag_enrichment"]}),
    )
    .await;

    let approved = act(&server, &run_id, "approve", json!({})).await;

    assert_eq!(
        approved["approved_count"], 1,
        "applied proposals must not be approved again"
    );
    assert_eq!(
        get_run(&server, &run_id).await["state"],
        "approved",
        "approve moves an applied run back to approved"
    );
    assert_eq!(
        proposal_statuses(&server, &run_id).await,
        ["applied", "approved"],
        "statuses after approving the rest"
    );
}

// ---------------------------------------------------------------------------
// Approve, apply and rollback: validation errors

#[tokio::test]
async fn actions_on_unknown_run_404() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    new_run(&server, &vault).await;

    let cases = [
        ("approve", json!({})),
        ("approve", json!({"change_types": 5})),
        ("approve", json!({"change_types": []})),
        ("apply", json!({})),
        ("apply", json!({"change_types": "link_add"})),
        ("rollback", json!({})),
        ("rollback", json!({"snapshot_id": 5})),
        ("rollback", json!({"snapshot_id": "snap-run_0001-1"})),
    ];
    for (name, body) in cases {
        let response = server.post(&action("run_0002", name), body.clone()).await;
        let expected = ExpectedError {
            status: StatusCode::NOT_FOUND,
            message: "unknown run id: run_0002",
            code: "unknown_run",
            field: None,
        };
        assert_error(&format!("{name} with {body}"), &response, &expected);
    }
}

#[tokio::test]
async fn invalid_json_beats_unknown_run() {
    let (_dir, server) = start().await;

    for name in ["approve", "apply", "rollback"] {
        for body in ["not json", "", "[]", "null", "{\"change_types\": "] {
            let response = server
                .post_raw(&action("nope", name), Some("application/json"), body)
                .await;
            assert_error(
                &format!("{name} with body {body:?}"),
                &response,
                &invalid_json(),
            );
        }
    }
}

#[tokio::test]
async fn change_types_must_be_string_list() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let run_id = new_run(&server, &vault).await;

    let invalid = [
        json!("tag_enrichment"),
        json!(5),
        json!(true),
        json!({}),
        json!([1]),
        json!(["link_add", null]),
        json!([["link_add"]]),
    ];
    for name in ["approve", "apply"] {
        for change_types in &invalid {
            let body = json!({"change_types": change_types});
            let response = server.post(&action(&run_id, name), body.clone()).await;
            let expected = bad_request(
                "change_types must be a list of strings",
                "invalid_field",
                Some("change_types"),
            );
            assert_error(&format!("{name} with {body}"), &response, &expected);
        }
    }

    assert_eq!(
        get_proposals(&server, &run_id, "").await,
        initial_proposals(&run_id),
        "rejected requests changed the proposals"
    );
    assert_eq!(
        get_run(&server, &run_id).await["state"],
        "analyzing",
        "rejected requests changed the run state"
    );
}

#[tokio::test]
async fn unmatched_change_types_select_nothing() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let run_id = new_run(&server, &vault).await;

    for change_types in [json!([]), json!(["unknown"]), json!(["Link_add"])] {
        let body = json!({"change_types": change_types});
        let approve = server.post(&action(&run_id, "approve"), body.clone()).await;
        let apply = server.post(&action(&run_id, "apply"), body.clone()).await;
        assert_error(
            &format!("approve with {body}"),
            &approve,
            &no_matching("no matching proposals to approve"),
        );
        assert_error(
            &format!("apply with {body}"),
            &apply,
            &no_matching("no matching proposals to apply"),
        );
    }

    assert_eq!(
        get_proposals(&server, &run_id, "").await,
        initial_proposals(&run_id),
        "selections of nothing changed the proposals"
    );
    assert_eq!(
        metric(&server, "mind_lite_snapshots_total").await,
        0,
        "an apply that selected nothing recorded a snapshot"
    );
}

#[tokio::test]
async fn applied_proposals_not_selectable() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let run_id = new_run(&server, &vault).await;
    act(&server, &run_id, "apply", json!({})).await;

    let approve = server.post(&action(&run_id, "approve"), json!({})).await;
    let apply = server.post(&action(&run_id, "apply"), json!({})).await;

    assert_error(
        "approve after applying all",
        &approve,
        &no_matching("no matching proposals to approve"),
    );
    assert_error(
        "apply after applying all",
        &apply,
        &no_matching("no matching proposals to apply"),
    );
}

#[tokio::test]
async fn rollback_requires_snapshot_id() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let never_applied = new_run(&server, &vault).await;
    let applied = new_run(&server, &vault).await;
    act(&server, &applied, "apply", json!({})).await;

    let never_applied_bodies = [
        json!({}),
        json!({"snapshot_id": null}),
        json!({"snapshot_id": ""}),
        json!({"snapshot_id": 5}),
        json!({"snapshot_id": true}),
    ];
    for body in never_applied_bodies {
        let response = server
            .post(&action(&never_applied, "rollback"), body.clone())
            .await;
        assert_error(
            &format!("rollback of a never-applied run with {body}"),
            &response,
            &snapshot_required(),
        );
    }

    // A value that is not a non-empty string does not fall back to the run's
    // current snapshot.
    let applied_bodies = [
        json!({"snapshot_id": ""}),
        json!({"snapshot_id": 1}),
        json!({"snapshot_id": false}),
        json!({"snapshot_id": ["snap-run_0002-1"]}),
    ];
    for body in applied_bodies {
        let response = server
            .post(&action(&applied, "rollback"), body.clone())
            .await;
        assert_error(
            &format!("rollback of an applied run with {body}"),
            &response,
            &snapshot_required(),
        );
    }

    assert_eq!(
        get_run(&server, &applied).await["state"],
        "applied",
        "a rejected rollback changed the run state"
    );
}

#[tokio::test]
async fn rollback_of_unknown_snapshot_rejected() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let first = new_run(&server, &vault).await;
    let second = new_run(&server, &vault).await;
    let never_applied = new_run(&server, &vault).await;
    act(&server, &first, "apply", json!({})).await;
    act(&server, &second, "apply", json!({})).await;

    let cases = [
        (&never_applied, "snap-run_0003-1"),
        (&first, "snap-run_0002-1"),
        (&first, "snap-run_0001-2"),
        (&first, " snap-run_0001-1"),
        (&first, "snap-run_0001-1 "),
        (&first, "SNAP-run_0001-1"),
    ];
    for (run_id, snapshot_id) in cases {
        let body = json!({"snapshot_id": snapshot_id});
        let response = server.post(&action(run_id, "rollback"), body).await;
        assert_error(
            &format!("rollback of {run_id} to {snapshot_id:?}"),
            &response,
            &rollback_rejected("snapshot_not_found", "snapshot_not_found"),
        );
    }

    assert_eq!(
        get_run(&server, &first).await["state"],
        "applied",
        "a rejected rollback changed the run state"
    );
    assert_eq!(
        proposal_statuses(&server, &first).await,
        ["applied", "applied"],
        "a rejected rollback changed the proposals"
    );
}

#[tokio::test]
async fn rollback_of_older_snapshot_rejected() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let run_id = new_run(&server, &vault).await;
    act(
        &server,
        &run_id,
        "apply",
        json!({"change_types": ["tag_enrichment"]}),
    )
    .await;
    act(
        &server,
        &run_id,
        "apply",
        json!({"change_types": ["link_add"]}),
    )
    .await;

    let older = server
        .post(
            &action(&run_id, "rollback"),
            json!({"snapshot_id": "snap-run_0001-1"}),
        )
        .await;

    assert_error(
        "rollback of the first of two snapshots",
        &older,
        &rollback_rejected("not_latest_snapshot", "not_latest_snapshot"),
    );
    assert_eq!(
        proposal_statuses(&server, &run_id).await,
        ["applied", "applied"],
        "a rejected rollback changed the proposals"
    );
    let latest = act(
        &server,
        &run_id,
        "rollback",
        json!({"snapshot_id": "snap-run_0001-2"}),
    )
    .await;
    assert_eq!(
        latest["rolled_back_snapshot_id"], "snap-run_0001-2",
        "rollback of the latest snapshot"
    );
}

// ---------------------------------------------------------------------------
// Real rollback

#[tokio::test]
async fn rollback_returns_proposals_to_approved() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let run_id = new_run(&server, &vault).await;
    act(&server, &run_id, "apply", json!({})).await;

    act(&server, &run_id, "rollback", json!({})).await;

    assert_eq!(
        proposal_statuses(&server, &run_id).await,
        ["approved", "approved"],
        "rolled-back proposals must return to approved"
    );
    let message = "snapshot snap-run_0001-1 is already rolled back";
    for body in [json!({}), json!({"snapshot_id": "snap-run_0001-1"})] {
        let again = server
            .post(&action(&run_id, "rollback"), body.clone())
            .await;
        assert_error(
            &format!("second rollback with {body}"),
            &again,
            &rollback_rejected(message, "snapshot_already_rolled_back"),
        );
    }

    let reapplied = act(&server, &run_id, "apply", json!({})).await;
    assert_eq!(
        reapplied,
        json!({"run_id": "run_0001", "state": "applied", "snapshot_id": "snap-run_0001-2", "applied_count": 2}),
        "re-apply after rollback"
    );
    assert_eq!(
        proposal_statuses(&server, &run_id).await,
        ["applied", "applied"],
        "statuses after re-apply"
    );
    let run = get_run(&server, &run_id).await;
    assert_eq!(
        run["snapshot_id"], "snap-run_0001-2",
        "current snapshot after re-apply"
    );
    assert_eq!(
        run["rolled_back_snapshot_id"], "snap-run_0001-1",
        "re-apply keeps the last rolled-back snapshot id"
    );
}

#[tokio::test]
async fn rollback_restores_only_its_snapshot() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let run_id = new_run(&server, &vault).await;
    act(
        &server,
        &run_id,
        "apply",
        json!({"change_types": ["tag_enrichment"]}),
    )
    .await;
    act(
        &server,
        &run_id,
        "apply",
        json!({"change_types": ["link_add"]}),
    )
    .await;

    act(&server, &run_id, "rollback", json!({})).await;

    assert_eq!(
        proposal_statuses(&server, &run_id).await,
        ["applied", "approved"],
        "only the proposal of snap-run_0001-2 must return to approved"
    );
    let older = server
        .post(
            &action(&run_id, "rollback"),
            json!({"snapshot_id": "snap-run_0001-1"}),
        )
        .await;
    assert_error(
        "rollback of an older snapshot after the latest was rolled back",
        &older,
        &rollback_rejected("not_latest_snapshot", "not_latest_snapshot"),
    );
}

/// Approve, apply and rollback succeed from any state. The rolled-back
/// proposal returns to `approved`, so the next approve and apply select it.
#[tokio::test]
async fn lifecycle_sequence_with_real_rollback() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let run_id = new_run(&server, &vault).await;

    let applied = act(
        &server,
        &run_id,
        "apply",
        json!({"change_types": ["tag_enrichment"]}),
    )
    .await;
    assert_eq!(
        applied,
        json!({"run_id": "run_0001", "state": "applied", "snapshot_id": "snap-run_0001-1", "applied_count": 1}),
        "step 1: apply tag_enrichment"
    );

    let rolled_back = act(&server, &run_id, "rollback", json!({})).await;
    assert_eq!(
        rolled_back,
        json!({"run_id": "run_0001", "state": "rolled_back", "rolled_back_snapshot_id": "snap-run_0001-1"}),
        "step 2: rollback"
    );
    assert_eq!(
        proposal_statuses(&server, &run_id).await,
        ["approved", "pending"],
        "step 2: tag_enrichment returns to approved"
    );

    let approved = act(&server, &run_id, "approve", json!({})).await;
    assert_eq!(
        approved,
        json!({"run_id": "run_0001", "state": "approved", "approved_count": 2}),
        "step 3: approve selects the rolled-back and the pending proposal"
    );

    let reapplied = act(&server, &run_id, "apply", json!({})).await;
    assert_eq!(
        reapplied,
        json!({"run_id": "run_0001", "state": "applied", "snapshot_id": "snap-run_0001-2", "applied_count": 2}),
        "step 4: apply everything"
    );
    assert_eq!(
        get_run(&server, &run_id).await,
        json!({
            "run_id": "run_0001",
            "state": "applied",
            "profile": expected_profile(),
            "snapshot_id": "snap-run_0001-2",
            "rolled_back_snapshot_id": "snap-run_0001-1",
        }),
        "step 4: run record"
    );
}

// ---------------------------------------------------------------------------
// Metrics, run ids, restarts

#[tokio::test]
async fn metrics_count_rows() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let gauges = [
        "mind_lite_runs_total",
        "mind_lite_proposals_total",
        "mind_lite_snapshots_total",
    ];
    for gauge in gauges {
        assert_eq!(metric(&server, gauge).await, 0, "{gauge} on a fresh server");
    }

    let first = new_run(&server, &vault).await;
    new_run(&server, &vault).await;
    act(
        &server,
        &first,
        "apply",
        json!({"change_types": ["tag_enrichment"]}),
    )
    .await;
    act(
        &server,
        &first,
        "apply",
        json!({"change_types": ["link_add"]}),
    )
    .await;

    assert_eq!(
        metric(&server, "mind_lite_runs_total").await,
        2,
        "runs gauge"
    );
    assert_eq!(
        metric(&server, "mind_lite_proposals_total").await,
        4,
        "proposals gauge"
    );
    assert_eq!(
        metric(&server, "mind_lite_snapshots_total").await,
        2,
        "two applies on one run must count two snapshots"
    );

    act(&server, &first, "rollback", json!({})).await;
    assert_eq!(
        metric(&server, "mind_lite_snapshots_total").await,
        2,
        "a rollback keeps its snapshot"
    );
}

#[tokio::test]
async fn run_ids_grow_past_9999() {
    let dir = TestDir::new();
    let vault = Vault::two_notes();
    let server = restart(&dir).await;
    new_run(&server, &vault).await;
    server.stop().await;

    let mut connection = open_database(&dir).await;
    let updated = sqlx::query("update sqlite_sequence set seq = 9998 where name = 'runs'")
        .execute(&mut connection)
        .await
        .expect("preset the run counter");
    connection.close().await.expect("close the test database");
    assert_eq!(
        updated.rows_affected(),
        1,
        "sqlite_sequence has no row for runs"
    );

    let server = restart(&dir).await;
    let ninth = new_run(&server, &vault).await;
    let tenth = new_run(&server, &vault).await;

    assert_eq!(ninth, "run_9999", "run id after the preset counter");
    assert_eq!(tenth, "run_10000", "run id past four digits");
    assert_eq!(
        run_ids(&server, "").await,
        ["run_0001", "run_9999", "run_10000"],
        "runs must be listed in creation order"
    );
    assert_eq!(
        proposal_ids(&server, "run_10000", "").await,
        ["run_10000-prop-01", "run_10000-prop-02"],
        "proposal ids of a five-digit run"
    );
    let applied = act(&server, "run_10000", "apply", json!({})).await;
    assert_eq!(
        applied["snapshot_id"], "snap-run_10000-1",
        "snapshot id of a five-digit run"
    );
}

#[tokio::test]
async fn runs_survive_restart() {
    let dir = TestDir::new();
    let vault = Vault::two_notes();
    let server = restart(&dir).await;
    let first = new_run(&server, &vault).await;
    let second = new_run(&server, &vault).await;
    act(
        &server,
        &first,
        "apply",
        json!({"change_types": ["tag_enrichment"]}),
    )
    .await;
    act(
        &server,
        &second,
        "approve",
        json!({"change_types": ["link_add"]}),
    )
    .await;
    let (_, runs_before) = server.get(RUNS).await;
    let first_proposals = get_proposals(&server, &first, "").await;
    let second_proposals = get_proposals(&server, &second, "").await;
    server.stop().await;

    let server = restart(&dir).await;

    let (status, runs_after) = server.get(RUNS).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "GET /runs after restart: {runs_after}"
    );
    assert_eq!(
        runs_after, runs_before,
        "run records changed across the restart"
    );
    assert_eq!(
        get_proposals(&server, &first, "").await,
        first_proposals,
        "proposals of {first} changed across the restart"
    );
    assert_eq!(
        get_proposals(&server, &second, "").await,
        second_proposals,
        "proposals of {second} changed across the restart"
    );
    assert_eq!(
        metric(&server, "mind_lite_snapshots_total").await,
        1,
        "snapshots after the restart"
    );

    let rolled_back = act(&server, &first, "rollback", json!({})).await;
    assert_eq!(
        rolled_back["rolled_back_snapshot_id"], "snap-run_0001-1",
        "the snapshot taken before the restart must be rolled back"
    );
    assert_eq!(
        new_run(&server, &vault).await,
        "run_0003",
        "the run counter must continue after the restart"
    );
}

#[tokio::test]
async fn failed_analysis_uses_no_run_id() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let missing = vault.join("missing");
    let missing = missing.to_str().expect("UTF-8 path");

    let (status, body) = analyze_raw(&server, missing).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "analysis of a missing folder: {body}"
    );
    let (status, body) = server.post(ANALYZE, json!({})).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "analysis without folder_path: {body}"
    );
    assert_eq!(
        new_run(&server, &vault).await,
        "run_0001",
        "first successful analysis"
    );

    let (status, body) = analyze_raw(&server, missing).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "second failed analysis: {body}"
    );
    assert_eq!(
        new_run(&server, &vault).await,
        "run_0002",
        "second successful analysis"
    );
    assert_eq!(
        run_ids(&server, "").await,
        ["run_0001", "run_0002"],
        "failed analyses must store no run"
    );
}

#[tokio::test]
async fn get_on_run_action_is_405() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let run_id = new_run(&server, &vault).await;

    for name in ["approve", "apply", "rollback"] {
        let (status, body) = server.get(&action(&run_id, name)).await;
        assert_eq!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "GET {name}: wrong status, body {body}"
        );
        common::assert_error_shape(&body);
        assert_eq!(body["code"], "method_not_allowed", "GET {name}: wrong code");
    }
    assert_eq!(
        get_run(&server, &run_id).await["state"],
        "analyzing",
        "a GET on a run action changed the run"
    );
}

// ---------------------------------------------------------------------------
// Concurrency

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_applies_apply_once() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let run_id = new_run(&server, &vault).await;
    let barrier = Arc::new(Barrier::new(RACERS));
    let url = server.url(&action(&run_id, "apply"));

    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let client = server.client.clone();
            let url = url.clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body("{}")
                    .send()
                    .await
                    .expect("send apply");
                common::read_json(response).await
            })
        })
        .collect();
    let mut successes = Vec::new();
    for racer in racers {
        let response = racer.await.expect("apply task");
        if response.0 == StatusCode::OK {
            successes.push(response.1);
        } else {
            assert_error(
                "losing concurrent apply",
                &response,
                &no_matching("no matching proposals to apply"),
            );
        }
    }

    assert_eq!(
        successes.len(),
        1,
        "exactly one apply must succeed: {successes:?}"
    );
    assert_eq!(
        successes[0],
        json!({"run_id": "run_0001", "state": "applied", "snapshot_id": "snap-run_0001-1", "applied_count": 2}),
        "the winning apply"
    );
    assert_eq!(
        metric(&server, "mind_lite_snapshots_total").await,
        1,
        "concurrent applies must record one snapshot"
    );
    assert_eq!(
        get_run(&server, &run_id).await["snapshot_id"],
        "snap-run_0001-1",
        "current snapshot after concurrent applies"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_analyses_get_distinct_ids() {
    let (_dir, server) = start().await;
    let vault = Arc::new(Vault::two_notes());
    let barrier = Arc::new(Barrier::new(RACERS));
    let url = server.url(ANALYZE);

    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let client = server.client.clone();
            let url = url.clone();
            let barrier = Arc::clone(&barrier);
            let body = json!({"folder_path": vault.folder_path()}).to_string();
            tokio::spawn(async move {
                barrier.wait().await;
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("send analysis");
                common::read_json(response).await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for racer in racers {
        let (status, body) = racer.await.expect("analysis task");
        assert_eq!(status, StatusCode::OK, "concurrent analysis failed: {body}");
        ids.push(body["run_id"].as_str().expect("run_id").to_owned());
    }
    ids.sort();

    let expected: Vec<String> = (1..=RACERS).map(|n| format!("run_{n:04}")).collect();
    assert_eq!(
        ids, expected,
        "concurrent analyses must get distinct consecutive ids"
    );
    assert_eq!(
        metric(&server, "mind_lite_proposals_total").await,
        2 * RACERS as i64,
        "every concurrent analysis stores two proposals"
    );
}

#[tokio::test]
async fn lowered_counter_reuses_no_run_id() {
    let dir = TestDir::new();
    let vault = Vault::two_notes();
    let server = restart(&dir).await;
    for _ in 0..3 {
        new_run(&server, &vault).await;
    }
    server.stop().await;

    // An import or a hand edit may leave the counter behind the newest run.
    let mut connection = open_database(&dir).await;
    sqlx::query("update sqlite_sequence set seq = 1 where name = 'runs'")
        .execute(&mut connection)
        .await
        .expect("lower the run counter");
    connection.close().await.expect("close the test database");

    let server = restart(&dir).await;
    let next = new_run(&server, &vault).await;
    assert_eq!(next, "run_0004", "run id after a lowered counter");
    server.stop().await;
}

#[tokio::test]
async fn run_id_is_not_percent_decoded() {
    let (_dir, server) = start().await;
    new_run(&server, &Vault::two_notes()).await;

    let (status, body) = server.get("/runs/run%5F0001").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "encoded id found a run: {body}"
    );
    assert_eq!(
        body["error"], "unknown run id: run%5F0001",
        "the id must be quoted as sent"
    );
    let (status, body) = server.post("/runs/run%5F0001/apply", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "encoded id applied: {body}");
    let (status, body) = server.get("/runs//proposals").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "empty run id: {body}");
    assert_eq!(body["error"], "not found", "an empty id is an unknown path");
    server.stop().await;
}
