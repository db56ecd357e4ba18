//! Cloud-eligibility policy: the sensitivity gate (spec 4.7), budget
//! guardrails (4.5) and provider routing (4.6).

use std::sync::LazyLock;

use poem_openapi::Enum;
use regex::Regex;
use serde_json::Value;

use crate::fields::{JsonObject, trim};

// ---------------------------------------------------------------------------
// Sensitivity gate (4.7)
// ---------------------------------------------------------------------------

/// Why the sensitivity gate refused a note, in rule order.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum SensitivityReason {
    /// `frontmatter.sensitive` or `frontmatter.private` is truthy.
    BlockedByFrontmatterFlag,
    /// A tag, lower-cased, is a protected tag.
    BlockedByTagRule,
    /// The path starts with a protected prefix.
    BlockedByPathRule,
    /// The content contains something that looks like a secret.
    BlockedByRegexPattern,
}

/// Front matter keys whose truthy value blocks a note. Exact, case-sensitive.
pub const FRONTMATTER_FLAGS: [&str; 2] = ["sensitive", "private"];

/// Protected tags, sorted as `GET /policy/sensitivity` lists them.
pub const PROTECTED_TAGS: [&str; 3] = ["private", "secret", "sensitive"];

/// Protected path prefixes, in rule order.
pub const PROTECTED_PATH_PREFIXES: [&str; 3] = ["private/", "secrets/", "finance/"];

/// Patterns of secrets in note content. `\b` is Unicode-aware.
pub const SECRET_PATTERNS: [&str; 2] = [r"\bOPENAI_API_KEY\b", r"\bsk-[A-Za-z0-9_-]{8,}\b"];

static SECRET_REGEXES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    SECRET_PATTERNS
        .iter()
        .map(|pattern| Regex::new(pattern).expect("secret patterns are valid"))
        .collect()
});

/// The note fields that the sensitivity gate reads.
#[derive(Debug, Clone, Copy)]
pub struct NoteFields<'a> {
    pub frontmatter: &'a JsonObject,
    pub tags: &'a [String],
    pub path: &'a str,
    pub content: &'a str,
}

/// Applies the four rules in order and returns the reasons that fired; the
/// note may go to a cloud provider exactly when the list is empty.
pub fn sensitivity_reasons(note: NoteFields<'_>) -> Vec<SensitivityReason> {
    let mut reasons = Vec::new();
    if frontmatter_flag_set(note.frontmatter) {
        reasons.push(SensitivityReason::BlockedByFrontmatterFlag);
    }
    if note.tags.iter().any(|tag| is_protected_tag(tag)) {
        reasons.push(SensitivityReason::BlockedByTagRule);
    }
    if is_protected_path(note.path) {
        reasons.push(SensitivityReason::BlockedByPathRule);
    }
    if contains_secret(note.content) {
        reasons.push(SensitivityReason::BlockedByRegexPattern);
    }
    reasons
}

/// Rule 1: `sensitive` or `private` is truthy in the front matter.
pub fn frontmatter_flag_set(frontmatter: &JsonObject) -> bool {
    FRONTMATTER_FLAGS
        .iter()
        .any(|key| frontmatter.get(*key).is_some_and(is_truthy))
}

/// v1's truthiness (spec 1.3): `false`, `null`, zero, `""`, `[]` and `{}` are
/// false; everything else, the string `"false"` included, is true.
pub fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_none_or(|number| number != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
    }
}

/// Rule 2: the tag, lower-cased but not trimmed and with any `#` kept, is a
/// protected tag.
pub fn is_protected_tag(tag: &str) -> bool {
    let tag = tag.to_lowercase();
    PROTECTED_TAGS.contains(&tag.as_str())
}

/// Rule 3: the path, trimmed, lower-cased and with `\` turned into `/`, starts
/// with a protected prefix.
pub fn is_protected_path(path: &str) -> bool {
    let path = trim(path).to_lowercase().replace('\\', "/");
    PROTECTED_PATH_PREFIXES
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

/// Rule 4: the content matches a secret pattern.
pub fn contains_secret(content: &str) -> bool {
    SECRET_REGEXES.iter().any(|regex| regex.is_match(content))
}

// ---------------------------------------------------------------------------
// Budget guardrails (4.5)
// ---------------------------------------------------------------------------

/// v1's fixed monthly spend; no endpoint changes it.
pub const MONTHLY_SPEND: f64 = 0.0;
/// v1's fixed monthly cap.
pub const MONTHLY_CAP: f64 = 30.0;

/// Budget status by utilisation.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum BudgetStatus {
    /// Below 70 % of the cap.
    Normal,
    /// At least 70 % of the cap.
    Warn70,
    /// At least 90 % of the cap.
    Warn90,
    /// The cap is reached: local providers only.
    HardStop,
}

/// The result of the budget rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub status: BudgetStatus,
    pub cloud_allowed: bool,
    pub local_only_mode: bool,
}

