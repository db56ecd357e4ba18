//! Reading request fields with the v1 value classes: trimming, "non-blank
//! string" and the optional `event_id`.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::error::AppError;

/// A JSON request body that is known to be an object.
pub type JsonObject = Map<String, Value>;

/// Tells whether `c` is whitespace for v1: Unicode `White_Space` plus the four
/// separators U+001C..U+001F, which Python's `str.strip` also removes.
pub fn is_v1_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Trims v1 whitespace from both ends.
pub fn trim(text: &str) -> &str {
    text.trim_matches(is_v1_whitespace)
}

/// Returns the trimmed value of a required non-blank string field, or v1's
/// `<field> is required` when it is absent, not a string or blank.
pub fn required_text<'a>(body: &'a JsonObject, field: &'static str) -> Result<&'a str, AppError> {
    match body.get(field) {
        Some(Value::String(text)) if !trim(text).is_empty() => Ok(trim(text)),
        _ => Err(AppError::required(field)),
    }
}

/// A validated, trimmed idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventId(String);

impl EventId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Reads the optional `event_id`: absent or `null` means none; anything that is
/// not a string with a non-blank value is v1's `event_id must be a non-empty
/// string`.
pub fn optional_event_id(body: &JsonObject) -> Result<Option<EventId>, AppError> {
    match body.get("event_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if !trim(text).is_empty() => {
            Ok(Some(EventId(trim(text).to_owned())))
        }
        Some(_) => Err(AppError::invalid_field(
            "event_id",
            "event_id must be a non-empty string",
        )),
    }
}

/// Reads an optional boolean: absent means `default`; anything but `true` or
/// `false` (`null` included) is `<field> must be a boolean`.
pub fn optional_bool(
    body: &JsonObject,
    field: &'static str,
    default: bool,
) -> Result<bool, AppError> {
    match body.get(field) {
        None => Ok(default),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(_) => Err(AppError::invalid_field(
            field,
            format!("{field} must be a boolean"),
        )),
    }
}

/// Reads an optional confidence; absent means `default`. See [`confidence`].
pub fn optional_confidence(
    body: &JsonObject,
    field: &'static str,
    default: f64,
) -> Result<f64, AppError> {
    match body.get(field) {
        None => Ok(default),
        Some(value) => confidence(value, field, field),
    }
}

/// Reads a confidence: a finite JSON number within [0, 1]. v1 also took
/// booleans and any range (D30); here a non-number is v1's `<name> must be a
/// number` and a number out of range is `<name> must be between 0.0 and 1.0`.
/// `field` names the field in the error body, for example `links[2].confidence`.
pub fn confidence(
    value: &Value,
    name: &str,
    field: impl Into<Cow<'static, str>>,
) -> Result<f64, AppError> {
    let Some(number) = value.as_f64() else {
        return Err(AppError::invalid_field(
            field,
            format!("{name} must be a number"),
        ));
    };
    if number.is_finite() && (0.0..=1.0).contains(&number) {
        Ok(number)
    } else {
        Err(AppError::invalid_field(
            field,
            format!("{name} must be between 0.0 and 1.0"),
        ))
    }
}

/// Reads an optional object; absent means empty, anything else (`null`
/// included) is `<field> must be an object`.
pub fn optional_object<'a>(
    body: &'a JsonObject,
    field: &'static str,
) -> Result<Option<&'a JsonObject>, AppError> {
    match body.get(field) {
        None => Ok(None),
        Some(Value::Object(object)) => Ok(Some(object)),
        Some(_) => Err(AppError::invalid_field(
            field,
            format!("{field} must be an object"),
        )),
    }
}

/// Tells whether `value` is a JSON array of strings (the empty array is one).
pub fn as_string_list(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect()
}

/// Reads an optional list of strings; absent means empty, anything else
/// (`null` included) is `<field> must be a list of strings`.
pub fn optional_string_list(
    body: &JsonObject,
    field: &'static str,
) -> Result<Vec<String>, AppError> {
    match body.get(field) {
        None => Ok(Vec::new()),
        Some(value) => as_string_list(value).ok_or_else(|| {
            AppError::invalid_field(field, format!("{field} must be a list of strings"))
        }),
    }
}

