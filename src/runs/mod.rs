//! Onboarding runs: a folder analysis creates a run with two proposals, which
//! are approved, applied (taking a snapshot) and rolled back.
//!
//! Each action runs in one write transaction: the run lookup, the selection
//! and every update commit together or not at all.

pub mod scan;
pub mod store;

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use serde_json::Value;

use crate::{
    db::Database,
    error::AppError,
    rules::runs::{FolderProfile, ProposalStatus, RunState, check_rollback},
};

pub use store::{ProposalRecord, RunRecord};

/// Analyses a folder and stores a new run with its initial proposals. A
/// failed analysis stores nothing and uses up no run id.
pub async fn analyze_folder(
    db: &Database,
    folder_path: &str,
    vault_root: Option<&Path>,
) -> Result<RunRecord, AppError> {
    let profile = {
        let folder_path = folder_path.to_owned();
        let vault_root = vault_root.map(Path::to_owned);
        // The request's span goes along so that scan warnings carry its id.
        let span = tracing::Span::current();
        // A blocking task cannot be aborted: dropping this future (client gone,
        // shutdown timeout) sets the flag, and the scan stops at its next check.
        let cancel = CancelOnDrop::default();
        let cancelled = Arc::clone(&cancel.0);
        tokio::task::spawn_blocking(move || {
            span.in_scope(|| scan::scan_folder(&folder_path, vault_root.as_deref(), &cancelled))
        })
        .await
        .map_err(|error| {
            AppError::Internal(anyhow::anyhow!("folder scan task failed: {error}"))
        })??
    };
    store_run(db, folder_path, profile).await
}

/// Sets its flag when dropped.
#[derive(Default)]
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

async fn store_run(
    db: &Database,
    folder_path: &str,
    profile: FolderProfile,
) -> Result<RunRecord, AppError> {
    let mut transaction = db.writer.begin_with("BEGIN IMMEDIATE").await?;
    let run = store::create_run(&mut transaction, folder_path, profile).await?;
    transaction.commit().await?;
    tracing::info!(
        run_id = %run.run_id,
        note_count = run.note_count,
        orphan_notes = run.orphan_notes,
        "folder analysed, run created"
    );
    Ok(run)
}

/// Returns the run, or the 404 `unknown run id: {run_id}`.
pub async fn require_run(
    executor: impl sqlx::SqliteExecutor<'_>,
    run_id: &str,
) -> Result<RunRecord, AppError> {
    store::find_run(executor, run_id)
        .await?
        .ok_or_else(|| AppError::UnknownRun {
            run_id: run_id.to_owned(),
        })
}

/// The outcome of approve or apply.
#[derive(Debug, Clone)]
pub struct ActionOutcome {
    pub run_id: String,
    /// The number of proposals selected.
    pub count: u64,
    /// The snapshot taken by apply.
    pub snapshot_id: Option<String>,
}

/// Selects the proposals that approve and apply act on: those not yet
/// applied whose change type is in `change_types`, or all of them when it is
/// `None`.
fn select<'a>(
    proposals: &'a [ProposalRecord],
    change_types: Option<&[String]>,
) -> Vec<&'a ProposalRecord> {
    proposals
        .iter()
        .filter(|proposal| {
            ProposalStatus::parse(&proposal.status).is_some_and(ProposalStatus::is_selectable)
        })
        .filter(|proposal| change_types.is_none_or(|types| types.contains(&proposal.change_type)))
        .collect()
}

fn no_matching(action: &str) -> AppError {
    AppError::BadRequest {
        message: format!("no matching proposals to {action}"),
        code: "no_matching_proposals",
        field: None,
    }
}

/// The `change_types` field as read from the body. An invalid value is
/// reported only once the run is found, because v1 reports an unknown run
/// first.
pub enum ChangeTypes {
    All,
    Only(Vec<String>),
    Invalid,
}

impl ChangeTypes {
    fn resolve(&self) -> Result<Option<&[String]>, AppError> {
        match self {
            Self::All => Ok(None),
            Self::Only(types) => Ok(Some(types)),
            Self::Invalid => Err(AppError::invalid_field(
                "change_types",
                "change_types must be a list of strings",
            )),
        }
    }
}

