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
}
