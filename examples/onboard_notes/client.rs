//! HTTP client for the mind-lite daemon and the response types that the steps decode.

use anyhow::{Context, Result, bail, ensure};
use reqwest::{Client, Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::support::{ApiError, excerpt, loopback_client};

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub(crate) struct Profile {
    pub(crate) note_count: u64,
    pub(crate) orphan_notes: u64,
    pub(crate) link_density: f64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RunRecord {
    pub(crate) run_id: String,
    pub(crate) state: String,
    pub(crate) profile: Profile,
    #[serde(default)]
    pub(crate) snapshot_id: Option<String>,
    #[serde(default)]
    pub(crate) rolled_back_snapshot_id: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct RunList {
    pub(crate) runs: Vec<RunRecord>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Proposal {
    pub(crate) proposal_id: String,
    pub(crate) change_type: String,
    pub(crate) status: String,
}

#[derive(Deserialize)]
pub(crate) struct ProposalList {
    pub(crate) run_id: String,
    pub(crate) proposals: Vec<Proposal>,
}

#[derive(Deserialize)]
pub(crate) struct ApproveResponse {
    pub(crate) run_id: String,
    pub(crate) state: String,
    pub(crate) approved_count: u64,
}

#[derive(Deserialize)]
pub(crate) struct ApplyResponse {
    pub(crate) run_id: String,
    pub(crate) state: String,
    pub(crate) snapshot_id: String,
    pub(crate) applied_count: u64,
}

#[derive(Deserialize)]
pub(crate) struct RollbackResponse {
    pub(crate) run_id: String,
    pub(crate) state: String,
    pub(crate) rolled_back_snapshot_id: String,
}

#[derive(Deserialize)]
pub(crate) struct Suggestion {
    pub(crate) target_note_id: String,
    pub(crate) confidence: f64,
    pub(crate) reason: String,
}

#[derive(Deserialize)]
pub(crate) struct ProposeLinksResponse {
    pub(crate) source_note_id: String,
    pub(crate) suggestions: Vec<Suggestion>,
}

#[derive(Deserialize)]
pub(crate) struct AppliedLink {
    pub(crate) target_note_id: String,
    pub(crate) confidence: f64,
    pub(crate) status: String,
}

#[derive(Deserialize)]
pub(crate) struct ApplyLinksResponse {
    pub(crate) source_note_id: String,
    pub(crate) applied_count: u64,
    pub(crate) applied_links: Vec<AppliedLink>,
}

#[derive(Deserialize)]
pub(crate) struct ClassifyResult {
    pub(crate) note_id: String,
    pub(crate) primary_para: String,
    pub(crate) secondary_para: Vec<Value>,
    pub(crate) confidence: f64,
    pub(crate) action_mode: String,
}

#[derive(Deserialize)]
pub(crate) struct ClassifyResponse {
    pub(crate) results: Vec<ClassifyResult>,
}

#[derive(Deserialize)]
pub(crate) struct Answer {
    pub(crate) text: String,
}

#[derive(Deserialize)]
pub(crate) struct Sensitivity {
    pub(crate) allowed: bool,
    pub(crate) reasons: Vec<String>,
}

#[derive(Deserialize)]
pub(crate) struct AskResponse {
    pub(crate) answer: Answer,
    pub(crate) sensitivity: Sensitivity,
}

/// HTTP client bound to one daemon base URL on a loopback address.
pub(crate) struct DaemonClient {
    http: Client,
    base_url: String,
}

impl DaemonClient {
    pub(crate) fn new(base_url: &str) -> Result<Self> {
        let (http, base_url) = loopback_client(base_url)?;
        Ok(Self { http, base_url })
    }

    /// Sends one request and returns the status and body text, whatever the status.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        label: &str,
    ) -> Result<(StatusCode, String)> {
        let url = format!("{}{path}", self.base_url);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.with_context(|| {
            format!(
                "{label} failed (check that the daemon is running at {})",
                self.base_url
            )
        })?;
        let status = response.status();
        let text = response.text().await.with_context(|| {
            format!("{label}: failed to read the response body (HTTP {status})")
        })?;
        Ok((status, text))
    }

    /// Sends one request and returns its 2xx JSON body.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        label: &str,
    ) -> Result<Value> {
        let (status, text) = self.exchange(method, path, body, label).await?;
        if !status.is_success() {
            match serde_json::from_str::<ApiError>(&text) {
                Ok(api_error) => {
                    let field = api_error
                        .field
                        .map(|field| format!(", field {field:?}"))
                        .unwrap_or_default();
                    bail!(
                        "{label} was rejected with HTTP {status}: code {:?}{field}: {}",
                        api_error.code,
                        api_error.error
                    );
                }
                Err(_) => bail!(
                    "{label} failed with HTTP {status} and a body that is not the documented \
                     {{\"error\", \"code\"}} JSON: {}",
                    excerpt(&text)
                ),
            }
        }
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{label} returned HTTP {status} with a body that is not JSON: {}",
                excerpt(&text)
            )
        })
    }

    /// Sends one request that must fail with `expected_status` and returns its error body.
    pub(crate) async fn call_expecting_error(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        label: &str,
        expected_status: StatusCode,
    ) -> Result<ApiError> {
        let (status, text) = self.exchange(method, path, Some(body), label).await?;
        ensure!(
            status == expected_status,
            "{label} returned HTTP {status}, expected {expected_status}: {}",
            excerpt(&text)
        );
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{label} returned a body that is not the documented {{\"error\", \"code\"}} JSON: {}",
                excerpt(&text)
            )
        })
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let label = format!("GET {path}");
        let value = self.call(Method::GET, path, None, &label).await?;
        decode(value, &label)
    }

    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
        label: &str,
    ) -> Result<T> {
        let value = self.call(Method::POST, path, Some(body), label).await?;
        decode(value, label)
    }
}

pub(crate) fn decode<T: DeserializeOwned>(value: Value, label: &str) -> Result<T> {
    let text = value.to_string();
    serde_json::from_value(value).with_context(|| {
        format!(
            "{label} returned a body that does not match the documented response: {}",
            excerpt(&text)
        )
    })
}