/// Approves the selected proposals; already approved ones are selected and
/// counted again, as in v1.
pub async fn approve(
    db: &Database,
    run_id: &str,
    change_types: &ChangeTypes,
) -> Result<ActionOutcome, AppError> {
    let mut transaction = db.writer.begin_with("BEGIN IMMEDIATE").await?;
    require_run(&mut *transaction, run_id).await?;
    let change_types = change_types.resolve()?;
    let proposals = store::list_proposals(&mut *transaction, run_id).await?;
    let selected = select(&proposals, change_types);
    if selected.is_empty() {
        return Err(no_matching("approve"));
    }
    for proposal in &selected {
        store::set_proposal_status(
            &mut transaction,
            &proposal.proposal_id,
            ProposalStatus::Approved,
        )
        .await?;
    }
    store::set_run_state(&mut transaction, run_id, RunState::Approved).await?;
    transaction.commit().await?;
    tracing::info!(run_id, approved = selected.len(), "proposals approved");
    Ok(ActionOutcome {
        run_id: run_id.to_owned(),
        count: selected.len() as u64,
        snapshot_id: None,
    })
}

/// Applies the selected proposals, pending ones included (v1 clients rely on
/// applying without approving), and records a snapshot of them.
pub async fn apply(
    db: &Database,
    run_id: &str,
    change_types: &ChangeTypes,
) -> Result<ActionOutcome, AppError> {
    let mut transaction = db.writer.begin_with("BEGIN IMMEDIATE").await?;
    require_run(&mut *transaction, run_id).await?;
    let change_types = change_types.resolve()?;
    let proposals = store::list_proposals(&mut *transaction, run_id).await?;
    let selected: Vec<String> = select(&proposals, change_types)
        .into_iter()
        .map(|proposal| proposal.proposal_id.clone())
        .collect();
    if selected.is_empty() {
        return Err(no_matching("apply"));
    }
    for proposal_id in &selected {
        store::set_proposal_status(&mut transaction, proposal_id, ProposalStatus::Applied).await?;
    }
    let snapshot_id = store::create_snapshot(&mut transaction, run_id, &selected).await?;
    transaction.commit().await?;
    tracing::info!(
        run_id,
        snapshot_id,
        applied = selected.len(),
        "proposals applied"
    );
    Ok(ActionOutcome {
        run_id: run_id.to_owned(),
        count: selected.len() as u64,
        snapshot_id: Some(snapshot_id),
    })
}

/// Rolls back the run's newest snapshot. `requested` is the request's
/// `snapshot_id` value; absent or `null` means the run's current snapshot. Its
/// proposals return to `approved`.
pub async fn rollback(
    db: &Database,
    run_id: &str,
    requested: Option<&Value>,
) -> Result<String, AppError> {
    let mut transaction = db.writer.begin_with("BEGIN IMMEDIATE").await?;
    let run = require_run(&mut *transaction, run_id).await?;
    let resolved = match requested {
        None | Some(Value::Null) => run.snapshot_id.as_deref(),
        Some(Value::String(snapshot_id)) => Some(snapshot_id.as_str()),
        Some(_) => None,
    };
    let snapshot_id = match resolved {
        Some(snapshot_id) if !snapshot_id.is_empty() => snapshot_id.to_owned(),
        _ => return Err(AppError::required("snapshot_id")),
    };
    let snapshots = store::list_snapshots(&mut *transaction, run_id).await?;
    check_rollback(&snapshots, &snapshot_id).map_err(|refusal| AppError::BadRequest {
        message: refusal.to_string(),
        code: refusal.code(),
        field: Some("snapshot_id".into()),
    })?;
    store::roll_back_snapshot(&mut transaction, run_id, &snapshot_id).await?;
    transaction.commit().await?;
    tracing::info!(run_id, snapshot_id, "snapshot rolled back");
    Ok(snapshot_id)
}