/// Reads an optional string, untrimmed; absent means `default`, anything else
/// (`null` included) is `<field> must be a string`.
pub fn optional_string<'a>(
    body: &'a JsonObject,
    field: &'static str,
    default: &'a str,
) -> Result<&'a str, AppError> {
    match body.get(field) {
        None => Ok(default),
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(AppError::invalid_field(
            field,
            format!("{field} must be a string"),
        )),
    }
}

/// Reads a required non-empty list, or `<field> must be a non-empty list`.
pub fn non_empty_list<'a>(
    body: &'a JsonObject,
    field: &'static str,
) -> Result<&'a [Value], AppError> {
    match body.get(field) {
        Some(Value::Array(items)) if !items.is_empty() => Ok(items),
        _ => Err(AppError::invalid_field(
            field,
            format!("{field} must be a non-empty list"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> JsonObject {
        match value {
            Value::Object(map) => map,
            other => panic!("test body must be an object, got {other}"),
        }
    }

    #[test]
    fn trim_removes_v1_whitespace_set() {
        assert_eq!(trim("\u{1c}\u{1f} a b\u{3000}\u{85}"), "a b");
        assert_eq!(trim("\u{a0}x\u{202f}"), "x");
    }

    #[test]
    fn whitespace_set_matches_v1_table() {
        let v1_whitespace = ('\u{9}'..='\u{d}')
            .chain('\u{1c}'..='\u{20}')
            .chain(['\u{85}', '\u{a0}', '\u{1680}'])
            .chain('\u{2000}'..='\u{200a}')
            .chain(['\u{2028}', '\u{2029}', '\u{202f}', '\u{205f}', '\u{3000}']);
        for c in v1_whitespace {
            assert!(is_v1_whitespace(c), "U+{:04X} is v1 whitespace", c as u32);
        }
        for c in [
            '\u{8}', '\u{e}', '\u{1b}', '\u{21}', '\u{180e}', '\u{200b}', '\u{2060}', '\u{feff}',
        ] {
            assert!(
                !is_v1_whitespace(c),
                "U+{:04X} is not v1 whitespace",
                c as u32
            );
        }
    }

    #[test]
    fn trim_keeps_non_whitespace_controls() {
        assert_eq!(trim("\u{1b}a\u{7f}"), "\u{1b}a\u{7f}");
    }

    #[test]
    fn required_text_rejects_blank_and_non_strings() {
        for value in [json!(null), json!(""), json!(" \t"), json!(5), json!(["a"])] {
            let body = object(json!({ "draft_id": value }));
            let error = required_text(&body, "draft_id").unwrap_err();
            assert_eq!(error.to_string(), "draft_id is required");
        }
        let body = object(json!({}));
        assert!(required_text(&body, "draft_id").is_err());
    }

    #[test]
    fn required_text_returns_trimmed_value() {
        let body = object(json!({ "draft_id": "  d1\n" }));
        assert_eq!(required_text(&body, "draft_id").unwrap(), "d1");
    }

    #[test]
    fn event_id_null_and_absent_mean_none() {
        assert_eq!(optional_event_id(&object(json!({}))).unwrap(), None);
        let body = object(json!({ "event_id": null }));
        assert_eq!(optional_event_id(&body).unwrap(), None);
    }

    #[test]
    fn event_id_is_trimmed_and_case_sensitive() {
        let body = object(json!({ "event_id": " E1 " }));
        let event_id = optional_event_id(&body).unwrap().unwrap();
        assert_eq!(event_id.as_str(), "E1");
    }

    #[test]
    fn event_id_rejects_blank_and_non_strings() {
        for value in [json!(""), json!("  "), json!(1), json!(true), json!({})] {
            let body = object(json!({ "event_id": value }));
            let error = optional_event_id(&body).unwrap_err();
            assert_eq!(error.to_string(), "event_id must be a non-empty string");
        }
    }

    /// Splits a 400 into (message, code, field), or fails the test.
    fn invalid(error: AppError) -> (String, &'static str, Option<String>) {
        match error {
            AppError::BadRequest {
                message,
                code,
                field,
            } => (message, code, field.map(Cow::into_owned)),
            other => panic!("expected a 400 for an invalid field, got {other:?}"),
        }
    }

    fn assert_invalid(error: AppError, message: &str, field: &str) {
        let (actual_message, code, actual_field) = invalid(error);
        assert_eq!(actual_message, message, "error message");
        assert_eq!(code, "invalid_field", "error code for {message:?}");
        assert_eq!(
            actual_field.as_deref(),
            Some(field),
            "error field for {message:?}"
        );
    }

    #[test]
    fn optional_bool_absent_uses_default() {
        let body = object(json!({ "other": 1 }));
        assert!(
            optional_bool(&body, "flag", true).unwrap(),
            "absent with default true"
        );
        assert!(
            !optional_bool(&body, "flag", false).unwrap(),
            "absent with default false"
        );
    }

    #[test]
    fn optional_bool_reads_booleans() {
        let body = object(json!({ "flag": true }));
        assert!(
            optional_bool(&body, "flag", false).unwrap(),
            "true overrides the default"
        );
        let body = object(json!({ "flag": false }));
        assert!(
            !optional_bool(&body, "flag", true).unwrap(),
            "false overrides the default"
        );
    }

    #[test]
    fn optional_bool_rejects_non_booleans() {
        for value in [
            json!(null),
            json!(0),
            json!(1),
            json!("true"),
            json!(""),
            json!([]),
            json!({}),
        ] {
            let body = object(json!({ "allow_fallback": value.clone() }));
            let error = optional_bool(&body, "allow_fallback", true).unwrap_err();
            assert_invalid(error, "allow_fallback must be a boolean", "allow_fallback");
        }
    }

    #[test]
    fn confidence_accepts_unit_interval() {
        for (value, expected) in [
            (json!(0), 0.0),
            (json!(0.0), 0.0),
            (json!(-0.0), 0.0),
            (json!(0.5), 0.5),
            (json!(0.70), 0.70),
            (json!(1), 1.0),
            (json!(1.0), 1.0),
        ] {
            let number = confidence(&value, "confidence", "confidence").unwrap();
            assert_eq!(number, expected, "confidence {value}");
        }
    }

    #[test]
    fn confidence_rejects_out_of_range() {
        for value in [
            json!(-0.0001),
            json!(1.0001),
            json!(-1),
            json!(2),
            json!(1e308),
            json!(-1e308),
            json!(u64::MAX),
            json!(i64::MIN),
        ] {
            let error = confidence(&value, "min_confidence", "min_confidence").unwrap_err();
            assert_invalid(
                error,
                "min_confidence must be between 0.0 and 1.0",
                "min_confidence",
            );
        }
    }

    #[test]
    fn confidence_rejects_non_numbers() {
        for value in [
            json!(true),
            json!(false),
            json!(null),
            json!("0.5"),
            json!([0.5]),
            json!({}),
        ] {
            let error = confidence(&value, "local_confidence", "local_confidence").unwrap_err();
            assert_invalid(
                error,
                "local_confidence must be a number",
                "local_confidence",
            );
        }
    }

    #[test]
    fn confidence_field_differs_from_name() {
        let error = confidence(&json!("x"), "confidence", "links[2].confidence").unwrap_err();
        assert_invalid(error, "confidence must be a number", "links[2].confidence");

        let error = confidence(&json!(5), "confidence", "links[0].confidence").unwrap_err();
        assert_invalid(
            error,
            "confidence must be between 0.0 and 1.0",
            "links[0].confidence",
        );
    }

    #[test]
    fn optional_confidence_absent_uses_default() {
        let body = object(json!({}));
        let number = optional_confidence(&body, "min_confidence", 0.0).unwrap();
        assert_eq!(number, 0.0, "absent min_confidence");
        let number = optional_confidence(&body, "local_confidence", 0.9).unwrap();
        assert_eq!(number, 0.9, "absent local_confidence");
    }

    #[test]
    fn optional_confidence_checks_present() {
        let body = object(json!({ "min_confidence": 0.25 }));
        let number = optional_confidence(&body, "min_confidence", 0.0).unwrap();
        assert_eq!(number, 0.25, "present min_confidence");

        let body = object(json!({ "min_confidence": null }));
        let error = optional_confidence(&body, "min_confidence", 0.0).unwrap_err();
        assert_invalid(error, "min_confidence must be a number", "min_confidence");

        let body = object(json!({ "min_confidence": 1.5 }));
        let error = optional_confidence(&body, "min_confidence", 0.0).unwrap_err();
        assert_invalid(
            error,
            "min_confidence must be between 0.0 and 1.0",
            "min_confidence",
        );
    }

    #[test]
    fn optional_object_absent_is_none() {
        let body = object(json!({}));
        assert_eq!(
            optional_object(&body, "frontmatter").unwrap(),
            None,
            "absent frontmatter"
        );
    }

    #[test]
    fn optional_object_returns_object() {
        let body = object(json!({ "frontmatter": { "private": true } }));
        let frontmatter = optional_object(&body, "frontmatter").unwrap();
        assert_eq!(
            frontmatter,
            Some(&object(json!({ "private": true }))),
            "present frontmatter"
        );
        let body = object(json!({ "frontmatter": {} }));
        let frontmatter = optional_object(&body, "frontmatter").unwrap();
        assert_eq!(
            frontmatter.map(Map::len),
            Some(0),
            "an empty object is an object"
        );
    }

    #[test]
    fn optional_object_rejects_non_objects() {
        for value in [json!(null), json!([]), json!(""), json!(0), json!(false)] {
            let body = object(json!({ "frontmatter": value.clone() }));
            let error = optional_object(&body, "frontmatter").unwrap_err();
            assert_invalid(error, "frontmatter must be an object", "frontmatter");
        }
    }

    #[test]
    fn string_list_accepts_string_arrays() {
        assert_eq!(
            as_string_list(&json!([])),
            Some(Vec::new()),
            "the empty array is a list of strings"
        );
        assert_eq!(
            as_string_list(&json!(["a", " b ", ""])),
            Some(vec!["a".to_owned(), " b ".to_owned(), String::new()]),
            "items are kept untrimmed and in order"
        );
    }

    #[test]
    fn string_list_rejects_other_values() {
        for value in [
            json!(null),
            json!("a"),
            json!({}),
            json!(["a", 1]),
            json!([null]),
            json!([["a"]]),
        ] {
            assert_eq!(as_string_list(&value), None, "value {value}");
        }
    }

    #[test]
    fn optional_string_list_absent_is_empty() {
        let body = object(json!({}));
        assert_eq!(
            optional_string_list(&body, "tags").unwrap(),
            Vec::<String>::new(),
            "absent tags"
        );
    }

    #[test]
    fn optional_string_list_reads_list() {
        let body = object(json!({ "tags": ["#x", " private "] }));
        assert_eq!(
            optional_string_list(&body, "tags").unwrap(),
            vec!["#x".to_owned(), " private ".to_owned()],
            "present tags"
        );
    }

    #[test]
    fn optional_string_list_rejects_others() {
        for value in [json!(null), json!("private"), json!([1]), json!({})] {
            let body = object(json!({ "tags": value.clone() }));
            let error = optional_string_list(&body, "tags").unwrap_err();
            assert_invalid(error, "tags must be a list of strings", "tags");
        }
    }

    #[test]
    fn optional_string_absent_uses_default() {
        let body = object(json!({}));
        assert_eq!(
            optional_string(&body, "folder", "Inbox").unwrap(),
            "Inbox",
            "absent folder"
        );
    }

    #[test]
    fn optional_string_is_untrimmed() {
        let body = object(json!({ "folder": " Areas/Health " }));
        assert_eq!(
            optional_string(&body, "folder", "Inbox").unwrap(),
            " Areas/Health ",
            "present folder"
        );
        let body = object(json!({ "folder": "" }));
        assert_eq!(
            optional_string(&body, "folder", "Inbox").unwrap(),
            "",
            "an empty string is a string"
        );
    }

    #[test]
    fn optional_string_rejects_non_strings() {
        for value in [json!(null), json!(0), json!(false), json!([]), json!({})] {
            let body = object(json!({ "path": value.clone() }));
            let error = optional_string(&body, "path", "").unwrap_err();
            assert_invalid(error, "path must be a string", "path");
        }
    }

    #[test]
    fn non_empty_list_returns_items() {
        let body = object(json!({ "links": [{ "a": 1 }, 2] }));
        let items = non_empty_list(&body, "links").unwrap();
        assert_eq!(items, [json!({ "a": 1 }), json!(2)], "items in order");
    }

    #[test]
    fn non_empty_list_rejects_others() {
        let absent = object(json!({}));
        let error = non_empty_list(&absent, "links").unwrap_err();
        assert_invalid(error, "links must be a non-empty list", "links");

        for value in [json!(null), json!([]), json!({}), json!("a"), json!(1)] {
            let body = object(json!({ "links": value.clone() }));
            let error = non_empty_list(&body, "links").unwrap_err();
            assert_invalid(error, "links must be a non-empty list", "links");
        }
    }
}
