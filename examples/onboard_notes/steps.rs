//! The steps run against the daemon: folder analysis with the run workflow, links,
//! classification and one question per note.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, ensure};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::client::{
    ApplyLinksResponse, ApplyResponse, ApproveResponse, AskResponse, ClassifyResponse,
    DaemonClient, Profile, ProposalList, ProposeLinksResponse, RollbackResponse, RunList,
    RunRecord, decode,
};
use crate::notes::{Note, link_graph, mutual_pairs};
use crate::replay::{IdempotentReply, send_idempotent};
use crate::support::trim_whitespace;

/// Notes per `POST /organize/classify` request. 50 short titles stay far below the
/// daemon's default body limit of 1 MiB.
const CLASSIFY_BATCH_SIZE: usize = 50;

/// Computes the folder profile from the notes, as the daemon's analysis should.
pub(crate) fn local_profile(notes: &[Note]) -> Profile {
    let total_links: usize = notes.iter().map(|note| note.wiki_link_count).sum();
    let note_count = notes.len();
    Profile {
        note_count: note_count as u64,
        orphan_notes: notes
            .iter()
            .filter(|note| note.wiki_link_count == 0)
            .count() as u64,
        link_density: if note_count == 0 {
            0.0
        } else {
            total_links as f64 / note_count as f64
        },
    }
}

/// Compares the daemon's profile with the client's count.
///
/// `link_density` is compared with a relative tolerance of 1e-12, because serde_json's
/// default float parser may round the last bit differently from the daemon's writer.
fn check_profile(reported: &Profile, expected: &Profile, label: &str) -> Result<()> {
    ensure!(
        reported.note_count == expected.note_count,
        "{label}: note_count is {}, but the client found {} notes",
        reported.note_count,
        expected.note_count
    );
    ensure!(
        reported.orphan_notes == expected.orphan_notes,
        "{label}: orphan_notes is {}, but the client found {} notes without a wiki-link",
        reported.orphan_notes,
        expected.orphan_notes
    );
    let tolerance = 1e-12 * expected.link_density.abs().max(1.0);
    ensure!(
        (reported.link_density - expected.link_density).abs() <= tolerance,
        "{label}: link_density is {}, but the client counts {}",
        reported.link_density,
        expected.link_density
    );
    Ok(())
}

/// Returns the run id that the next folder analysis must get: the newest listed run's
/// counter plus one, or `run_0001` when there is no run.
fn next_run_id(runs: &[RunRecord]) -> Result<String> {
    let Some(newest) = runs.last() else {
        return Ok("run_0001".to_owned());
    };
    let counter: u64 = newest
        .run_id
        .strip_prefix("run_")
        .and_then(|digits| digits.parse().ok())
        .with_context(|| {
            format!(
                "GET /runs lists run id {:?}, expected run_ and a number",
                newest.run_id
            )
        })?;
    Ok(format!("run_{:04}", counter + 1))
}

fn expect_equal<T: PartialEq + std::fmt::Debug>(
    label: &str,
    field: &str,
    actual: &T,
    expected: &T,
) -> Result<()> {
    ensure!(
        actual == expected,
        "{label}: response {field} is {actual:?}, expected {expected:?}"
    );
    Ok(())
}

/// Fails unless the run's proposals are exactly the two initial ones, all in `status`.
async fn check_proposals(client: &DaemonClient, run_id: &str, status: &str) -> Result<usize> {
    let path = format!("/runs/{run_id}/proposals");
    let list: ProposalList = client.get(&path).await?;
    let label = format!("GET {path}");
    expect_equal(&label, "run_id", &list.run_id, &run_id.to_owned())?;

    let expected_types = ["tag_enrichment", "link_add"];
    ensure!(
        list.proposals.len() == expected_types.len(),
        "{label}: {} proposals listed, expected the {} initial ones",
        list.proposals.len(),
        expected_types.len()
    );
    for (position, (proposal, change_type)) in list.proposals.iter().zip(expected_types).enumerate()
    {
        let expected_id = format!("{run_id}-prop-{:02}", position + 1);
        expect_equal(&label, "proposal_id", &proposal.proposal_id, &expected_id)?;
        expect_equal(
            &label,
            &format!("{expected_id} change_type"),
            &proposal.change_type.as_str(),
            &change_type,
        )?;
        expect_equal(
            &label,
            &format!("{expected_id} status"),
            &proposal.status.as_str(),
            &status,
        )?;
    }
    Ok(list.proposals.len())
}

