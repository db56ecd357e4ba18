//! Rules of onboarding runs: identifiers (spec 4.1), the initial proposals
//! (4.2), the folder profile (4.4) and rollback validation (4.13).

use poem_openapi::Enum;

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

/// Status of a proposal.
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
    /// Returns the action mode from the tiering rule (4.3).
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
    let mut counter = WikiLinkCounter::default();
    counter.feed(text.as_bytes());
    counter.count()
}

/// Counts matches of [`WIKI_LINK_PATTERN`] over bytes fed in chunks, so a
/// note of any size is counted in constant memory. It finds the same
/// leftmost, non-overlapping matches as the regular expression: after `[[`
/// the link text runs to the first `]`, and the match needs a second `]`
/// right after it. Counting bytes gives the same result as counting the
/// decoded text because `[` and `]` never occur inside a multi-byte UTF-8
/// sequence, and an invalid byte, like its replacement character, is not `]`.
#[derive(Debug, Default, Clone)]
pub struct WikiLinkCounter {
    state: LinkState,
    count: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum LinkState {
    /// Looking for `[[`.
    #[default]
    Outside,
    /// The last byte was a `[` that may start a link.
    AfterOpenBracket,
    /// Inside `[[`, with `has_text` set once any link text was seen.
    Inside { has_text: bool },
    /// After `[[text]`, expecting the second `]`.
    Closing,
}

impl WikiLinkCounter {
    /// Advances over the next chunk of the note.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.state = match (self.state, byte) {
                (LinkState::Inside { has_text: true }, b']') => LinkState::Closing,
                (LinkState::Inside { has_text: false }, b']') => LinkState::Outside,
                (LinkState::Inside { .. }, _) => LinkState::Inside { has_text: true },
                (LinkState::Closing, b']') => {
                    self.count += 1;
                    LinkState::Outside
                }
                (LinkState::AfterOpenBracket, b'[') => LinkState::Inside { has_text: false },
                (_, b'[') => LinkState::AfterOpenBracket,
                _ => LinkState::Outside,
            };
        }
    }

    /// Returns the number of complete wiki-links seen so far.
    pub fn count(&self) -> usize {
        self.count
    }
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

/// A snapshot of a run, with the fields that rollback validation reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotState {
    pub snapshot_id: String,
    pub rolled_back: bool,
}

/// Reason a rollback is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackRefusal {
    /// The run has no snapshot with that id (ids of other runs do not count).
    #[error("snapshot_not_found")]
    SnapshotNotFound,
    /// The snapshot exists but a newer one was taken after it.
    #[error("not_latest_snapshot")]
    NotLatestSnapshot,
    /// The newest snapshot was rolled back before. v1 repeated the rollback
    /// and answered 200.
    #[error("snapshot {0} is already rolled back")]
    AlreadyRolledBack(String),
}

