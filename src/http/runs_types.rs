//! Request and response schemas of folder analysis and runs.

use poem_openapi::Object;

use crate::{
    rules::{
        organize::{ActionMode, RiskTier},
        runs::{ProposalStatus, RunState},
    },
    runs::{ProposalRecord, RunRecord},
};

/// Body of `POST /onboarding/analyze-folder`. Other fields, such as `mode`
/// and `batch_size`, are ignored.
#[derive(Object, Debug)]
pub struct AnalyzeFolderRequest {
    /// Folder of Markdown notes on the daemon's machine; must not be empty. A
    /// relative path is resolved against the daemon's working directory. With
    /// `MIND_LITE_VAULT_ROOT` set, the folder must be inside that root.
    pub folder_path: String,
}

/// Profile of an analysed folder.
#[derive(Object, Debug)]
pub struct FolderProfileBody {
    /// Files below the folder whose extension is `.md` or `.markdown` in any
    /// case; hidden files and folders are skipped.
    pub note_count: i64,
    /// Notes that contain no wiki-link (`[[...]]`).
    pub orphan_notes: i64,
    /// Wiki-links per note, unrounded; 0.0 when there are no notes.
    pub link_density: f64,
}

/// A run record.
#[derive(Object, Debug)]
pub struct RunBody {
    /// `run_` and a counter of at least four digits, such as `run_0001`.
    pub run_id: String,
    /// `analyzing`, `approved`, `applied` or `rolled_back`.
    pub state: RunState,
    /// The profile of the analysed folder.
    pub profile: FolderProfileBody,
    /// The newest snapshot taken by apply; absent before the first apply.
    #[oai(skip_serializing_if_is_none)]
    pub snapshot_id: Option<String>,
    /// The snapshot named by the newest rollback; absent before the first
    /// rollback.
    #[oai(skip_serializing_if_is_none)]
    pub rolled_back_snapshot_id: Option<String>,
}

impl From<RunRecord> for RunBody {
    fn from(run: RunRecord) -> Self {
        Self {
            run_id: run.run_id,
            state: RunState::parse(&run.state).unwrap_or(RunState::Analyzing),
            profile: FolderProfileBody {
                note_count: run.note_count,
                orphan_notes: run.orphan_notes,
                link_density: run.link_density,
            },
            snapshot_id: run.snapshot_id,
            rolled_back_snapshot_id: run.rolled_back_snapshot_id,
        }
    }
}

/// The run list.
#[derive(Object, Debug)]
pub struct RunList {
    /// Runs in creation order.
    pub runs: Vec<RunBody>,
}

/// A proposed change of a run.
#[derive(Object, Debug)]
pub struct ProposalBody {
    /// `{run_id}-prop-` and a two-digit position, such as `run_0001-prop-01`.
    pub proposal_id: String,
    /// `tag_enrichment` or `link_add`.
    pub change_type: String,
    /// `low`, `medium` or `high`.
    pub risk_tier: RiskTier,
    /// Confidence in [0, 1].
    pub confidence: f64,
    /// `auto`, `suggest` or `manual`, from the risk tier and confidence.
    pub action_mode: ActionMode,
    /// `pending`, `approved` or `applied`.
    pub status: ProposalStatus,
}

impl From<ProposalRecord> for ProposalBody {
    fn from(proposal: ProposalRecord) -> Self {
        Self {
            proposal_id: proposal.proposal_id,
            change_type: proposal.change_type,
            risk_tier: RiskTier::parse(&proposal.risk_tier).unwrap_or(RiskTier::High),
            confidence: proposal.confidence,
            action_mode: ActionMode::parse(&proposal.action_mode).unwrap_or(ActionMode::Manual),
            status: ProposalStatus::parse(&proposal.status).unwrap_or(ProposalStatus::Pending),
        }
    }
}

/// A run's proposals.
#[derive(Object, Debug)]
pub struct ProposalList {
    /// The run id.
    pub run_id: String,
    /// Proposals in creation order that match every given filter.
    pub proposals: Vec<ProposalBody>,
}

/// Body of approve and apply. Other fields, such as `scope`, are ignored.
#[derive(Object, Debug)]
pub struct ChangeTypesRequest {
    /// Change types to act on; absent or `null` means all, `[]` means none.
    #[oai(nullable)]
    pub change_types: Option<Vec<String>>,
}

/// Result of an approve.
#[derive(Object, Debug)]
pub struct ApproveResponse {
    /// The run id.
    pub run_id: String,
    /// Always `approved`.
    pub state: RunState,
    /// Proposals approved by this call, already approved ones included.
    pub approved_count: u64,
}

/// Result of an apply.
#[derive(Object, Debug)]
pub struct ApplyResponse {
    /// The run id.
    pub run_id: String,
    /// Always `applied`.
    pub state: RunState,
    /// The snapshot of the applied proposals, `snap-{run_id}-{n}`.
    pub snapshot_id: String,
    /// Proposals applied by this call.
    pub applied_count: u64,
}

/// Body of a rollback.
#[derive(Object, Debug)]
pub struct RollbackRequest {
    /// Snapshot to roll back, compared exactly; absent or `null` means the
    /// run's newest snapshot. Only the newest snapshot can be rolled back, and
    /// only once.
    #[oai(nullable)]
    pub snapshot_id: Option<String>,
}

/// Result of a rollback.
#[derive(Object, Debug)]
pub struct RollbackResponse {
    /// The run id.
    pub run_id: String,
    /// Always `rolled_back`.
    pub state: RunState,
    /// The snapshot that was rolled back.
    pub rolled_back_snapshot_id: String,
}