/// Outcome of the run workflow.
pub(crate) struct RunReport {
    pub(crate) run_id: String,
    pub(crate) profile: Profile,
    pub(crate) approved_count: u64,
    pub(crate) applied_count: u64,
    pub(crate) snapshot_id: String,
    /// The newest run before this one, if any.
    pub(crate) previous_run: Option<RunRecord>,
}

/// Analyses the folder, then approves, applies and rolls back the new run's proposals.
pub(crate) async fn run_onboarding(
    client: &DaemonClient,
    folder: &Path,
    expected_profile: &Profile,
) -> Result<RunReport> {
    let mut earlier: RunList = client.get("/runs").await?;
    let expected_run_id = next_run_id(&earlier.runs)?;

    let folder_path = folder.to_str().with_context(|| {
        format!(
            "folder path {} is not valid UTF-8, so it cannot be sent as JSON",
            folder.display()
        )
    })?;
    let path = "/onboarding/analyze-folder";
    let label = &format!("POST {path}");
    let run: RunRecord = client
        .post(path, &json!({ "folder_path": folder_path }), label)
        .await?;
    expect_equal(label, "run_id", &run.run_id, &expected_run_id)?;
    expect_equal(label, "state", &run.state.as_str(), &"analyzing")?;
    check_profile(&run.profile, expected_profile, label)?;
    let run_id = run.run_id;
    println!(
        "analysed {folder_path}: run {run_id}, note_count {}, orphan_notes {}, link_density {}",
        run.profile.note_count, run.profile.orphan_notes, run.profile.link_density
    );

    let proposal_count = check_proposals(client, &run_id, "pending").await? as u64;

    let path = format!("/runs/{run_id}/approve");
    let label = format!("POST {path}");
    let approved: ApproveResponse = client.post(&path, &json!({}), &label).await?;
    expect_equal(&label, "run_id", &approved.run_id, &run_id)?;
    expect_equal(&label, "state", &approved.state.as_str(), &"approved")?;
    expect_equal(
        &label,
        "approved_count",
        &approved.approved_count,
        &proposal_count,
    )?;
    check_proposals(client, &run_id, "approved").await?;

    let path = format!("/runs/{run_id}/apply");
    let label = format!("POST {path}");
    let applied: ApplyResponse = client.post(&path, &json!({}), &label).await?;
    let snapshot_id = format!("snap-{run_id}-1");
    expect_equal(&label, "run_id", &applied.run_id, &run_id)?;
    expect_equal(&label, "state", &applied.state.as_str(), &"applied")?;
    expect_equal(&label, "snapshot_id", &applied.snapshot_id, &snapshot_id)?;
    expect_equal(
        &label,
        "applied_count",
        &applied.applied_count,
        &proposal_count,
    )?;
    check_proposals(client, &run_id, "applied").await?;

    let path = format!("/runs/{run_id}/rollback");
    let label = format!("POST {path}");
    let rolled_back: RollbackResponse = client.post(&path, &json!({}), &label).await?;
    expect_equal(&label, "run_id", &rolled_back.run_id, &run_id)?;
    expect_equal(&label, "state", &rolled_back.state.as_str(), &"rolled_back")?;
    expect_equal(
        &label,
        "rolled_back_snapshot_id",
        &rolled_back.rolled_back_snapshot_id,
        &snapshot_id,
    )?;
    check_proposals(client, &run_id, "approved").await?;

    let second_label = format!("second {label} of {snapshot_id}");
    let refusal = client
        .call_expecting_error(
            Method::POST,
            &path,
            &json!({ "snapshot_id": snapshot_id }),
            &second_label,
            StatusCode::BAD_REQUEST,
        )
        .await?;
    expect_equal(
        &second_label,
        "code",
        &refusal.code.as_str(),
        &"snapshot_already_rolled_back",
    )?;
    expect_equal(
        &second_label,
        "error",
        &refusal.error,
        &format!("snapshot {snapshot_id} is already rolled back"),
    )?;

    let path = format!("/runs/{run_id}");
    let label = format!("GET {path}");
    let final_run: RunRecord = client.get(&path).await?;
    expect_equal(&label, "state", &final_run.state.as_str(), &"rolled_back")?;
    expect_equal(
        &label,
        "snapshot_id",
        &final_run.snapshot_id,
        &Some(snapshot_id.clone()),
    )?;
    expect_equal(
        &label,
        "rolled_back_snapshot_id",
        &final_run.rolled_back_snapshot_id,
        &Some(snapshot_id.clone()),
    )?;
    expect_equal(&label, "profile", &final_run.profile, &run.profile)?;
    println!(
        "run {run_id}: approved {}, applied {} as {snapshot_id}, rolled back; proposals are \
         approved again and a second rollback is refused",
        approved.approved_count, applied.applied_count
    );

    Ok(RunReport {
        run_id,
        profile: run.profile,
        approved_count: approved.approved_count,
        applied_count: applied.applied_count,
        snapshot_id,
        previous_run: earlier.runs.pop(),
    })
}