impl RollbackRefusal {
    /// Returns the machine-readable error code.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshots(entries: &[(&str, bool)]) -> Vec<SnapshotState> {
        entries
            .iter()
            .map(|(snapshot_id, rolled_back)| SnapshotState {
                snapshot_id: (*snapshot_id).to_owned(),
                rolled_back: *rolled_back,
            })
            .collect()
    }

    // Identifiers ---------------------------------------------------------

    #[test]
    fn run_id_padding() {
        let cases = [
            (1, "run_0001"),
            (42, "run_0042"),
            (999, "run_0999"),
            (9999, "run_9999"),
            (10000, "run_10000"),
            (123456, "run_123456"),
        ];
        for (number, expected) in cases {
            assert_eq!(run_id(number), expected, "run number {number}");
        }
    }

    #[test]
    fn proposal_id_padding() {
        let cases = [
            ("run_0001", 1, "run_0001-prop-01"),
            ("run_0001", 2, "run_0001-prop-02"),
            ("run_0001", 9, "run_0001-prop-09"),
            ("run_0001", 10, "run_0001-prop-10"),
            ("run_0001", 99, "run_0001-prop-99"),
            ("run_10000", 100, "run_10000-prop-100"),
        ];
        for (run, position, expected) in cases {
            assert_eq!(
                proposal_id(run, position),
                expected,
                "proposal {position} of {run}"
            );
        }
    }

    #[test]
    fn snapshot_id_format() {
        let cases = [
            ("run_0001", 1, "snap-run_0001-1"),
            ("run_0001", 2, "snap-run_0001-2"),
            ("run_0001", 10, "snap-run_0001-10"),
            ("run_10000", 3, "snap-run_10000-3"),
        ];
        for (run, sequence, expected) in cases {
            assert_eq!(
                snapshot_id(run, sequence),
                expected,
                "snapshot {sequence} of {run}"
            );
        }
    }

    // Run states and proposals --------------------------------------------

    #[test]
    fn initial_proposals_table() {
        assert_eq!(INITIAL_PROPOSALS.len(), 2, "every run gets two proposals");

        let first = INITIAL_PROPOSALS[0];
        assert_eq!(first.change_type, "tag_enrichment", "first change type");
        assert_eq!(first.risk_tier, RiskTier::Low, "first risk tier");
        assert_eq!(first.confidence, 0.85, "first confidence");
        assert_eq!(first.action_mode(), ActionMode::Auto, "first action mode");

        let second = INITIAL_PROPOSALS[1];
        assert_eq!(second.change_type, "link_add", "second change type");
        assert_eq!(second.risk_tier, RiskTier::Medium, "second risk tier");
        assert_eq!(second.confidence, 0.72, "second confidence");
        assert_eq!(
            second.action_mode(),
            ActionMode::Suggest,
            "second action mode"
        );
    }

    #[test]
    fn run_state_names_round_trip() {
        let names = ["analyzing", "approved", "applied", "rolled_back"];
        for (state, name) in RunState::ALL.into_iter().zip(names) {
            assert_eq!(state.as_str(), name, "name of {state:?}");
            assert_eq!(RunState::parse(name), Some(state), "parse {name:?}");
        }
        for text in ["queued", "Applied", "rolled-back", ""] {
            assert_eq!(RunState::parse(text), None, "run state {text:?}");
        }
    }

    #[test]
    fn proposal_status_round_trip() {
        let names = ["pending", "approved", "applied"];
        for (status, name) in ProposalStatus::ALL.into_iter().zip(names) {
            assert_eq!(status.as_str(), name, "name of {status:?}");
            assert_eq!(ProposalStatus::parse(name), Some(status), "parse {name:?}");
        }
        assert_eq!(ProposalStatus::parse("Pending"), None, "parse is exact");
    }

    #[test]
    fn proposal_status_selectable() {
        assert!(
            ProposalStatus::Pending.is_selectable(),
            "pending proposals are selectable"
        );
        assert!(
            ProposalStatus::Approved.is_selectable(),
            "approved proposals are selectable"
        );
        assert!(
            !ProposalStatus::Applied.is_selectable(),
            "applied proposals are not selectable"
        );
    }

    // Folder profile ------------------------------------------------------

    #[test]
    fn note_file_names() {
        let cases = [
            ("a.md", true),
            ("A.MD", true),
            ("x.Md", true),
            ("x.markdown", true),
            ("x.MarkDown", true),
            ("x.y.md", true),
            ("x.md.bak", false),
            (".md", false),
            ("md", false),
            ("x.", false),
            ("x.mdx", false),
            ("x.txt", false),
            ("markdown", false),
            ("", false),
        ];
        for (name, expected) in cases {
            assert_eq!(is_note_file_name(name), expected, "file name {name:?}");
        }
    }

    #[test]
    fn wiki_link_examples() {
        let cases = [
            ("[[a]]", 1),
            ("[[a|b]]", 1),
            ("![[embed]]", 1),
            ("[[spanning\nlines]]", 1),
            ("[[]]", 0),
            ("[a]", 0),
            ("[[a]", 0),
            ("[[a]b]]", 0),
            ("[[a]][[b]]", 2),
            ("see [[a]] and ![[b.png]] and [[c|d]]", 3),
            ("[[[a]]", 1),
            ("No links", 0),
            ("", 0),
        ];
        for (text, expected) in cases {
            assert_eq!(count_wiki_links(text), expected, "text {text:?}");
        }
    }

    #[test]
    fn profile_spec_examples() {
        assert_eq!(
            folder_profile(&[1, 0]),
            FolderProfile {
                note_count: 2,
                orphan_notes: 1,
                link_density: 0.5,
            },
            "a.md with [[b]] and b.md without links"
        );
        assert_eq!(
            folder_profile(&[0, 2, 0]),
            FolderProfile {
                note_count: 3,
                orphan_notes: 2,
                link_density: 0.6666666666666666,
            },
            "three notes with 0, 2 and 0 links"
        );
    }

    #[test]
    fn profile_empty_folder() {
        let profile = folder_profile(&[]);
        assert_eq!(profile.note_count, 0, "note count");
        assert_eq!(profile.orphan_notes, 0, "orphan notes");
        assert_eq!(profile.link_density, 0.0, "link density of no notes");
        assert!(
            !profile.link_density.is_nan(),
            "an empty folder must not divide by zero"
        );
    }

    #[test]
    fn profile_without_orphans() {
        assert_eq!(
            folder_profile(&[3, 1]),
            FolderProfile {
                note_count: 2,
                orphan_notes: 0,
                link_density: 2.0,
            },
            "two linked notes"
        );
    }

    // Rollback validation -------------------------------------------------

    #[test]
    fn rollback_without_snapshots() {
        assert_eq!(
            check_rollback(&[], "snap-run_0001-1"),
            Err(RollbackRefusal::SnapshotNotFound),
            "a run without snapshots"
        );
    }

    #[test]
    fn rollback_unknown_id() {
        let taken = snapshots(&[("snap-run_0001-1", false), ("snap-run_0001-2", false)]);
        for requested in [
            "snap-run_0002-1",
            "snap-run_0001-3",
            " snap-run_0001-2",
            "snap-run_0001-2 ",
            "SNAP-run_0001-2",
            "",
        ] {
            assert_eq!(
                check_rollback(&taken, requested),
                Err(RollbackRefusal::SnapshotNotFound),
                "requested {requested:?}"
            );
        }
    }

    #[test]
    fn rollback_not_latest() {
        let taken = snapshots(&[("snap-run_0001-1", false), ("snap-run_0001-2", false)]);
        assert_eq!(
            check_rollback(&taken, "snap-run_0001-1"),
            Err(RollbackRefusal::NotLatestSnapshot),
            "an older snapshot"
        );
    }

    #[test]
    fn rollback_not_latest_beats_rolled_back() {
        let taken = snapshots(&[("snap-run_0001-1", true), ("snap-run_0001-2", false)]);
        assert_eq!(
            check_rollback(&taken, "snap-run_0001-1"),
            Err(RollbackRefusal::NotLatestSnapshot),
            "an older snapshot that was rolled back"
        );
    }

    #[test]
    fn rollback_latest_allowed() {
        let single = snapshots(&[("snap-run_0001-1", false)]);
        assert_eq!(
            check_rollback(&single, "snap-run_0001-1"),
            Ok(()),
            "the only snapshot"
        );
        let after_rollback = snapshots(&[("snap-run_0001-1", true), ("snap-run_0001-2", false)]);
        assert_eq!(
            check_rollback(&after_rollback, "snap-run_0001-2"),
            Ok(()),
            "the newest snapshot after an older one was rolled back"
        );
    }

    #[test]
    fn rollback_latest_already_rolled_back() {
        let taken = snapshots(&[("snap-run_0001-1", false), ("snap-run_0001-2", true)]);
        let refusal = check_rollback(&taken, "snap-run_0001-2").unwrap_err();
        assert_eq!(
            refusal,
            RollbackRefusal::AlreadyRolledBack("snap-run_0001-2".to_owned()),
            "the newest snapshot was rolled back before"
        );
        assert_eq!(
            refusal.to_string(),
            "snapshot snap-run_0001-2 is already rolled back",
            "message"
        );
        assert_eq!(refusal.code(), "snapshot_already_rolled_back", "code");
    }

    #[test]
    fn rollback_refusal_messages() {
        assert_eq!(
            RollbackRefusal::SnapshotNotFound.to_string(),
            "snapshot_not_found",
            "v1 message for an unknown snapshot"
        );
        assert_eq!(
            RollbackRefusal::SnapshotNotFound.code(),
            "snapshot_not_found",
            "code for an unknown snapshot"
        );
        assert_eq!(
            RollbackRefusal::NotLatestSnapshot.to_string(),
            "not_latest_snapshot",
            "v1 message for an older snapshot"
        );
        assert_eq!(
            RollbackRefusal::NotLatestSnapshot.code(),
            "not_latest_snapshot",
            "code for an older snapshot"
        );
    }

    #[test]
    fn wiki_link_counter_matches_regex() {
        // Every string of up to 8 characters over an alphabet that exercises
        // every state, compared with the regular expression as the oracle.
        let oracle = regex::Regex::new(WIKI_LINK_PATTERN).expect("valid pattern");
        let alphabet = ['[', ']', 'a', '\n'];
        let mut texts = vec![String::new()];
        for _ in 0..8 {
            let longer: Vec<String> = texts
                .iter()
                .filter(|text| text.len() == texts.last().map_or(0, String::len))
                .flat_map(|text| alphabet.iter().map(move |c| format!("{text}{c}")))
                .collect();
            texts.extend(longer);
        }
        assert!(texts.len() > 80_000, "too few generated texts");
        for text in &texts {
            let expected = oracle.find_iter(text).count();
            assert_eq!(count_wiki_links(text), expected, "text {text:?}");
        }
    }

    #[test]
    fn wiki_link_counter_across_chunks() {
        let text = "a [[b]] c [[d\ne]] ![[f|g]] [[]] [[h] [[i]]";
        let expected = count_wiki_links(text);
        assert_eq!(expected, 4, "whole text");
        for split in 0..=text.len() {
            let mut counter = WikiLinkCounter::default();
            counter.feed(&text.as_bytes()[..split]);
            counter.feed(&text.as_bytes()[split..]);
            assert_eq!(counter.count(), expected, "split at byte {split}");
        }
    }

    #[test]
    fn wiki_link_counter_invalid_utf8() {
        let mut counter = WikiLinkCounter::default();
        counter.feed(b"[[\xff\xfe]] [[\xc3]]");
        assert_eq!(counter.count(), 2, "invalid bytes are link text");
    }
}
