//! Code that both note clients use: the loopback-only HTTP client, the error
//! and idempotency objects of the daemon, how a write is classified, body
//! excerpts for error messages, and the daemon's whitespace and heading rules.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use reqwest::{Client, Url};
use serde::Deserialize;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Maximum number of response-body characters quoted in an error message.
const BODY_EXCERPT_CHARS: usize = 500;

/// The JSON body of every error response of the daemon.
#[derive(Debug, Deserialize)]
pub(crate) struct ApiError {
    pub(crate) error: String,
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) field: Option<String>,
}

/// The `idempotency` object of a write response.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Idempotency {
    pub(crate) event_id: Option<String>,
    pub(crate) duplicate: bool,
    pub(crate) reason: String,
}

/// Result of a write sent with an event id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteOutcome {
    Accepted,
    Replayed,
}

impl WriteOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WriteOutcome::Accepted => "accepted",
            WriteOutcome::Replayed => "replayed",
        }
    }
}

/// Builds an HTTP client for a daemon at `base_url` and returns it with the
/// base URL without its trailing `/`. The URL must be plain `http` on a
/// loopback host.
pub(crate) fn loopback_client(base_url: &str) -> Result<(Client, String)> {
    let parsed = Url::parse(base_url).with_context(|| {
        format!("invalid --base-url {base_url:?}: expected e.g. http://127.0.0.1:8000")
    })?;
    ensure!(
        parsed.scheme() == "http",
        "invalid --base-url {base_url:?}: the daemon serves plain http on loopback, use an http:// URL"
    );
    let host_is_loopback = match parsed.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    };
    ensure!(
        host_is_loopback,
        "invalid --base-url {base_url:?}: the host must be a loopback address such as 127.0.0.1"
    );

    // Without a proxy and without redirects, every request stays on the loopback
    // address, even when *_PROXY variables are set or a response redirects elsewhere.
    let http = Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("failed to build the HTTP client")?;
    Ok((http, base_url.trim_end_matches('/').to_owned()))
}

/// Checks an idempotency object against the event id that was sent and classifies the write.
pub(crate) fn classify_write(
    idempotency: &Idempotency,
    event_id: &str,
    label: &str,
) -> Result<WriteOutcome> {
    ensure!(
        idempotency.event_id.as_deref() == Some(event_id),
        "{label}: response idempotency.event_id is {:?}, expected the event id sent, {event_id:?}",
        idempotency.event_id
    );
    match (idempotency.reason.as_str(), idempotency.duplicate) {
        ("accepted", false) => Ok(WriteOutcome::Accepted),
        ("duplicate_event_id", true) => Ok(WriteOutcome::Replayed),
        (reason, duplicate) => bail!(
            "{label}: response idempotency has reason {reason:?} with duplicate={duplicate}, \
             expected \"accepted\" with false or \"duplicate_event_id\" with true"
        ),
    }
}

/// Quotes the start of a response body for an error message.
pub(crate) fn excerpt(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(BODY_EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}... (truncated)")
    } else {
        format!("{head:?}")
    }
}

/// Trims whitespace as the daemon does: Unicode `White_Space` plus the separators
/// U+001C..U+001F.
///
/// Using the daemon's set means a note that the daemon would reject as blank is
/// recognised here, and a value comes back from the daemon exactly as it was sent.
pub(crate) fn trim_whitespace(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// Removes an optional closing `#` sequence, as in `# Title #`.
pub(crate) fn strip_closing_hashes(heading: &str) -> &str {
    let without_hashes = heading.trim_end_matches('#');
    if without_hashes.len() == heading.len() {
        return heading;
    }
    if without_hashes.is_empty() || without_hashes.ends_with([' ', '\t']) {
        without_hashes.trim_end()
    } else {
        heading
    }
}

// Run with either example's tests, such as `cargo test --example publish_notes`.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_must_be_loopback() {
        assert!(
            loopback_client("http://127.0.0.1:8000").is_ok(),
            "IPv4 loopback"
        );
        assert!(
            loopback_client("http://localhost:8000/").is_ok(),
            "localhost"
        );
        assert!(
            loopback_client("http://[::1]:8000").is_ok(),
            "IPv6 loopback"
        );
        assert!(
            loopback_client("http://10.0.0.1:8000").is_err(),
            "private address"
        );
        assert!(loopback_client("https://127.0.0.1:8000").is_err(), "https");
    }

    #[test]
    fn base_url_loses_trailing_slash() {
        let (_, base_url) = loopback_client("http://localhost:8000/").expect("loopback URL");
        assert_eq!(base_url, "http://localhost:8000");
    }

    #[test]
    fn blank_check_matches_daemon_whitespace() {
        assert_eq!(trim_whitespace("\u{1c} \n\u{3000}"), "");
        assert_eq!(trim_whitespace(" a \u{1f}"), "a");
    }

    #[test]
    fn idempotency_reason_classifies_write() {
        let accepted = Idempotency {
            event_id: Some("mark:a.md:0123".to_owned()),
            duplicate: false,
            reason: "accepted".to_owned(),
        };
        let replayed = Idempotency {
            duplicate: true,
            reason: "duplicate_event_id".to_owned(),
            ..accepted.clone()
        };
        let inconsistent = Idempotency {
            duplicate: true,
            reason: "accepted".to_owned(),
            ..accepted.clone()
        };
        let event_id = "mark:a.md:0123";

        assert_eq!(
            classify_write(&accepted, event_id, "test").unwrap(),
            WriteOutcome::Accepted
        );
        assert_eq!(
            classify_write(&replayed, event_id, "test").unwrap(),
            WriteOutcome::Replayed
        );
        assert!(classify_write(&inconsistent, event_id, "test").is_err());
        assert!(classify_write(&accepted, "mark:b.md:0123", "test").is_err());
    }
}