/// Utilisation thresholds, checked top to bottom: (at least, status).
pub const BUDGET_THRESHOLDS: [(f64, BudgetStatus); 3] = [
    (1.0, BudgetStatus::HardStop),
    (0.9, BudgetStatus::Warn90),
    (0.7, BudgetStatus::Warn70),
];

/// Why the budget rule cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("monthly_spend must be >= 0")]
    NegativeSpend,
    #[error("monthly_cap must be > 0")]
    NonPositiveCap,
}

/// Classifies spend against cap.
pub fn budget(monthly_spend: f64, monthly_cap: f64) -> Result<Budget, BudgetError> {
    if monthly_spend < 0.0 {
        return Err(BudgetError::NegativeSpend);
    }
    if monthly_cap <= 0.0 {
        return Err(BudgetError::NonPositiveCap);
    }
    let utilisation = monthly_spend / monthly_cap;
    let status = BUDGET_THRESHOLDS
        .iter()
        .find(|(at_least, _)| utilisation >= *at_least)
        .map_or(BudgetStatus::Normal, |(_, status)| *status);
    let hard_stop = status == BudgetStatus::HardStop;
    Ok(Budget {
        status,
        cloud_allowed: !hard_stop,
        local_only_mode: hard_stop,
    })
}

/// The budget at v1's fixed spend and cap: always `normal`.
pub fn current_budget() -> Budget {
    budget(MONTHLY_SPEND, MONTHLY_CAP).expect("the fixed spend and cap are valid")
}

// ---------------------------------------------------------------------------
// Provider routing (4.6)
// ---------------------------------------------------------------------------

/// The local provider's name.
pub const LOCAL_PROVIDER: &str = "local";
/// The only cloud provider's name.
pub const CLOUD_PROVIDER: &str = "openai";
/// A local confidence strictly below this falls back to the cloud.
pub const LOCAL_CONFIDENCE_THRESHOLD: f64 = 0.70;

/// Why routing picked its provider.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum RoutingReason {
    /// The local provider timed out.
    Timeout,
    /// The local answer failed grounding.
    GroundingFailure,
    /// The local confidence was below the threshold.
    LowConfidence,
    /// A fallback was wanted but the cloud is not allowed.
    CloudBlocked,
    /// The local answer is good enough.
    LocalSuccess,
}

/// Inputs of the routing rule.
#[derive(Debug, Clone, Copy)]
pub struct RoutingInput {
    pub local_confidence: f64,
    pub local_timed_out: bool,
    pub grounding_failed: bool,
    pub cloud_allowed: bool,
}

/// The provider routing picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub provider: &'static str,
    pub fallback_used: bool,
    pub reason: RoutingReason,
}

/// Tells whether a fallback trigger fires for a request.
pub type TriggerCondition = fn(&RoutingInput) -> bool;

/// The fallback triggers in rule order, each with the condition that fires it.
pub const FALLBACK_TRIGGERS: [(RoutingReason, TriggerCondition); 3] = [
    (RoutingReason::Timeout, |input| input.local_timed_out),
    (RoutingReason::GroundingFailure, |input| {
        input.grounding_failed
    }),
    (RoutingReason::LowConfidence, |input| {
        input.local_confidence < LOCAL_CONFIDENCE_THRESHOLD
    }),
];

/// Picks the provider: the first trigger that fires falls back to the cloud
/// when it is allowed, and stays local as `cloud_blocked` when it is not; no
/// trigger means `local_success`.
pub fn route(input: RoutingInput) -> Route {
    let trigger = FALLBACK_TRIGGERS
        .iter()
        .find(|(_, fires)| fires(&input))
        .map(|(reason, _)| *reason);
    match trigger {
        Some(reason) if input.cloud_allowed => Route {
            provider: CLOUD_PROVIDER,
            fallback_used: true,
            reason,
        },
        Some(_) => Route {
            provider: LOCAL_PROVIDER,
            fallback_used: false,
            reason: RoutingReason::CloudBlocked,
        },
        None => Route {
            provider: LOCAL_PROVIDER,
            fallback_used: false,
            reason: RoutingReason::LocalSuccess,
        },
    }
}

/// The synthetic request `GET /policy/routing` previews for each trigger:
/// (trigger, local confidence, timed out, grounding failed).
pub const FALLBACK_PREVIEWS: [(RoutingReason, f64, bool, bool); 3] = [
    (RoutingReason::Timeout, 0.90, true, false),
    (RoutingReason::GroundingFailure, 0.90, false, true),
    (RoutingReason::LowConfidence, 0.60, false, false),
];

/// The provider that each fallback trigger would route to.
pub fn fallback_preview(cloud_allowed: bool) -> [(RoutingReason, &'static str); 3] {
    FALLBACK_PREVIEWS.map(|(trigger, confidence, timed_out, grounding_failed)| {
        let picked = route(RoutingInput {
            local_confidence: confidence,
            local_timed_out: timed_out,
            grounding_failed,
            cloud_allowed,
        });
        (trigger, picked.provider)
    })
}
