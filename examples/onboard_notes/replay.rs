//! Idempotent writes, each sent with its event id and again without one, and the comparison
//! of the two responses.

use anyhow::{Context, Result, ensure};
use reqwest::Method;
use serde_json::Value;

use crate::client::{DaemonClient, decode};
use crate::support::{Idempotency, WriteOutcome, classify_write, excerpt};

/// Removes the `idempotency` object from a response body and returns it.
fn take_idempotency(body: &mut Value, label: &str) -> Result<Idempotency> {
    let idempotency = body
        .as_object_mut()
        .and_then(|object| object.remove("idempotency"))
        .with_context(|| format!("{label}: the response has no idempotency object"))?;
    decode(idempotency, &format!("{label} (idempotency object)"))
}

/// Serialises a JSON value compactly. Unlike a comparison of `Value`s, a comparison of
/// this text distinguishes objects whose keys are in a different order.
fn json_text(value: &Value) -> String {
    value.to_string()
}

/// Describes the first top-level key in which two response bodies differ, or `None`
/// when their JSON text is identical (key order included).
fn describe_difference(written: &Value, recomputed: &Value) -> Option<String> {
    if json_text(written) == json_text(recomputed) {
        return None;
    }
    let (Some(written), Some(recomputed)) = (written.as_object(), recomputed.as_object()) else {
        return Some(format!(
            "{} differs from {}",
            excerpt(&written.to_string()),
            excerpt(&recomputed.to_string())
        ));
    };
    let written_keys: Vec<&String> = written.keys().collect();
    let recomputed_keys: Vec<&String> = recomputed.keys().collect();
    if written_keys != recomputed_keys {
        return Some(format!(
            "keys {written_keys:?} differ from the recomputed keys {recomputed_keys:?}"
        ));
    }
    let key = written_keys
        .into_iter()
        .find(|key| json_text(&written[key.as_str()]) != json_text(&recomputed[key.as_str()]))?;
    Some(format!(
        "{key} is {} but the recomputation gives {}",
        excerpt(&written[key.as_str()].to_string()),
        excerpt(&recomputed[key.as_str()].to_string())
    ))
}

/// The response of an idempotent write, without its idempotency object.
pub(crate) struct IdempotentReply {
    pub(crate) body: Value,
    pub(crate) outcome: WriteOutcome,
    /// Difference between the body and the response to the same request without an event id.
    pub(crate) difference: Option<String>,
}

/// Sends an idempotent write with `event_id`, then the same body without an event id,
/// and compares the two responses apart from their idempotency objects.
///
/// The request without an event id stores nothing in the daemon, so it recomputes the
/// response from the note alone. A replay must equal it just as an accepted write must.
pub(crate) async fn send_idempotent(
    client: &DaemonClient,
    path: &str,
    body: &Value,
    event_id: &str,
    label: &str,
) -> Result<IdempotentReply> {
    let mut written = client.call(Method::POST, path, Some(body), label).await?;
    let idempotency = take_idempotency(&mut written, label)?;
    let outcome = classify_write(&idempotency, event_id, label)?;

    let mut without_event_id = body.clone();
    if let Some(object) = without_event_id.as_object_mut() {
        object.remove("event_id");
    }
    let recompute_label = format!("{label} (sent again without event_id)");
    let mut recomputed = client
        .call(
            Method::POST,
            path,
            Some(&without_event_id),
            &recompute_label,
        )
        .await?;
    let recomputed_idempotency = take_idempotency(&mut recomputed, &recompute_label)?;
    ensure!(
        recomputed_idempotency.event_id.is_none()
            && !recomputed_idempotency.duplicate
            && recomputed_idempotency.reason == "not_provided",
        "{recompute_label}: idempotency is {recomputed_idempotency:?}, expected event_id null, \
         duplicate false and reason \"not_provided\""
    );

    Ok(IdempotentReply {
        difference: describe_difference(&written, &recomputed),
        body: written,
        outcome,
    })
}

// Run with `cargo test --example onboard_notes`.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn difference_names_changed_key() {
        let written = json!({ "a": 1, "b": [1, 2] });
        assert_eq!(
            describe_difference(&written, &written.clone()),
            None,
            "equal bodies"
        );
        let changed = json!({ "a": 1, "b": [1, 3] });
        assert!(
            describe_difference(&written, &changed).is_some_and(|text| text.starts_with("b ")),
            "the differing key is named"
        );
        let reordered = json!({ "b": [1, 2], "a": 1 });
        assert!(
            describe_difference(&written, &reordered).is_some(),
            "key order is part of the body"
        );
    }
}
