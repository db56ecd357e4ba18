//! Onboards a folder of Markdown notes through a running mind-lite daemon.
//!
//! The client analyses the folder and takes the new run through approve, apply and
//! rollback. It then proposes and applies links between notes that link to each other,
//! classifies every note, and asks one question per note with the note's front matter,
//! tags, path and body, so that the sensitivity gate judges the real notes.
//!
//! The event ids of `/ask` and `/links/apply` are derived from the note's relative path
//! and the SHA-256 of its bytes, so a second run over unchanged notes replays every
//! write. Every idempotent write is also sent once more without an event id, which
//! recomputes the response from the notes without storing anything, and the two bodies
//! must be equal apart from their `idempotency` objects.
//!
//! ```text
//! cargo run --release --example onboard_notes -- --folder notes --expect fresh
//! ```

mod client;
mod notes;
mod replay;
mod steps;
#[path = "../support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, ensure};
use clap::{Parser, ValueEnum};
use serde_json::{Map, Value, json};

use crate::client::DaemonClient;
use crate::notes::{FrontMatterStatus, Note, find_note_paths, load_note};
use crate::steps::{
    RunReport, ask_note, classify_notes, link_note, local_profile, plan_links, run_onboarding,
};
use crate::support::WriteOutcome;

#[derive(Parser, Debug)]
#[command(
    about = "Analyse, link, classify and ask about a folder of Markdown notes through a mind-lite daemon"
)]
struct Args {
    /// Base URL of the mind-lite daemon. Its host must be a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    base_url: String,

    /// Folder of `.md` and `.markdown` notes, searched recursively. The daemon must be
    /// able to read it under the same absolute path.
    #[arg(long)]
    folder: PathBuf,

    /// Fail unless every `/ask` and `/links/apply` write shows this outcome.
    #[arg(long, value_enum)]
    expect: Option<Expectation>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Expectation {
    /// Every write is accepted as new.
    Fresh,
    /// Every write is a replay of an earlier run over the same notes.
    Replay,
}

impl Expectation {
    fn name(self) -> &'static str {
        match self {
            Expectation::Fresh => "fresh",
            Expectation::Replay => "replay",
        }
    }
}

// ---------------------------------------------------------------------------
// Run and summary
// ---------------------------------------------------------------------------

/// One idempotent write of one note.
struct WriteRecord {
    note: String,
    step: &'static str,
    outcome: WriteOutcome,
}

#[derive(Default)]
struct StepCounts {
    accepted: usize,
    replayed: usize,
}

impl StepCounts {
    fn to_json(&self) -> Value {
        json!({ "accepted": self.accepted, "replayed": self.replayed })
    }
}

struct RunSummary {
    run: RunReport,
    front_matter_parsed: usize,
    front_matter_absent: usize,
    front_matter_unparsable: Vec<String>,
    notes_decoded_lossily: Vec<String>,
    link_plan_one_way: bool,
    link_pairs: Vec<(String, String)>,
    link_sources: usize,
    links_applied: u64,
    para_counts: BTreeMap<String, usize>,
    notes_blocked: usize,
    /// Blocked notes by gate reason; a note blocked for two reasons is listed under both.
    blocked_by_reason: BTreeMap<String, Vec<String>>,
    writes: Vec<WriteRecord>,
}

impl RunSummary {
    fn step_counts(&self, step: &str) -> StepCounts {
        let mut counts = StepCounts::default();
        for write in self.writes.iter().filter(|write| write.step == step) {
            match write.outcome {
                WriteOutcome::Accepted => counts.accepted += 1,
                WriteOutcome::Replayed => counts.replayed += 1,
            }
        }
        counts
    }
}