/// Link targets chosen for each note.
pub(crate) struct LinkPlan {
    /// True when no two notes link to each other, so one-way links are used.
    pub(crate) one_way: bool,
    pub(crate) pairs: Vec<(usize, usize)>,
    /// For each note, the notes proposed as its link targets.
    pub(crate) targets: Vec<BTreeSet<usize>>,
}

pub(crate) fn plan_links(notes: &[Note]) -> LinkPlan {
    let stems: Vec<String> = notes.iter().map(|note| note.stem.clone()).collect();
    let link_targets: Vec<Vec<String>> =
        notes.iter().map(|note| note.link_targets.clone()).collect();
    let graph = link_graph(&stems, &link_targets);
    let pairs = mutual_pairs(&graph);
    if pairs.is_empty() {
        return LinkPlan {
            one_way: true,
            pairs,
            targets: graph,
        };
    }

    let mut targets = vec![BTreeSet::new(); notes.len()];
    for &(a, b) in &pairs {
        targets[a].insert(b);
        targets[b].insert(a);
    }
    LinkPlan {
        one_way: false,
        pairs,
        targets,
    }
}

/// Proposes links from `source` to `targets`, then applies every suggestion.
pub(crate) async fn link_note(
    client: &DaemonClient,
    source: &Note,
    targets: &[&Note],
) -> Result<IdempotentReply> {
    let candidates: Vec<Value> = targets
        .iter()
        .map(|target| json!({ "note_id": target.relative_path, "title": target.title }))
        .collect();
    let label = format!("POST /links/propose for note {:?}", source.relative_path);
    let proposed: ProposeLinksResponse = client
        .post(
            "/links/propose",
            &json!({ "source_note_id": source.relative_path, "candidate_notes": candidates }),
            &label,
        )
        .await?;

    expect_equal(
        &label,
        "source_note_id",
        &proposed.source_note_id.as_str(),
        &source.echoed_id(),
    )?;
    let mut suggested: Vec<&str> = proposed
        .suggestions
        .iter()
        .map(|suggestion| suggestion.target_note_id.as_str())
        .collect();
    suggested.sort_unstable();
    let mut expected: Vec<&str> = targets.iter().map(|target| target.echoed_id()).collect();
    expected.sort_unstable();
    expect_equal(&label, "suggestion targets", &suggested, &expected)?;
    for (earlier, later) in proposed
        .suggestions
        .iter()
        .zip(proposed.suggestions.iter().skip(1))
    {
        ensure!(
            earlier.confidence >= later.confidence,
            "{label}: suggestion {:?} ({}) comes before {:?} ({}), expected highest confidence first",
            earlier.target_note_id,
            earlier.confidence,
            later.target_note_id,
            later.confidence
        );
    }
    for suggestion in &proposed.suggestions {
        ensure!(
            (0.0..=1.0).contains(&suggestion.confidence) && !suggestion.reason.is_empty(),
            "{label}: suggestion for {:?} has confidence {} and reason {:?}, expected a \
             confidence in [0, 1] and a reason",
            suggestion.target_note_id,
            suggestion.confidence,
            suggestion.reason
        );
    }

    let links: Vec<Value> = proposed
        .suggestions
        .iter()
        .map(|suggestion| {
            json!({ "target_note_id": suggestion.target_note_id, "confidence": suggestion.confidence })
        })
        .collect();
    let event_id = source.event_id("links");
    let label = format!("POST /links/apply for note {:?}", source.relative_path);
    let body =
        json!({ "source_note_id": source.relative_path, "event_id": event_id, "links": links });
    let reply = send_idempotent(client, "/links/apply", &body, &event_id, &label).await?;

    let applied: ApplyLinksResponse = decode(reply.body.clone(), &label)?;
    expect_equal(
        &label,
        "source_note_id",
        &applied.source_note_id.as_str(),
        &source.echoed_id(),
    )?;
    expect_equal(
        &label,
        "applied_count",
        &applied.applied_count,
        &(proposed.suggestions.len() as u64),
    )?;
    let applied_links: Vec<(&str, f64, &str)> = applied
        .applied_links
        .iter()
        .map(|link| {
            (
                link.target_note_id.as_str(),
                link.confidence,
                link.status.as_str(),
            )
        })
        .collect();
    let expected_links: Vec<(&str, f64, &str)> = proposed
        .suggestions
        .iter()
        .map(|suggestion| {
            (
                suggestion.target_note_id.as_str(),
                suggestion.confidence,
                "applied",
            )
        })
        .collect();
    expect_equal(&label, "applied_links", &applied_links, &expected_links)?;
    Ok(reply)
}

