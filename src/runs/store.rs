//! SQL for runs, proposals and snapshots. Functions that change state take the
//! connection of the caller's write transaction.

use sqlx::{SqliteConnection, SqliteExecutor};

use crate::{
    rules::runs::{
        FolderProfile, INITIAL_PROPOSALS, ProposalStatus, RunState, SnapshotState, proposal_id,
        run_id, snapshot_id,
    },
    time::now_rfc3339,
};

/// A run as stored.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub run_id: String,
    pub state: String,
    pub note_count: i64,
    pub orphan_notes: i64,
    pub link_density: f64,
    pub snapshot_id: Option<String>,
    pub rolled_back_snapshot_id: Option<String>,
}

/// A proposal as stored.
#[derive(Debug, Clone)]
pub struct ProposalRecord {
    pub proposal_id: String,
    pub change_type: String,
    pub risk_tier: String,
    pub confidence: f64,
    pub action_mode: String,
    pub status: String,
}

/// Row counts for the metrics.
#[derive(Debug, Clone, Copy)]
pub struct RunCounts {
    pub runs: i64,
    pub proposals: i64,
    pub snapshots: i64,
}

/// Stores a new run in state `analyzing` with its two initial proposals and
/// returns it. The run number is the next one AUTOINCREMENT would pick; the
/// caller's write transaction keeps it from being taken twice.
pub async fn create_run(
    connection: &mut SqliteConnection,
    folder_path: &str,
    profile: FolderProfile,
) -> Result<RunRecord, sqlx::Error> {
    // The larger of the AUTOINCREMENT counter and the newest row, so that a
    // counter lowered by hand or by an import cannot collide with a run.
    let last_number = sqlx::query_scalar!(
        r#"select max(
               coalesce((select seq from sqlite_sequence where name = 'runs'), 0),
               coalesce((select max(run_number) from runs), 0)
           ) as "last!: i64""#
    )
    .fetch_one(&mut *connection)
    .await?;
    let run_number = last_number + 1;
    let run_id = run_id(run_number);
    let state = RunState::Analyzing.as_str();
    let now = now_rfc3339();
    sqlx::query!(
        "insert into runs (run_number, run_id, state, folder_path, note_count, orphan_notes,
                           link_density, created_at, updated_at)
         values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
        run_number,
        run_id,
        state,
        folder_path,
        profile.note_count,
        profile.orphan_notes,
        profile.link_density,
        now,
    )
    .execute(&mut *connection)
    .await?;

    let pending = ProposalStatus::Pending.as_str();
    for (index, proposal) in INITIAL_PROPOSALS.iter().enumerate() {
        let position = index as i64 + 1;
        let proposal_id = proposal_id(&run_id, position);
        let risk_tier = proposal.risk_tier.as_str();
        let action_mode = proposal.action_mode().as_str();
        sqlx::query!(
            "insert into proposals (proposal_id, run_id, position, change_type, risk_tier,
                                    confidence, action_mode, status, updated_at)
             values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            proposal_id,
            run_id,
            position,
            proposal.change_type,
            risk_tier,
            proposal.confidence,
            action_mode,
            pending,
            now,
        )
        .execute(&mut *connection)
        .await?;
    }

    Ok(RunRecord {
        run_id,
        state: state.to_owned(),
        note_count: profile.note_count,
        orphan_notes: profile.orphan_notes,
        link_density: profile.link_density,
        snapshot_id: None,
        rolled_back_snapshot_id: None,
    })
}

/// Returns the run with this id, if any.
pub async fn find_run(
    executor: impl SqliteExecutor<'_>,
    run_id: &str,
) -> Result<Option<RunRecord>, sqlx::Error> {
    sqlx::query_as!(
        RunRecord,
        "select run_id, state, note_count, orphan_notes, link_density, snapshot_id,
                rolled_back_snapshot_id
         from runs where run_id = ?1",
        run_id,
    )
    .fetch_optional(executor)
    .await
}

/// Lists runs in creation order, only those in `state` when it is given.
pub async fn list_runs(
    executor: impl SqliteExecutor<'_>,
    state: Option<&str>,
) -> Result<Vec<RunRecord>, sqlx::Error> {
    sqlx::query_as!(
        RunRecord,
        "select run_id, state, note_count, orphan_notes, link_density, snapshot_id,
                rolled_back_snapshot_id
         from runs where ?1 is null or state = ?1
         order by run_number",
        state,
    )
    .fetch_all(executor)
    .await
}

