//! Keyword heuristics: action tiering (spec 4.3), PARA classification (4.8),
//! proposed folders (4.9) and link suggestions (4.10).
//!
//! Every keyword rule lower-cases the title and tests for a substring, so
//! `Hectarea` is an area and `Atlassian` goes to `Projects`, as in v1.

use poem_openapi::Enum;

// ---------------------------------------------------------------------------
// Action tiering (4.3)
// ---------------------------------------------------------------------------

/// Risk level of a proposed change.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum RiskTier {
    Low,
    Medium,
    High,
}

impl RiskTier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Low, Self::Medium, Self::High]
            .into_iter()
            .find(|tier| tier.as_str() == text)
    }
}

/// Mode in which a proposed change may be carried out.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ActionMode {
    /// Safe to apply without review.
    Auto,
    /// Offered to the user, who accepts or declines.
    Suggest,
    /// Only by hand.
    Manual,
}

impl ActionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Suggest => "suggest",
            Self::Manual => "manual",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Auto, Self::Suggest, Self::Manual]
            .into_iter()
            .find(|mode| mode.as_str() == text)
    }
}

/// Per tier: the lowest confidence that earns the lenient mode, and that mode.
/// Below it, or with no threshold, the mode is `manual`.
pub const ACTION_TIERS: [(RiskTier, Option<(f64, ActionMode)>); 3] = [
    (RiskTier::High, None),
    (RiskTier::Medium, Some((0.70, ActionMode::Suggest))),
    (RiskTier::Low, Some((0.80, ActionMode::Auto))),
];

/// Reason action tiering rejected its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TieringError {
    #[error("confidence must be between 0.0 and 1.0")]
    ConfidenceOutOfRange,
}

/// Picks the action mode for a tier and a confidence in [0, 1].
pub fn action_mode(tier: RiskTier, confidence: f64) -> Result<ActionMode, TieringError> {
    if !(0.0..=1.0).contains(&confidence) {
        return Err(TieringError::ConfidenceOutOfRange);
    }
    let threshold = ACTION_TIERS
        .iter()
        .find(|(row_tier, _)| *row_tier == tier)
        .and_then(|(_, threshold)| *threshold);
    Ok(match threshold {
        Some((at_least, mode)) if confidence >= at_least => mode,
        _ => ActionMode::Manual,
    })
}

// ---------------------------------------------------------------------------
// PARA classification (4.8)
// ---------------------------------------------------------------------------

/// The PARA categories.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum Para {
    Project,
    Area,
    Resource,
    Archive,
}

/// (title contains, category, confidence); the first match wins.
pub const PARA_RULES: [(&str, Para, f64); 3] = [
    ("project", Para::Project, 0.86),
    ("area", Para::Area, 0.83),
    ("archive", Para::Archive, 0.81),
];

/// The category and confidence of a title that matches no rule.
pub const PARA_DEFAULT: (Para, f64) = (Para::Resource, 0.79);

/// The risk tier that classification results are tiered with.
pub const CLASSIFY_RISK_TIER: RiskTier = RiskTier::Low;

/// Classifies a note by its title: (category, confidence).
pub fn classify(title: &str) -> (Para, f64) {
    let title = title.to_lowercase();
    PARA_RULES
        .iter()
        .find(|(keyword, _, _)| title.contains(keyword))
        .map_or(PARA_DEFAULT, |(_, para, confidence)| (*para, *confidence))
}

// ---------------------------------------------------------------------------
// Proposed folder (4.9)
// ---------------------------------------------------------------------------

/// The folder of a note whose request names none.
pub const DEFAULT_FOLDER: &str = "Inbox";

/// (any of these keywords in the title, proposed folder); the first match wins.
pub const FOLDER_RULES: [(&[&str], &str); 2] = [
    (&["project", "atlas"], "Projects"),
    (&["archive"], "Archive"),
];

/// The folder proposed when no keyword matches and the current folder is blank.
pub const FALLBACK_FOLDER: &str = "Resources";

/// Proposes a folder: a keyword rule, else the current folder verbatim when it
/// is not blank, else `Resources`.
pub fn proposed_folder<'a>(title: &str, current_folder: &'a str) -> &'a str {
    let title = title.to_lowercase();
    let keyword_folder = FOLDER_RULES
        .iter()
        .find(|(keywords, _)| keywords.iter().any(|keyword| title.contains(keyword)))
        .map(|(_, folder)| *folder);
    match keyword_folder {
        Some(folder) => folder,
        None if !crate::fields::trim(current_folder).is_empty() => current_folder,
        None => FALLBACK_FOLDER,
    }
}

// ---------------------------------------------------------------------------
// Link suggestions (4.10)
// ---------------------------------------------------------------------------

/// Reason a link is suggested.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum LinkReason {
    SharedProjectContext,
    StructuralOverlap,
    SemanticSimilarity,
}

