//! Keyword heuristics: action tiering (spec 4.3), PARA classification (4.8),
//! proposed folders (4.9) and link suggestions (4.10).
//!
//! Every keyword rule lower-cases the title and tests for a substring, so
//! `Hectarea` is an area and `Atlassian` goes to `Projects`, as in v1.

use poem_openapi::Enum;

// ---------------------------------------------------------------------------
// Action tiering (4.3)
// ---------------------------------------------------------------------------

/// How risky a proposed change is.
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

/// How a proposed change may be carried out.
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

/// Why action tiering refused its input.
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

/// Why a link is suggested.
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
