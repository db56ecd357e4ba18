//! `POST /ask`: a placeholder answer with the provider that the policy would
//! route the question to. Idempotent by `event_id` (operation `ask`).

use std::collections::HashMap;

use futures_util::future::BoxFuture;
use poem_openapi::{Object, OpenApi, payload::Json};
use serde_json::Value;
use sqlx::SqliteConnection;

use super::{
    ApiTags,
    body::JsonBody,
    policy::{SensitivityResult, check_sensitivity},
};
use crate::{
    db::Database,
    error::{AppError, RequestError},
    fields::{JsonObject, optional_bool, optional_confidence, optional_event_id, required_text},
    idempotency::{Idempotency, IdempotentResponse, Operation, run_once},
    rules::policy::{
        BudgetStatus, LOCAL_PROVIDER, RoutingInput, RoutingReason, current_budget, route,
    },
};

/// The ask endpoint.
pub struct AskApi {
    pub db: Database,
}

/// The local confidence assumed when the request gives none.
const DEFAULT_LOCAL_CONFIDENCE: f64 = 0.85;

/// Body of `POST /ask`. Other fields, such as `provider` and `top_k`, are
/// ignored.
#[derive(Object, Debug)]
pub struct AskRequest {
    /// The question; must not be blank.
    pub query: String,
    /// Optional idempotency key; `null` means none. A retry with the same key
    /// returns the first response, whatever else the retry contains.
    #[oai(nullable)]
    pub event_id: Option<String>,
    /// Whether a cloud fallback is allowed. Default `true`.
    pub allow_fallback: Option<bool>,
    /// Confidence of the local answer, a number in [0, 1]. Default 0.85.
    pub local_confidence: Option<f64>,
    /// Whether the local provider timed out. Default `false`.
    pub local_timed_out: Option<bool>,
    /// Whether the local answer failed grounding. Default `false`.
    pub grounding_failed: Option<bool>,
    /// Front matter of the note the question concerns, for the sensitivity
    /// gate. Default `{}`.
    pub frontmatter: Option<HashMap<String, Value>>,
    /// Tags of the note. Default `[]`.
    pub tags: Option<Vec<String>>,
    /// Path of the note. Default `""`.
    pub path: Option<String>,
    /// Text of the note. Default `""`.
    pub content: Option<String>,
}

/// The draft answer.
#[derive(Object, Debug, Clone)]
pub struct Answer {
    /// `Draft answer for: ` and the trimmed query.
    pub text: String,
    /// The local confidence.
    pub confidence: f64,
}

/// The provider chosen for the answer.
#[derive(Object, Debug, Clone)]
pub struct ProviderTrace {
    /// Always `local`.
    pub initial: String,
    /// `local` or `openai`.
    pub provider: String,
    /// `true` when the answer falls back to the cloud provider.
    pub fallback_used: bool,
    /// The provider fallen back to, or `null`.
    #[oai(nullable)]
    pub fallback_provider: Option<String>,
    /// `timeout`, `grounding_failure`, `low_confidence`, `cloud_blocked` or
    /// `local_success`.
    pub fallback_reason: RoutingReason,
}

/// The budget as it affects routing.
#[derive(Object, Debug, Clone)]
pub struct BudgetSummary {
    /// `normal`, `warn_70`, `warn_90` or `hard_stop`.
    pub status: BudgetStatus,
    /// `false` only at `hard_stop`.
    pub cloud_allowed: bool,
    /// `true` only at `hard_stop`.
    pub local_only_mode: bool,
}

/// The answer and how it was routed.
#[derive(Object, Debug, Clone)]
pub struct AskResponse {
    /// The draft answer.
    pub answer: Answer,
    /// The routing decision.
    pub provider_trace: ProviderTrace,
    /// The sensitivity gate's verdict on the note fields.
    pub sensitivity: SensitivityResult,
    /// The budget.
    pub budget: BudgetSummary,
    /// Handling of the event id.
    pub idempotency: Idempotency,
}

impl IdempotentResponse for AskResponse {
    fn set_idempotency(&mut self, idempotency: Idempotency) {
        self.idempotency = idempotency;
    }
}

#[OpenApi(tag = "ApiTags::Ask")]
impl AskApi {
    /// Ask a question
    ///
    /// Returns a draft answer and the provider that the routing policy picks:
    /// the local one, or the cloud one when the local answer times out, fails
    /// grounding or has low confidence and the cloud is allowed (fallback
    /// allowed, note not sensitive, budget not exhausted). Idempotent by
    /// `event_id` (operation `ask`).
    #[oai(path = "/ask", method = "post", operation_id = "ask")]
    async fn ask(&self, body: JsonBody<AskRequest>) -> Result<Json<AskResponse>, RequestError> {
        let request = body.object;
        // As in v1, a bad query is reported before a bad event id, but a
        // replay needs only a valid event id.
        let event_id = optional_event_id(&request)
            .map_err(|error| required_text(&request, "query").err().unwrap_or(error))?;
        // Without an event id there is nothing to record, so the answer is
        // built without taking the write lock.
        let Some(event_id) = event_id else {
            return Ok(Json(build_answer(&request)?));
        };
        let response =
            run_once(&self.db, Operation::Ask, Some(&event_id), &request, answer).await?;
        Ok(Json(response))
    }
}

fn answer<'c>(
    _connection: &'c mut SqliteConnection,
    request: &'c JsonObject,
) -> BoxFuture<'c, Result<AskResponse, AppError>> {
    Box::pin(async move { build_answer(request) })
}

/// Validates the request in v1's order and routes it.
fn build_answer(request: &JsonObject) -> Result<AskResponse, AppError> {
    let query = required_text(request, "query")?;
    let allow_fallback = optional_bool(request, "allow_fallback", true)?;
    let local_confidence =
        optional_confidence(request, "local_confidence", DEFAULT_LOCAL_CONFIDENCE)?;
    let local_timed_out = optional_bool(request, "local_timed_out", false)?;
    let grounding_failed = optional_bool(request, "grounding_failed", false)?;
    let sensitivity = check_sensitivity(request)?;

    let budget = current_budget();
    let cloud_allowed = allow_fallback && sensitivity.allowed && budget.cloud_allowed;
    let picked = route(RoutingInput {
        local_confidence,
        local_timed_out,
        grounding_failed,
        cloud_allowed,
    });

    Ok(AskResponse {
        answer: Answer {
            text: format!("Draft answer for: {query}"),
            confidence: local_confidence,
        },
        provider_trace: ProviderTrace {
            initial: LOCAL_PROVIDER.to_owned(),
            provider: picked.provider.to_owned(),
            fallback_used: picked.fallback_used,
            fallback_provider: picked.fallback_used.then(|| picked.provider.to_owned()),
            fallback_reason: picked.reason,
        },
        sensitivity,
        budget: BudgetSummary {
            status: budget.status,
            cloud_allowed: budget.cloud_allowed,
            local_only_mode: budget.local_only_mode,
        },
        idempotency: Idempotency::not_provided(),
    })
}