/// (any of these keywords in the candidate title, confidence); first match.
pub const LINK_CONFIDENCE_RULES: [(&[&str], f64); 2] =
    [(&["atlas", "architecture"], 0.88), (&["project"], 0.82)];

/// The confidence of a candidate that matches no rule.
pub const LINK_CONFIDENCE_DEFAULT: f64 = 0.61;

/// (keyword in the candidate title, reason); first match.
pub const LINK_REASON_RULES: [(&str, LinkReason); 2] = [
    ("atlas", LinkReason::SharedProjectContext),
    ("architecture", LinkReason::StructuralOverlap),
];

/// The reason of a candidate that matches no rule.
pub const LINK_REASON_DEFAULT: LinkReason = LinkReason::SemanticSimilarity;

/// Scores a link to a candidate note by its title: (confidence, reason). The
/// two are computed independently.
pub fn link_suggestion(candidate_title: &str) -> (f64, LinkReason) {
    let title = candidate_title.to_lowercase();
    let confidence = LINK_CONFIDENCE_RULES
        .iter()
        .find(|(keywords, _)| keywords.iter().any(|keyword| title.contains(keyword)))
        .map_or(LINK_CONFIDENCE_DEFAULT, |(_, confidence)| *confidence);
    let reason = LINK_REASON_RULES
        .iter()
        .find(|(keyword, _)| title.contains(keyword))
        .map_or(LINK_REASON_DEFAULT, |(_, reason)| *reason);
    (confidence, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(tier: RiskTier, confidence: f64) -> ActionMode {
        action_mode(tier, confidence)
            .unwrap_or_else(|error| panic!("{tier:?} at {confidence} failed: {error}"))
    }

    // Action tiering ------------------------------------------------------

    #[test]
    fn tiering_medium_boundary() {
        assert_eq!(
            mode(RiskTier::Medium, 0.69999),
            ActionMode::Manual,
            "medium below 0.70"
        );
        assert_eq!(
            mode(RiskTier::Medium, 0.70),
            ActionMode::Suggest,
            "medium at 0.70"
        );
        assert_eq!(
            mode(RiskTier::Medium, 1.0),
            ActionMode::Suggest,
            "medium at 1.0"
        );
        assert_eq!(
            mode(RiskTier::Medium, 0.0),
            ActionMode::Manual,
            "medium at 0.0"
        );
    }

    #[test]
    fn tiering_low_boundary() {
        assert_eq!(
            mode(RiskTier::Low, 0.79999),
            ActionMode::Manual,
            "low below 0.80"
        );
        assert_eq!(mode(RiskTier::Low, 0.80), ActionMode::Auto, "low at 0.80");
        assert_eq!(mode(RiskTier::Low, 1.0), ActionMode::Auto, "low at 1.0");
        assert_eq!(mode(RiskTier::Low, 0.0), ActionMode::Manual, "low at 0.0");
    }

    #[test]
    fn tiering_high_is_manual() {
        for confidence in [0.0, 0.5, 0.70, 0.80, 0.99999, 1.0] {
            assert_eq!(
                mode(RiskTier::High, confidence),
                ActionMode::Manual,
                "high at {confidence}"
            );
        }
    }

    #[test]
    fn tiering_accepts_range_ends() {
        for tier in [RiskTier::Low, RiskTier::Medium, RiskTier::High] {
            for confidence in [0.0, -0.0, 1.0] {
                assert!(
                    action_mode(tier, confidence).is_ok(),
                    "{tier:?} at {confidence} is inside [0, 1]"
                );
            }
        }
    }

    #[test]
    fn tiering_rejects_out_of_range() {
        for tier in [RiskTier::Low, RiskTier::Medium, RiskTier::High] {
            for confidence in [
                -0.0001,
                1.0001,
                -1.0,
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ] {
                assert_eq!(
                    action_mode(tier, confidence),
                    Err(TieringError::ConfidenceOutOfRange),
                    "{tier:?} at {confidence}"
                );
            }
        }
    }

    #[test]
    fn tiering_error_message() {
        assert_eq!(
            TieringError::ConfidenceOutOfRange.to_string(),
            "confidence must be between 0.0 and 1.0",
            "v1 message"
        );
    }

    #[test]
    fn tier_and_mode_names_round_trip() {
        for (tier, name) in [
            (RiskTier::Low, "low"),
            (RiskTier::Medium, "medium"),
            (RiskTier::High, "high"),
        ] {
            assert_eq!(tier.as_str(), name, "name of {tier:?}");
            assert_eq!(RiskTier::parse(name), Some(tier), "parse {name:?}");
        }
        for (action, name) in [
            (ActionMode::Auto, "auto"),
            (ActionMode::Suggest, "suggest"),
            (ActionMode::Manual, "manual"),
        ] {
            assert_eq!(action.as_str(), name, "name of {action:?}");
            assert_eq!(ActionMode::parse(name), Some(action), "parse {name:?}");
        }
    }

    #[test]
    fn tier_and_mode_parse_exact() {
        for text in ["Low", "HIGH", " low", "critical", ""] {
            assert_eq!(RiskTier::parse(text), None, "risk tier {text:?}");
        }
        for text in ["Auto", "manual ", "review", ""] {
            assert_eq!(ActionMode::parse(text), None, "action mode {text:?}");
        }
    }

    // PARA classification -------------------------------------------------

    #[test]
    fn para_rows_and_confidence() {
        let cases = [
            ("my project", Para::Project, 0.86),
            ("Area of focus", Para::Area, 0.83),
            ("old ARCHIVE", Para::Archive, 0.81),
            ("misc", Para::Resource, 0.79),
            ("", Para::Resource, 0.79),
        ];
        for (title, para, confidence) in cases {
            assert_eq!(classify(title), (para, confidence), "title {title:?}");
        }
    }

    #[test]
    fn para_spec_examples() {
        let cases = [
            ("Project Atlas Weekly Plan", Para::Project),
            ("Reference Notes: Zettelkasten", Para::Resource),
            ("Hectarea", Para::Area),
            ("archive area project", Para::Project),
            ("archive area", Para::Area),
            ("Projects", Para::Project),
            ("proj ect", Para::Resource),
        ];
        for (title, expected) in cases {
            assert_eq!(classify(title).0, expected, "title {title:?}");
        }
    }

    #[test]
    fn para_action_modes() {
        let cases = [
            ("project", ActionMode::Auto),
            ("area", ActionMode::Auto),
            ("archive", ActionMode::Auto),
            ("misc", ActionMode::Manual),
        ];
        for (title, expected) in cases {
            let (_, confidence) = classify(title);
            assert_eq!(
                mode(CLASSIFY_RISK_TIER, confidence),
                expected,
                "action mode for {title:?}"
            );
        }
    }

    // Proposed folder -----------------------------------------------------

    #[test]
    fn folder_keyword_rows() {
        let cases = [
            ("Atlas Scratchpad", "Inbox", "Projects"),
            ("Atlassian notes", "Inbox", "Projects"),
            ("my PROJECT", "Areas", "Projects"),
            ("project archive", "Areas", "Projects"),
            ("Archived", "Inbox", "Archive"),
            ("archive", "", "Archive"),
        ];
        for (title, folder, expected) in cases {
            assert_eq!(
                proposed_folder(title, folder),
                expected,
                "title {title:?} in folder {folder:?}"
            );
        }
    }

    #[test]
    fn folder_keeps_current_verbatim() {
        assert_eq!(
            proposed_folder("misc", " Areas/Health "),
            " Areas/Health ",
            "a non-blank folder is kept untrimmed"
        );
        assert_eq!(
            proposed_folder("misc", DEFAULT_FOLDER),
            "Inbox",
            "the default folder is kept"
        );
    }

    #[test]
    fn folder_blank_goes_to_resources() {
        for folder in ["", "  ", "\t\n", "\u{1c}\u{3000}"] {
            assert_eq!(
                proposed_folder("misc", folder),
                "Resources",
                "blank folder {folder:?}"
            );
        }
    }

    // Link suggestions ----------------------------------------------------

    #[test]
    fn link_confidence_rows() {
        let cases = [
            ("Atlas", 0.88),
            ("ARCHITECTURE", 0.88),
            ("Project plan", 0.82),
            ("project atlas", 0.88),
            ("misc", 0.61),
            ("", 0.61),
        ];
        for (title, confidence) in cases {
            assert_eq!(link_suggestion(title).0, confidence, "title {title:?}");
        }
    }

    #[test]
    fn link_reason_rows() {
        let cases = [
            ("Atlas", LinkReason::SharedProjectContext),
            ("Architecture", LinkReason::StructuralOverlap),
            ("architecture atlas", LinkReason::SharedProjectContext),
            ("Project plan", LinkReason::SemanticSimilarity),
            ("misc", LinkReason::SemanticSimilarity),
        ];
        for (title, reason) in cases {
            assert_eq!(link_suggestion(title).1, reason, "title {title:?}");
        }
    }

    #[test]
    fn link_rules_are_independent() {
        assert_eq!(
            link_suggestion("My Project"),
            (0.82, LinkReason::SemanticSimilarity),
            "project raises the confidence but not the reason"
        );
        assert_eq!(
            link_suggestion("atlas architecture"),
            (0.88, LinkReason::SharedProjectContext),
            "atlas gives both the confidence and the reason"
        );
        assert_eq!(
            link_suggestion("Architecture of the project"),
            (0.88, LinkReason::StructuralOverlap),
            "architecture wins the confidence over project"
        );
    }
}
