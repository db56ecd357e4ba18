//! Cloud-eligibility policy: the sensitivity gate (spec 4.7), budget
//! guardrails (4.5) and provider routing (4.6).

use poem_openapi::Enum;
use serde_json::Value;

use crate::fields::{JsonObject, trim};

// ---------------------------------------------------------------------------
// Sensitivity gate (4.7)
// ---------------------------------------------------------------------------

/// Reason the sensitivity gate rejected a note, in rule order.
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

/// Patterns of secrets in note content, as v1 states them. [`contains_secret`]
/// matches them by hand because `\b` must use v1's word characters (see
/// [`is_word_char`]), which differ from the `regex` crate's.
pub const SECRET_PATTERNS: [&str; 2] = [r"\bOPENAI_API_KEY\b", r"\bsk-[A-Za-z0-9_-]{8,}\b"];

/// The literal of the first secret pattern.
const API_KEY_VARIABLE: &str = "OPENAI_API_KEY";
/// The prefix of the second secret pattern.
const API_KEY_PREFIX: &str = "sk-";
/// Minimum number of key characters after the prefix.
const API_KEY_MIN_CHARS: usize = 8;

/// The note fields that the sensitivity gate reads.
#[derive(Debug, Clone, Copy)]
pub struct NoteFields<'a> {
    pub frontmatter: &'a JsonObject,
    pub tags: &'a [String],
    pub path: &'a str,
    pub content: &'a str,
}

/// Applies the four rules in order and returns the reasons that fired. The
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
    contains_whole_word(content, API_KEY_VARIABLE) || contains_api_key(content)
}

/// Word characters for `\b` as v1 (Python's `re`) defines them: letters and
/// digits of any script, and `_`. The `regex` crate's `\w` differs: it also
/// takes combining marks and connector punctuation but not digits such as `²`.
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn word_before(text: &str, index: usize) -> bool {
    text[..index].chars().next_back().is_some_and(is_word_char)
}

fn word_after(text: &str, index: usize) -> bool {
    text[index..].chars().next().is_some_and(is_word_char)
}

/// Matches `\bWORD\b` for a word that starts and ends with word characters.
fn contains_whole_word(text: &str, word: &str) -> bool {
    text.match_indices(word)
        .any(|(start, _)| !word_before(text, start) && !word_after(text, start + word.len()))
}

