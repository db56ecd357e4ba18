//! Rules of onboarding runs: identifiers (spec 4.1), the initial proposals
//! (4.2), the folder profile (4.4) and rollback validation (4.13).

use std::sync::LazyLock;

use poem_openapi::Enum;
use regex::Regex;

use super::organize::{ActionMode, RiskTier, action_mode};

// ---------------------------------------------------------------------------
// Identifiers (4.1)
// ---------------------------------------------------------------------------

/// `run_` and the run counter, zero-padded to at least four digits.
pub fn run_id(run_number: i64) -> String {
    format!("run_{run_number:04}")
}

/// `{run_id}-prop-` and the 1-based position, zero-padded to two digits.
pub fn proposal_id(run_id: &str, position: i64) -> String {
    format!("{run_id}-prop-{position:02}")
}

/// `snap-{run_id}-{n}`, where n counts the run's snapshots from 1.
pub fn snapshot_id(run_id: &str, sequence: i64) -> String {
    format!("snap-{run_id}-{sequence}")
}

// ---------------------------------------------------------------------------
// Run states and proposals (4.2, 4.14)
// ---------------------------------------------------------------------------

/// The states that the API sets on a run.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum RunState {
    /// Created by a folder analysis.
    Analyzing,
    /// Proposals were approved.
    Approved,
    /// Proposals were applied and a snapshot was taken.
    Applied,
    /// The newest snapshot was rolled back.
    RolledBack,
}

impl RunState {
    pub const ALL: [Self; 4] = [
        Self::Analyzing,
        Self::Approved,
        Self::Applied,
        Self::RolledBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Analyzing => "analyzing",
            Self::Approved => "approved",
            Self::Applied => "applied",
            Self::RolledBack => "rolled_back",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }
}

/// Where a proposal stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ProposalStatus {
    Pending,
    Approved,
    Applied,
}

impl ProposalStatus {
    pub const ALL: [Self; 3] = [Self::Pending, Self::Approved, Self::Applied];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Applied => "applied",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Approve and apply select proposals that are not applied yet.
    pub fn is_selectable(self) -> bool {
        matches!(self, Self::Pending | Self::Approved)
    }
}

/// A proposal as created by a folder analysis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InitialProposal {
    pub change_type: &'static str,
    pub risk_tier: RiskTier,
    pub confidence: f64,
}

impl InitialProposal {
    /// The action mode from the tiering rule (4.3).
    pub fn action_mode(&self) -> ActionMode {
        action_mode(self.risk_tier, self.confidence)
            .expect("initial proposal confidences are within [0, 1]")
    }
}

/// The two proposals of every run, in order, whatever the folder holds.
pub const INITIAL_PROPOSALS: [InitialProposal; 2] = [
    InitialProposal {
        change_type: "tag_enrichment",
        risk_tier: RiskTier::Low,
        confidence: 0.85,
    },
    InitialProposal {
        change_type: "link_add",
        risk_tier: RiskTier::Medium,
        confidence: 0.72,
    },
];

// ---------------------------------------------------------------------------
// Folder profile (4.4)
// ---------------------------------------------------------------------------

/// File extensions of notes, compared case-insensitively.
pub const NOTE_EXTENSIONS: [&str; 2] = ["md", "markdown"];

/// The wiki-link pattern: `[[`, one or more characters other than `]`
/// (newlines included), `]]`.
pub const WIKI_LINK_PATTERN: &str = r"\[\[[^\]]+\]\]";

static WIKI_LINK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(WIKI_LINK_PATTERN).expect("the wiki-link pattern is valid"));

/// Tells whether a file name is a note's: its final extension is `md` or
/// `markdown` in any case. A name that is only `.md` has no extension.
pub fn is_note_file_name(name: &str) -> bool {
    match name.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => NOTE_EXTENSIONS
            .iter()
            .any(|known| extension.eq_ignore_ascii_case(known)),
        _ => false,
    }
}

/// Counts non-overlapping wiki-links, embeds (`![[x]]`) included.
pub fn count_wiki_links(text: &str) -> usize {
    WIKI_LINK.find_iter(text).count()
}

/// The profile of an analysed folder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FolderProfile {
    pub note_count: i64,
    /// Notes that contain no wiki-link; incoming links are not considered.
    pub orphan_notes: i64,
    /// Wiki-links per note, unrounded; 0.0 for an empty folder.
    pub link_density: f64,
}

/// Builds the profile from the wiki-link count of each note.
pub fn folder_profile(links_per_note: &[usize]) -> FolderProfile {
    let note_count = links_per_note.len();
    let orphan_notes = links_per_note.iter().filter(|links| **links == 0).count();
    let total_links: usize = links_per_note.iter().sum();
    let link_density = if note_count == 0 {
        0.0
    } else {
        total_links as f64 / note_count as f64
    };
    FolderProfile {
        note_count: note_count as i64,
        orphan_notes: orphan_notes as i64,
        link_density,
    }
}

// ---------------------------------------------------------------------------
// Rollback validation (4.13, with decision D10)
// ---------------------------------------------------------------------------

/// A snapshot of a run as rollback validation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotState {
    pub snapshot_id: String,
    pub rolled_back: bool,
}

/// Why a rollback is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackRefusal {
    /// The run has no snapshot with that id (ids of other runs do not count).
    #[error("snapshot_not_found")]
    SnapshotNotFound,
    /// The snapshot exists but a newer one was taken after it.
    #[error("not_latest_snapshot")]
    NotLatestSnapshot,
    /// The newest snapshot was rolled back before; v1 repeated the rollback
    /// with 200 (D10).
    #[error("snapshot {0} is already rolled back")]
    AlreadyRolledBack(String),
}

impl RollbackRefusal {
    /// The machine-readable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SnapshotNotFound => "snapshot_not_found",
            Self::NotLatestSnapshot => "not_latest_snapshot",
            Self::AlreadyRolledBack(_) => "snapshot_already_rolled_back",
        }
    }
}

/// Checks a rollback of `requested` against the run's snapshots in creation
/// order: it must be the newest one and not rolled back yet.
pub fn check_rollback(snapshots: &[SnapshotState], requested: &str) -> Result<(), RollbackRefusal> {
    let position = snapshots
        .iter()
        .position(|snapshot| snapshot.snapshot_id == requested)
        .ok_or(RollbackRefusal::SnapshotNotFound)?;
    if position + 1 != snapshots.len() {
        return Err(RollbackRefusal::NotLatestSnapshot);
    }
    if snapshots[position].rolled_back {
        return Err(RollbackRefusal::AlreadyRolledBack(requested.to_owned()));
    }
    Ok(())
}