/// Lists a run's proposals in creation order.
pub async fn list_proposals(
    executor: impl SqliteExecutor<'_>,
    run_id: &str,
) -> Result<Vec<ProposalRecord>, sqlx::Error> {
    sqlx::query_as!(
        ProposalRecord,
        "select proposal_id, change_type, risk_tier, confidence, action_mode, status
         from proposals where run_id = ?1
         order by position",
        run_id,
    )
    .fetch_all(executor)
    .await
}

/// Sets the status of one proposal.
pub async fn set_proposal_status(
    connection: &mut SqliteConnection,
    proposal_id: &str,
    status: ProposalStatus,
) -> Result<(), sqlx::Error> {
    let status = status.as_str();
    let now = now_rfc3339();
    sqlx::query!(
        "update proposals set status = ?1, updated_at = ?2 where proposal_id = ?3",
        status,
        now,
        proposal_id,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Sets a run's state.
pub async fn set_run_state(
    connection: &mut SqliteConnection,
    run_id: &str,
    state: RunState,
) -> Result<(), sqlx::Error> {
    let state = state.as_str();
    let now = now_rfc3339();
    sqlx::query!(
        "update runs set state = ?1, updated_at = ?2 where run_id = ?3",
        state,
        now,
        run_id,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Records a snapshot of the proposals an apply changed, makes it the run's
/// current snapshot, and returns its id.
pub async fn create_snapshot(
    connection: &mut SqliteConnection,
    run_id: &str,
    proposal_ids: &[String],
) -> Result<String, sqlx::Error> {
    let taken = sqlx::query_scalar!(
        r#"select count(*) as "count!: i64" from snapshots where run_id = ?1"#,
        run_id,
    )
    .fetch_one(&mut *connection)
    .await?;
    let sequence = taken + 1;
    let snapshot_id = snapshot_id(run_id, sequence);
    let now = now_rfc3339();
    sqlx::query!(
        "insert into snapshots (snapshot_id, run_id, sequence, created_at)
         values (?1, ?2, ?3, ?4)",
        snapshot_id,
        run_id,
        sequence,
        now,
    )
    .execute(&mut *connection)
    .await?;
    for proposal_id in proposal_ids {
        sqlx::query!(
            "insert into snapshot_proposals (snapshot_id, proposal_id) values (?1, ?2)",
            snapshot_id,
            proposal_id,
        )
        .execute(&mut *connection)
        .await?;
    }
    let applied = RunState::Applied.as_str();
    sqlx::query!(
        "update runs set state = ?1, snapshot_id = ?2, updated_at = ?3 where run_id = ?4",
        applied,
        snapshot_id,
        now,
        run_id,
    )
    .execute(&mut *connection)
    .await?;
    Ok(snapshot_id)
}

/// Lists a run's snapshots in creation order.
pub async fn list_snapshots(
    executor: impl SqliteExecutor<'_>,
    run_id: &str,
) -> Result<Vec<SnapshotState>, sqlx::Error> {
    sqlx::query_as!(
        SnapshotState,
        r#"select snapshot_id, rolled_back_at is not null as "rolled_back!: bool"
           from snapshots where run_id = ?1
           order by sequence"#,
        run_id,
    )
    .fetch_all(executor)
    .await
}

/// Rolls a snapshot back: its proposals return to `approved`, the snapshot is
/// marked rolled back, and the run's state becomes `rolled_back`.
pub async fn roll_back_snapshot(
    connection: &mut SqliteConnection,
    run_id: &str,
    snapshot_id: &str,
) -> Result<(), sqlx::Error> {
    let now = now_rfc3339();
    let approved = ProposalStatus::Approved.as_str();
    sqlx::query!(
        "update proposals set status = ?1, updated_at = ?2
         where proposal_id in
             (select proposal_id from snapshot_proposals where snapshot_id = ?3)",
        approved,
        now,
        snapshot_id,
    )
    .execute(&mut *connection)
    .await?;
    sqlx::query!(
        "update snapshots set rolled_back_at = ?1 where snapshot_id = ?2",
        now,
        snapshot_id,
    )
    .execute(&mut *connection)
    .await?;
    let rolled_back = RunState::RolledBack.as_str();
    sqlx::query!(
        "update runs set state = ?1, rolled_back_snapshot_id = ?2, updated_at = ?3
         where run_id = ?4",
        rolled_back,
        snapshot_id,
        now,
        run_id,
    )
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Counts runs, proposals and snapshots.
pub async fn count(executor: impl SqliteExecutor<'_>) -> Result<RunCounts, sqlx::Error> {
    sqlx::query_as!(
        RunCounts,
        r#"select (select count(*) from runs) as "runs!: i64",
                  (select count(*) from proposals) as "proposals!: i64",
                  (select count(*) from snapshots) as "snapshots!: i64""#
    )
    .fetch_one(executor)
    .await
}