fn print_summary(summary: &RunSummary, note_count: usize) {
    let run = &summary.run;
    println!(
        "profile: note_count {}, orphan_notes {}, link_density {}",
        run.profile.note_count, run.profile.orphan_notes, run.profile.link_density
    );
    println!(
        "run {}: {} proposals approved, {} applied as {}, rolled back",
        run.run_id, run.approved_count, run.applied_count, run.snapshot_id
    );
    println!(
        "front matter: {} parsed, {} absent, {} unparsable{}",
        summary.front_matter_parsed,
        summary.front_matter_absent,
        summary.front_matter_unparsable.len(),
        list_suffix(&summary.front_matter_unparsable)
    );
    if !summary.notes_decoded_lossily.is_empty() {
        println!(
            "notes decoded lossily: {}",
            summary.notes_decoded_lossily.join(", ")
        );
    }
    let one_way_note = if summary.link_plan_one_way {
        ", so one-way links were used"
    } else {
        ""
    };
    println!(
        "mutual link pairs: {}{one_way_note}; links proposed and applied for {} source notes, \
         {} links applied",
        summary.link_pairs.len(),
        summary.link_sources,
        summary.links_applied
    );
    let para: Vec<String> = summary
        .para_counts
        .iter()
        .map(|(para, count)| format!("{para} {count}"))
        .collect();
    println!("classified {note_count} notes: {}", para.join(", "));
    println!(
        "sensitivity gate: {} of {note_count} notes blocked",
        summary.notes_blocked
    );
    for (reason, notes) in &summary.blocked_by_reason {
        println!("  {reason}: {} ({})", notes.len(), notes.join(", "));
    }
    for step in ["ask", "links/apply"] {
        let counts = summary.step_counts(step);
        println!(
            "{step}: {} accepted, {} replayed",
            counts.accepted, counts.replayed
        );
    }

    let blocked: Map<String, Value> = summary
        .blocked_by_reason
        .iter()
        .map(|(reason, notes)| (reason.clone(), json!(notes.len())))
        .collect();
    let json_line = json!({
        "run_id": run.run_id,
        "profile": {
            "note_count": run.profile.note_count,
            "orphan_notes": run.profile.orphan_notes,
            "link_density": run.profile.link_density,
        },
        "front_matter": {
            "parsed": summary.front_matter_parsed,
            "absent": summary.front_matter_absent,
            "unparsable": summary.front_matter_unparsable.len(),
        },
        "link_pairs": summary.link_pairs.len(),
        "link_pairs_one_way": summary.link_plan_one_way,
        "links_applied": summary.links_applied,
        "classified": summary.para_counts,
        "notes_blocked": summary.notes_blocked,
        "blocked_by_reason": blocked,
        "ask": summary.step_counts("ask").to_json(),
        "links_apply": summary.step_counts("links/apply").to_json(),
    });
    println!("{json_line}");
}

fn list_suffix(items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!(" ({})", items.join(", "))
    }
}

/// Lists every way in which the run differs from `expectation`, naming the notes.
fn check_expectation(expectation: Expectation, summary: &RunSummary) -> Vec<String> {
    let mut failures = Vec::new();
    let (expected, expected_name) = match expectation {
        Expectation::Fresh => (WriteOutcome::Accepted, "accepted"),
        Expectation::Replay => (WriteOutcome::Replayed, "a replay (duplicate_event_id)"),
    };
    for write in &summary.writes {
        if write.outcome != expected {
            failures.push(format!(
                "POST /{} for note {:?} was {}, expected {expected_name}",
                write.step,
                write.note,
                write.outcome.as_str()
            ));
        }
    }

    if expectation == Expectation::Replay {
        match &summary.run.previous_run {
            None => failures.push(
                "GET /runs listed no run before this one, expected the run of the first pass"
                    .to_owned(),
            ),
            Some(previous) => {
                if previous.profile != summary.run.profile {
                    failures.push(format!(
                        "the previous run {} has profile {:?}, but this run over the same notes has {:?}",
                        previous.run_id, previous.profile, summary.run.profile
                    ));
                }
                if previous.state != "rolled_back" {
                    failures.push(format!(
                        "the previous run {} is in state {:?}, expected rolled_back",
                        previous.run_id, previous.state
                    ));
                }
            }
        }
    }
    failures
}