/// Classifies the notes in batches and returns how many got each `primary_para`.
pub(crate) async fn classify_notes(
    client: &DaemonClient,
    notes: &[Note],
) -> Result<BTreeMap<String, usize>> {
    let mut counts = BTreeMap::new();
    for (batch_index, batch) in notes.chunks(CLASSIFY_BATCH_SIZE).enumerate() {
        let label = format!("POST /organize/classify (batch {})", batch_index + 1);
        let request: Vec<Value> = batch
            .iter()
            .map(|note| json!({ "note_id": note.relative_path, "title": note.title }))
            .collect();
        let response: ClassifyResponse = client
            .post("/organize/classify", &json!({ "notes": request }), &label)
            .await?;
        ensure!(
            response.results.len() == batch.len(),
            "{label}: {} results for {} notes, expected one per note",
            response.results.len(),
            batch.len()
        );

        for (note, result) in batch.iter().zip(&response.results) {
            let note_label = format!("{label}, note {:?}", note.relative_path);
            expect_equal(
                &note_label,
                "note_id",
                &result.note_id.as_str(),
                &note.echoed_id(),
            )?;
            ensure!(
                matches!(
                    result.primary_para.as_str(),
                    "project" | "area" | "resource" | "archive"
                ),
                "{note_label}: primary_para is {:?}, expected project, area, resource or archive",
                result.primary_para
            );
            ensure!(
                result.secondary_para.is_empty(),
                "{note_label}: secondary_para is {:?}, expected []",
                result.secondary_para
            );
            ensure!(
                (0.0..=1.0).contains(&result.confidence),
                "{note_label}: confidence {} is outside [0, 1]",
                result.confidence
            );
            ensure!(
                matches!(result.action_mode.as_str(), "auto" | "suggest" | "manual"),
                "{note_label}: action_mode is {:?}, expected auto, suggest or manual",
                result.action_mode
            );
            *counts.entry(result.primary_para.clone()).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// Asks one question about the note and returns the reply and the gate's reasons.
pub(crate) async fn ask_note(
    client: &DaemonClient,
    note: &Note,
) -> Result<(IdempotentReply, Vec<String>)> {
    let query = format!("What is {} about?", note.title);
    let event_id = note.event_id("ask");
    let label = format!("POST /ask for note {:?}", note.relative_path);
    let body = json!({
        "query": query,
        "event_id": event_id,
        "frontmatter": note.front_matter.fields,
        "tags": note.tags,
        "path": note.relative_path,
        "content": note.body,
    });
    let reply = send_idempotent(client, "/ask", &body, &event_id, &label).await?;

    let asked: AskResponse = decode(reply.body.clone(), &label)?;
    let expected_text = format!("Draft answer for: {}", trim_whitespace(&query));
    expect_equal(&label, "answer.text", &asked.answer.text, &expected_text)?;
    ensure!(
        asked.sensitivity.allowed == asked.sensitivity.reasons.is_empty(),
        "{label}: sensitivity.allowed is {} with reasons {:?}, expected allowed exactly when \
         there is no reason",
        asked.sensitivity.allowed,
        asked.sensitivity.reasons
    );
    Ok((reply, asked.sensitivity.reasons))
}

// Run with `cargo test --example onboard_notes`.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_run_id_follows_newest() {
        let run = |run_id: &str| RunRecord {
            run_id: run_id.to_owned(),
            state: "rolled_back".to_owned(),
            profile: Profile {
                note_count: 0,
                orphan_notes: 0,
                link_density: 0.0,
            },
            snapshot_id: None,
            rolled_back_snapshot_id: None,
        };
        assert_eq!(
            next_run_id(&[]).unwrap(),
            "run_0001",
            "a fresh daemon starts at 1"
        );
        assert_eq!(
            next_run_id(&[run("run_0001"), run("run_9999")]).unwrap(),
            "run_10000",
            "the width grows after 9999"
        );
        assert!(
            next_run_id(&[run("bad")]).is_err(),
            "a malformed id is an error"
        );
    }
}