/// Matches `\bsk-[A-Za-z0-9_-]{8,}\b`: like the regex engine, a key that is
/// not followed by a word boundary is shortened until it is.
fn contains_api_key(text: &str) -> bool {
    text.match_indices(API_KEY_PREFIX).any(|(start, _)| {
        if word_before(text, start) {
            return false;
        }
        let key_start = start + API_KEY_PREFIX.len();
        let key: Vec<char> = text[key_start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        // The key is ASCII, so its length in chars is its length in bytes.
        let after_key = word_after(text, key_start + key.len());
        (API_KEY_MIN_CHARS..=key.len()).any(|length| {
            let next_is_word = key.get(length).map_or(after_key, |c| is_word_char(*c));
            is_word_char(key[length - 1]) != next_is_word
        })
    })
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

/// Reason the budget rule cannot be evaluated.
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

/// Returns the budget at v1's fixed spend and cap, which is always `normal`.
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

/// Reason routing picked its provider.
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

/// Picks the provider. The first trigger that fires falls back to the cloud
/// when it is allowed, and stays local as `cloud_blocked` when it is not. No
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

/// Returns the provider that each fallback trigger would route to.
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> JsonObject {
        match value {
            Value::Object(map) => map,
            other => panic!("test front matter must be an object, got {other}"),
        }
    }

    fn reasons_for(
        frontmatter: Value,
        tags: &[&str],
        path: &str,
        content: &str,
    ) -> Vec<SensitivityReason> {
        let frontmatter = object(frontmatter);
        let tags: Vec<String> = tags.iter().map(|tag| (*tag).to_owned()).collect();
        sensitivity_reasons(NoteFields {
            frontmatter: &frontmatter,
            tags: &tags,
            path,
            content,
        })
    }

    fn routing(
        local_confidence: f64,
        local_timed_out: bool,
        grounding_failed: bool,
        cloud_allowed: bool,
    ) -> Route {
        route(RoutingInput {
            local_confidence,
            local_timed_out,
            grounding_failed,
            cloud_allowed,
        })
    }

    fn status_at(spend: f64, cap: f64) -> BudgetStatus {
        budget(spend, cap)
            .unwrap_or_else(|error| panic!("spend {spend} with cap {cap} failed: {error}"))
            .status
    }

    // Sensitivity gate: front matter flag and truthiness ------------------

    #[test]
    fn truthiness_table_matches_v1() {
        let cases = [
            (json!(true), true),
            (json!(false), false),
            (json!(null), false),
            (json!(0), false),
            (json!(0.0), false),
            (json!(-0.0), false),
            (json!(1), true),
            (json!(-1), true),
            (json!(0.0001), true),
            (json!(""), false),
            (json!("false"), true),
            (json!("0"), true),
            (json!(" "), true),
            (json!([]), false),
            (json!([false]), true),
            (json!({}), false),
            (json!({ "a": null }), true),
        ];
        for (value, expected) in cases {
            assert_eq!(is_truthy(&value), expected, "truthiness of {value}");
        }
    }

    #[test]
    fn frontmatter_flag_follows_truthiness() {
        for key in FRONTMATTER_FLAGS {
            for (value, blocked) in [
                (json!(true), true),
                (json!("false"), true),
                (json!(" "), true),
                (json!(1), true),
                (json!([0]), true),
                (json!(false), false),
                (json!(null), false),
                (json!(0), false),
                (json!(0.0), false),
                (json!(-0.0), false),
                (json!(""), false),
                (json!([]), false),
                (json!({}), false),
            ] {
                let frontmatter = object(json!({ key: value.clone() }));
                assert_eq!(
                    frontmatter_flag_set(&frontmatter),
                    blocked,
                    "front matter {key} = {value}"
                );
            }
        }
    }

    #[test]
    fn frontmatter_flag_absent_is_false() {
        assert!(
            !frontmatter_flag_set(&object(json!({}))),
            "empty front matter must not block"
        );
        let other_keys = object(json!({ "title": "x", "secret": true, "tags": ["private"] }));
        assert!(
            !frontmatter_flag_set(&other_keys),
            "only `sensitive` and `private` are flag keys"
        );
    }

    #[test]
    fn frontmatter_flag_key_is_case_sensitive() {
        for key in ["Sensitive", "PRIVATE", "Private", " sensitive"] {
            let frontmatter = object(json!({ key: true }));
            assert!(
                !frontmatter_flag_set(&frontmatter),
                "key {key:?} differs from the flag keys and must be ignored"
            );
        }
    }

    #[test]
    fn frontmatter_either_flag_blocks() {
        let only_private = object(json!({ "sensitive": false, "private": "yes" }));
        assert!(
            frontmatter_flag_set(&only_private),
            "a truthy `private` blocks even when `sensitive` is false"
        );
        let only_sensitive = object(json!({ "sensitive": 2, "private": null }));
        assert!(
            frontmatter_flag_set(&only_sensitive),
            "a truthy `sensitive` blocks even when `private` is null"
        );
    }

    // Sensitivity gate: tags ----------------------------------------------

    #[test]
    fn tag_rule_matches_protected_tags() {
        for tag in [
            "private",
            "secret",
            "sensitive",
            "PRIVATE",
            "Secret",
            "SeNsItIvE",
        ] {
            assert!(is_protected_tag(tag), "tag {tag:?} must be protected");
        }
    }

    #[test]
    fn tag_rule_keeps_whitespace_and_hash() {
        for tag in [
            " private",
            "private ",
            "#private",
            "#secret",
            "secrets",
            "privat",
            "",
            "private/x",
        ] {
            assert!(!is_protected_tag(tag), "tag {tag:?} must not be protected");
        }
    }

    #[test]
    fn tag_rule_fires_on_any_tag() {
        let reasons = reasons_for(json!({}), &["work", "#x", "Secret"], "", "");
        assert_eq!(
            reasons,
            vec![SensitivityReason::BlockedByTagRule],
            "one protected tag among others must block"
        );
    }

    #[test]
    fn tag_rule_fires_once() {
        let reasons = reasons_for(json!({}), &["private", "secret", "sensitive"], "", "");
        assert_eq!(
            reasons,
            vec![SensitivityReason::BlockedByTagRule],
            "several protected tags must give the reason once"
        );
    }

    // Sensitivity gate: path ----------------------------------------------

    #[test]
    fn path_rule_blocks_spec_examples() {
        for path in [
            "Private/Finances/budget.md",
            "Finance\\x.md",
            "Secrets/x",
            "  private/x",
            "\tfinance/x\n",
            "private/",
            "FINANCE/",
            "secrets\\deep\\x.md",
        ] {
            assert!(is_protected_path(path), "path {path:?} must be blocked");
        }
    }

    #[test]
    fn path_rule_allows_spec_examples() {
        for path in [
            "private",
            "/private/x",
            "./private/x",
            "notes/private/x",
            "finances/x",
            "secret/x",
            "",
            "   ",
        ] {
            assert!(
                !is_protected_path(path),
                "path {path:?} must not be blocked"
            );
        }
    }

    #[test]
    fn path_rule_trims_v1_whitespace() {
        assert!(
            is_protected_path("\u{1c}\u{3000}private/x"),
            "the path must be trimmed with the v1 whitespace set"
        );
    }

    // Sensitivity gate: secret patterns -----------------------------------

    #[test]
    fn secret_regex_content_table() {
        let cases = [
            ("OPENAI_API_KEY=sk-test-1234", true),
            ("x OPENAI_API_KEY=1", true),
            ("MY_OPENAI_API_KEY", false),
            ("openai_api_key", false),
            ("sk-abcdefg", false),
            ("sk-abcdefgh", true),
            ("sk-abcdefgh-", true),
            ("ask-abcdefgh12", false),
            ("sk-abcdefgh\u{e9}", false),
            ("-sk--------a", true),
            ("sk--------", false),
            ("OPENAI_API_KEY", true),
            ("OPENAI_API_KEYS", false),
            ("", false),
        ];
        for (content, blocked) in cases {
            assert_eq!(contains_secret(content), blocked, "content {content:?}");
        }
    }

    #[test]
    fn secret_word_boundary_uses_v1_word_chars() {
        // Expected values produced by Python's `re`, which v1 uses.
        let cases = [
            ("sk-abcdefgh\u{b2}", false),
            ("sk-abcdefgh\u{bd}", false),
            ("sk-abcdefgh\u{301}", true),
            ("sk-abcdefgh\u{203f}", true),
            ("\u{b2}sk-abcdefgh", false),
            ("\u{301}sk-abcdefgh", true),
            ("\u{3000}OPENAI_API_KEY\u{3000}", true),
            ("\u{e9}OPENAI_API_KEY", false),
            ("OPENAI_API_KEY\u{662}", false),
            ("sk-abcdefgh-\u{e9}", true),
            ("sk-abcdefgh-_", true),
            ("sk-abcdefg-_", true),
            ("sk-abcdef-\u{e9}", false),
        ];
        for (content, blocked) in cases {
            assert_eq!(contains_secret(content), blocked, "content {content:?}");
        }
    }

    #[test]
    fn secret_regex_fires_once() {
        let reasons = reasons_for(json!({}), &[], "", "OPENAI_API_KEY sk-abcdefgh sk-12345678");
        assert_eq!(
            reasons,
            vec![SensitivityReason::BlockedByRegexPattern],
            "several secrets must give the reason once"
        );
    }

    #[test]
    fn secret_regex_reads_content_unmodified() {
        assert!(
            !contains_secret("OpenAI_Api_Key"),
            "the content must not be lower- or upper-cased"
        );
    }

    // Sensitivity gate: whole gate ----------------------------------------

    #[test]
    fn gate_allows_plain_note() {
        let reasons = reasons_for(
            json!({ "Sensitive": true, "title": "x" }),
            &["work"],
            "notes/a.md",
            "nothing secret here",
        );
        assert!(
            reasons.is_empty(),
            "a plain note must be allowed: {reasons:?}"
        );
    }

    #[test]
    fn gate_reasons_in_rule_order() {
        let reasons = reasons_for(
            json!({ "sensitive": "false", "private": 1 }),
            &["secret", "PRIVATE"],
            "finance/q1.md",
            "OPENAI_API_KEY and sk-abcdefgh",
        );
        assert_eq!(
            reasons,
            vec![
                SensitivityReason::BlockedByFrontmatterFlag,
                SensitivityReason::BlockedByTagRule,
                SensitivityReason::BlockedByPathRule,
                SensitivityReason::BlockedByRegexPattern,
            ],
            "every rule must fire once, in rule order"
        );
    }

    #[test]
    fn gate_rules_are_independent() {
        assert_eq!(
            reasons_for(json!({ "private": true }), &[], "", ""),
            vec![SensitivityReason::BlockedByFrontmatterFlag],
            "front matter alone"
        );
        assert_eq!(
            reasons_for(json!({}), &[], "secrets/a", ""),
            vec![SensitivityReason::BlockedByPathRule],
            "path alone"
        );
        assert_eq!(
            reasons_for(json!({}), &[], "", "sk-abcdefgh"),
            vec![SensitivityReason::BlockedByRegexPattern],
            "content alone"
        );
        assert_eq!(
            reasons_for(json!({}), &["sensitive"], "", "sk-abcdefgh"),
            vec![
                SensitivityReason::BlockedByTagRule,
                SensitivityReason::BlockedByRegexPattern,
            ],
            "tag and content, without the rules in between"
        );
    }

    #[test]
    fn gate_policy_constants() {
        assert_eq!(
            PROTECTED_TAGS,
            ["private", "secret", "sensitive"],
            "protected tags, sorted"
        );
        assert_eq!(
            PROTECTED_PATH_PREFIXES,
            ["private/", "secrets/", "finance/"],
            "protected path prefixes, in rule order"
        );
        assert_eq!(SECRET_PATTERNS.len(), 2, "secret pattern count");
    }

    // Budget guardrails ---------------------------------------------------

    #[test]
    fn budget_spec_examples_cap_30() {
        let cases = [
            (0.0, BudgetStatus::Normal),
            (20.0, BudgetStatus::Normal),
            (20.999, BudgetStatus::Normal),
            (21.0, BudgetStatus::Warn70),
            (21.001, BudgetStatus::Warn70),
            (26.999, BudgetStatus::Warn70),
            (27.0, BudgetStatus::Warn90),
            (27.001, BudgetStatus::Warn90),
            (29.999, BudgetStatus::Warn90),
            (30.0, BudgetStatus::HardStop),
            (30.001, BudgetStatus::HardStop),
            (1000.0, BudgetStatus::HardStop),
        ];
        for (spend, expected) in cases {
            assert_eq!(
                status_at(spend, 30.0),
                expected,
                "spend {spend} with cap 30"
            );
        }
    }

    #[test]
    fn budget_utilisation_boundaries() {
        let cases = [
            (0.69999, BudgetStatus::Normal),
            (0.7, BudgetStatus::Warn70),
            (0.89999, BudgetStatus::Warn70),
            (0.9, BudgetStatus::Warn90),
            (0.99999, BudgetStatus::Warn90),
            (1.0, BudgetStatus::HardStop),
        ];
        for (spend, expected) in cases {
            assert_eq!(status_at(spend, 1.0), expected, "utilisation {spend}");
        }
    }

    #[test]
    fn budget_flags_follow_status() {
        for spend in [0.0, 21.0, 27.0, 29.999] {
            let result = budget(spend, 30.0).unwrap();
            assert!(result.cloud_allowed, "spend {spend} must allow the cloud");
            assert!(
                !result.local_only_mode,
                "spend {spend} must not be local-only"
            );
        }
        for spend in [30.0, 31.0] {
            let result = budget(spend, 30.0).unwrap();
            assert!(!result.cloud_allowed, "spend {spend} must block the cloud");
            assert!(result.local_only_mode, "spend {spend} must be local-only");
        }
    }

    #[test]
    fn budget_rejects_negative_spend() {
        for spend in [-0.0001, -1.0, -30.0] {
            assert_eq!(
                budget(spend, 30.0),
                Err(BudgetError::NegativeSpend),
                "spend {spend}"
            );
        }
        assert_eq!(
            BudgetError::NegativeSpend.to_string(),
            "monthly_spend must be >= 0",
            "v1 message for a negative spend"
        );
    }

    #[test]
    fn budget_rejects_non_positive_cap() {
        for cap in [0.0, -0.0, -1.0, -30.0] {
            assert_eq!(
                budget(0.0, cap),
                Err(BudgetError::NonPositiveCap),
                "cap {cap}"
            );
        }
        assert_eq!(
            BudgetError::NonPositiveCap.to_string(),
            "monthly_cap must be > 0",
            "v1 message for a cap <= 0"
        );
    }

    #[test]
    fn budget_zero_spend_is_valid() {
        assert_eq!(
            status_at(-0.0, 30.0),
            BudgetStatus::Normal,
            "negative zero is not a negative spend"
        );
        assert_eq!(
            status_at(0.0, 0.0001),
            BudgetStatus::Normal,
            "any positive cap is valid"
        );
    }

    #[test]
    fn budget_current_is_normal() {
        assert_eq!(
            current_budget(),
            Budget {
                status: BudgetStatus::Normal,
                cloud_allowed: true,
                local_only_mode: false,
            },
            "v1's fixed spend 0 and cap 30"
        );
    }

    // Provider routing ----------------------------------------------------

    #[test]
    fn routing_row_1_timeout() {
        let picked = routing(0.95, true, false, true);
        assert_eq!(picked.provider, "openai", "provider");
        assert!(picked.fallback_used, "fallback_used");
        assert_eq!(picked.reason, RoutingReason::Timeout, "reason");
    }

    #[test]
    fn routing_row_1_blocked() {
        let picked = routing(0.95, true, false, false);
        assert_eq!(picked.provider, "local", "provider");
        assert!(!picked.fallback_used, "fallback_used");
        assert_eq!(picked.reason, RoutingReason::CloudBlocked, "reason");
    }

    #[test]
    fn routing_row_2_grounding() {
        let picked = routing(0.95, false, true, true);
        assert_eq!(picked.provider, "openai", "provider");
        assert!(picked.fallback_used, "fallback_used");
        assert_eq!(picked.reason, RoutingReason::GroundingFailure, "reason");
    }

    #[test]
    fn routing_row_2_blocked() {
        let picked = routing(0.95, false, true, false);
        assert_eq!(picked.provider, "local", "provider");
        assert!(!picked.fallback_used, "fallback_used");
        assert_eq!(picked.reason, RoutingReason::CloudBlocked, "reason");
    }

    #[test]
    fn routing_row_3_low_confidence() {
        let picked = routing(0.69999, false, false, true);
        assert_eq!(picked.provider, "openai", "provider");
        assert!(picked.fallback_used, "fallback_used");
        assert_eq!(picked.reason, RoutingReason::LowConfidence, "reason");
    }

    #[test]
    fn routing_row_3_blocked() {
        let picked = routing(0.69999, false, false, false);
        assert_eq!(picked.provider, "local", "provider");
        assert!(!picked.fallback_used, "fallback_used");
        assert_eq!(picked.reason, RoutingReason::CloudBlocked, "reason");
    }

    #[test]
    fn routing_row_4_local_success() {
        for cloud_allowed in [true, false] {
            let picked = routing(0.70, false, false, cloud_allowed);
            assert_eq!(
                picked,
                Route {
                    provider: "local",
                    fallback_used: false,
                    reason: RoutingReason::LocalSuccess,
                },
                "confidence 0.70 with cloud allowed = {cloud_allowed}"
            );
        }
    }

    #[test]
    fn routing_confidence_threshold() {
        let cases = [
            (0.0, RoutingReason::LowConfidence),
            (0.69999, RoutingReason::LowConfidence),
            (-5.0, RoutingReason::LowConfidence),
            (f64::NEG_INFINITY, RoutingReason::LowConfidence),
            (0.70, RoutingReason::LocalSuccess),
            (0.70001, RoutingReason::LocalSuccess),
            (1.0, RoutingReason::LocalSuccess),
        ];
        for (confidence, expected) in cases {
            assert_eq!(
                routing(confidence, false, false, true).reason,
                expected,
                "confidence {confidence}"
            );
        }
    }

    #[test]
    fn routing_nan_is_not_low() {
        let picked = routing(f64::NAN, false, false, true);
        assert_eq!(
            picked.reason,
            RoutingReason::LocalSuccess,
            "NaN is not below 0.70"
        );
        assert_eq!(picked.provider, "local", "NaN stays local");
    }

    #[test]
    fn routing_row_order() {
        assert_eq!(
            routing(0.1, true, true, true).reason,
            RoutingReason::Timeout,
            "timeout beats grounding failure and low confidence"
        );
        assert_eq!(
            routing(0.1, false, true, true).reason,
            RoutingReason::GroundingFailure,
            "grounding failure beats low confidence"
        );
        assert_eq!(
            routing(0.1, true, true, false).reason,
            RoutingReason::CloudBlocked,
            "any trigger without the cloud is cloud_blocked"
        );
    }

    #[test]
    fn routing_trigger_order() {
        let order: Vec<RoutingReason> = FALLBACK_TRIGGERS
            .iter()
            .map(|(reason, _)| *reason)
            .collect();
        assert_eq!(
            order,
            vec![
                RoutingReason::Timeout,
                RoutingReason::GroundingFailure,
                RoutingReason::LowConfidence,
            ],
            "fallback reasons as GET /policy/routing lists them"
        );
    }

    #[test]
    fn preview_with_cloud_allowed() {
        assert_eq!(
            fallback_preview(true),
            [
                (RoutingReason::Timeout, "openai"),
                (RoutingReason::GroundingFailure, "openai"),
                (RoutingReason::LowConfidence, "openai"),
            ],
            "every trigger falls back to openai"
        );
    }

    #[test]
    fn preview_without_cloud() {
        assert_eq!(
            fallback_preview(false),
            [
                (RoutingReason::Timeout, "local"),
                (RoutingReason::GroundingFailure, "local"),
                (RoutingReason::LowConfidence, "local"),
            ],
            "every trigger stays local at hard stop"
        );
    }

    #[test]
    fn preview_requests_fire_own_trigger() {
        for (trigger, confidence, timed_out, grounding_failed) in FALLBACK_PREVIEWS {
            let picked = routing(confidence, timed_out, grounding_failed, true);
            assert_eq!(
                picked.reason, trigger,
                "the synthetic request for {trigger:?} must fire that trigger"
            );
        }
    }
}