/// Runs every step and returns the failures: replies that differ from their
/// recomputation, and with `--expect`, the unmet expectations.
async fn run(args: Args) -> Result<Vec<String>> {
    let client = DaemonClient::new(&args.base_url)?;
    ensure!(
        args.folder.is_dir(),
        "notes folder {} does not exist or is not a folder; check --folder",
        args.folder.display()
    );
    let folder = fs::canonicalize(&args.folder)
        .with_context(|| format!("failed to resolve --folder {}", args.folder.display()))?;

    let mut notes = Vec::new();
    for (relative_path, path) in find_note_paths(&folder)? {
        notes.push(load_note(relative_path, &path)?);
    }
    ensure!(
        !notes.is_empty(),
        "no .md or .markdown notes found under {}; check --folder",
        folder.display()
    );
    for note in &notes {
        if let FrontMatterStatus::Unparsable(reason) = &note.front_matter.status {
            eprintln!(
                "warning: note {:?}: front matter is not used, {reason}; sending frontmatter {{}}",
                note.relative_path
            );
        }
        if note.decoded_lossily {
            eprintln!(
                "warning: note {:?} is not valid UTF-8; invalid bytes were replaced",
                note.relative_path
            );
        }
    }

    let run_report = run_onboarding(&client, &folder, &local_profile(&notes)).await?;
    let mut failures = Vec::new();
    let mut writes = Vec::new();

    let plan = plan_links(&notes);
    if plan.one_way {
        println!("no two notes link to each other, so links are proposed along one-way links");
    }
    for &(a, b) in &plan.pairs {
        println!(
            "mutual link: {} <-> {}",
            notes[a].relative_path, notes[b].relative_path
        );
    }
    let mut link_sources = 0;
    let mut links_applied = 0;
    for (source, targets) in notes.iter().zip(&plan.targets) {
        if targets.is_empty() {
            continue;
        }
        let targets: Vec<&Note> = targets.iter().map(|&index| &notes[index]).collect();
        let reply = link_note(&client, source, &targets).await?;
        link_sources += 1;
        links_applied += reply.body["applied_count"].as_u64().unwrap_or(0);
        if let Some(difference) = reply.difference {
            failures.push(format!(
                "POST /links/apply for note {:?} differs from the recomputation: {difference}",
                source.relative_path
            ));
        }
        writes.push(WriteRecord {
            note: source.relative_path.clone(),
            step: "links/apply",
            outcome: reply.outcome,
        });
    }

    let para_counts = classify_notes(&client, &notes).await?;

    let mut notes_blocked = 0;
    let mut blocked_by_reason: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for note in &notes {
        let (reply, reasons) = ask_note(&client, note).await?;
        let gate = if reasons.is_empty() {
            "allowed".to_owned()
        } else {
            format!("blocked ({})", reasons.join(", "))
        };
        println!(
            "{}: title {:?}, tags {:?}, gate {gate}, ask {}",
            note.relative_path,
            note.title,
            note.tags,
            reply.outcome.as_str()
        );
        if !reasons.is_empty() {
            notes_blocked += 1;
        }
        for reason in reasons {
            blocked_by_reason
                .entry(reason)
                .or_default()
                .push(note.relative_path.clone());
        }
        if let Some(difference) = reply.difference {
            failures.push(format!(
                "POST /ask for note {:?} differs from the recomputation: {difference}",
                note.relative_path
            ));
        }
        writes.push(WriteRecord {
            note: note.relative_path.clone(),
            step: "ask",
            outcome: reply.outcome,
        });
    }

    let summary = RunSummary {
        run: run_report,
        front_matter_parsed: notes
            .iter()
            .filter(|note| note.front_matter.status == FrontMatterStatus::Parsed)
            .count(),
        front_matter_absent: notes
            .iter()
            .filter(|note| note.front_matter.status == FrontMatterStatus::Absent)
            .count(),
        front_matter_unparsable: notes
            .iter()
            .filter(|note| matches!(note.front_matter.status, FrontMatterStatus::Unparsable(_)))
            .map(|note| note.relative_path.clone())
            .collect(),
        notes_decoded_lossily: notes
            .iter()
            .filter(|note| note.decoded_lossily)
            .map(|note| note.relative_path.clone())
            .collect(),
        link_plan_one_way: plan.one_way,
        link_pairs: plan
            .pairs
            .iter()
            .map(|&(a, b)| {
                (
                    notes[a].relative_path.clone(),
                    notes[b].relative_path.clone(),
                )
            })
            .collect(),
        link_sources,
        links_applied,
        para_counts,
        notes_blocked,
        blocked_by_reason,
        writes,
    };
    print_summary(&summary, notes.len());

    if let Some(expectation) = args.expect {
        failures.extend(check_expectation(expectation, &summary));
    }
    Ok(failures)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let expectation = args.expect;

    // Printed by hand so that the message shows its whole context chain on one line,
    // without the backtrace that anyhow adds when RUST_BACKTRACE is set.
    let failures = match run(args).await {
        Ok(failures) => failures,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };

    if failures.is_empty() {
        if let Some(expectation) = expectation {
            println!("expectation {} met", expectation.name());
        }
        return ExitCode::SUCCESS;
    }
    for failure in &failures {
        eprintln!("check failed: {failure}");
    }
    eprintln!(
        "{} checks failed; see the lines above and the daemon log",
        failures.len()
    );
    ExitCode::FAILURE
}
