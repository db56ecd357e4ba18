//! The pure rules of the publish pipeline: content normalisation, scoring and
//! export artifacts, with v1's constants.

use crate::fields::{is_v1_whitespace, trim};

/// Normalises draft content for publishing: trims v1 whitespace, then replaces
/// every CR LF pair with LF. A lone CR and inner whitespace are kept.
pub fn prepare_content(content: &str) -> String {
    trim(content).replace("\r\n", "\n")
}

/// The quality scores of a draft, each rounded to two decimals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    pub structure: f64,
    pub clarity: f64,
    pub safety: f64,
    pub overall: f64,
    /// `true` when the rounded overall score is at least [`GATE_THRESHOLD`].
    pub gate_passed: bool,
}

/// Word count at which the structure score reaches 1.0.
const STRUCTURE_FULL_WORDS: f64 = 70.0;
/// Minimum rounded overall score that passes the publish gate.
pub const GATE_THRESHOLD: f64 = 0.80;

/// Scores draft content with v1's formula.
///
/// Words are maximal runs of non-whitespace, so punctuation counts as a word.
/// `todo` is matched as a substring of the lower-cased text (so `mastodon`
/// matches too), as v1 clients expect.
pub fn score(content: &str) -> Scores {
    let text = trim(content);
    let word_count = text
        .split(is_v1_whitespace)
        .filter(|word| !word.is_empty())
        .count();
    let has_todo = text.to_lowercase().contains("todo");

    let structure = (word_count as f64 / STRUCTURE_FULL_WORDS).min(1.0);
    let clarity = if word_count >= 40 && text.contains('.') {
        0.90
    } else if word_count >= 20 {
        0.60
    } else {
        0.40
    };
    let safety = if has_todo { 0.20 } else { 0.90 };
    let overall = ((structure + clarity) + safety) / 3.0;

    let overall_rounded = round_to_hundredths(overall);
    Scores {
        structure: round_to_hundredths(structure),
        clarity: round_to_hundredths(clarity),
        safety: round_to_hundredths(safety),
        overall: overall_rounded,
        gate_passed: overall_rounded >= GATE_THRESHOLD,
    }
}

/// Rounds half away from zero to two decimals. For every value [`score`] can
/// produce this equals v1's round-half-even on the exact binary value, because
/// no such value lies on a tie.
fn round_to_hundredths(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// An export format of `export-for-gom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Markdown,
    Html,
    Json,
}

impl ExportFormat {
    /// Parses the exact, case-sensitive format name (no trimming, as in v1).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "markdown" => Some(Self::Markdown),
            "html" => Some(Self::Html),
            "json" => Some(Self::Json),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Markdown => "markdown",
            Self::Html => "html",
            Self::Json => "json",
        }
    }
}

/// Builds the export artifact of a queued draft.
///
/// `html` wraps the HTML-escaped content in one paragraph (v1 did not escape).
/// `json` is the object `{draft_id, prepared_content, title}` with keys in that
/// alphabetical order, written in v1's JSON text style.
pub fn build_artifact(
    format: ExportFormat,
    draft_id: &str,
    title: &str,
    prepared_content: &str,
) -> String {
    match format {
        ExportFormat::Markdown => prepared_content.to_owned(),
        ExportFormat::Html => format!("<p>{}</p>", escape_html(prepared_content)),
        ExportFormat::Json => crate::v1_json::to_v1_string(&serde_json::json!({
            "draft_id": draft_id,
            "prepared_content": prepared_content,
            "title": title,
        })),
    }
}

/// Escapes the five characters that are special in HTML text and attributes.
fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(count: usize, word: &str) -> String {
        vec![word; count].join(" ")
    }

    #[test]
    fn prepare_trims_and_converts_crlf() {
        assert_eq!(prepare_content("  a\r\nb\rc\n\r\n  "), "a\nb\rc");
    }

    /// The v1 test vectors: (content, structure, clarity, safety, overall, gate).
    #[test]
    fn score_matches_v1_vectors() {
        let sentence = "This is a clear project update with concrete outcomes and next steps.";
        let cases: Vec<(String, f64, f64, f64, f64, bool)> = vec![
            ("TODO".to_owned(), 0.01, 0.4, 0.2, 0.2, false),
            (words(19, "a"), 0.27, 0.4, 0.9, 0.52, false),
            (words(20, "a"), 0.29, 0.6, 0.9, 0.6, false),
            (format!("{} .", words(39, "a")), 0.57, 0.9, 0.9, 0.79, false),
            (format!("{} .", words(40, "a")), 0.59, 0.9, 0.9, 0.8, true),
            (sentence.repeat(4), 0.64, 0.9, 0.9, 0.81, true),
            (words(61, "a"), 0.87, 0.6, 0.9, 0.79, false),
            (words(62, "a"), 0.89, 0.6, 0.9, 0.8, true),
            (words(100, "a"), 1.0, 0.6, 0.9, 0.83, true),
            (words(70, "a."), 1.0, 0.9, 0.9, 0.93, true),
            (
                format!("{} . todo", words(69, "a")),
                1.0,
                0.9,
                0.2,
                0.7,
                false,
            ),
            (
                format!("{}.", words(51, "mastodon")),
                0.73,
                0.9,
                0.2,
                0.61,
                false,
            ),
        ];
        for (content, structure, clarity, safety, overall, gate) in cases {
            let scores = score(&content);
            let label = &content[..content.len().min(40)];
            assert_eq!(scores.structure, structure, "structure of {label:?}");
            assert_eq!(scores.clarity, clarity, "clarity of {label:?}");
            assert_eq!(scores.safety, safety, "safety of {label:?}");
            assert_eq!(scores.overall, overall, "overall of {label:?}");
            assert_eq!(scores.gate_passed, gate, "gate of {label:?}");
        }
    }

    #[test]
    fn score_counts_separator_characters_as_whitespace() {
        let content = format!("{}\u{1c}b", words(19, "a"));
        assert_eq!(score(&content).structure, 0.29);
    }

    #[test]
    fn artifact_markdown_is_content() {
        let artifact = build_artifact(ExportFormat::Markdown, "d1", "T1", "c1 <b>&\"é");
        assert_eq!(artifact, "c1 <b>&\"é");
    }

    #[test]
    fn artifact_html_escapes_special_characters() {
        let artifact = build_artifact(ExportFormat::Html, "d1", "T1", "c1 <b>&\"'é");
        assert_eq!(artifact, "<p>c1 &lt;b&gt;&amp;&quot;&#x27;é</p>");
    }

    #[test]
    fn artifact_json_uses_v1_text_style() {
        let artifact = build_artifact(ExportFormat::Json, "d1", "T1", "c1 <b>&\"é");
        assert_eq!(
            artifact,
            r#"{"draft_id": "d1", "prepared_content": "c1 <b>&\"\u00e9", "title": "T1"}"#
        );
    }

    #[test]
    fn format_parse_is_exact() {
        assert_eq!(ExportFormat::parse("html"), Some(ExportFormat::Html));
        assert_eq!(ExportFormat::parse(" html"), None);
        assert_eq!(ExportFormat::parse("HTML"), None);
        assert_eq!(ExportFormat::parse("pdf"), None);
    }
}
