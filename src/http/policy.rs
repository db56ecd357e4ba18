//! The cloud-eligibility policy over HTTP: the sensitivity rules, a check of
//! one note against them, and the routing and budget settings.

use std::collections::HashMap;

use super::{ApiTags, body::JsonBody};
use crate::{
    error::{AppError, RequestError},
    fields::{JsonObject, optional_object, optional_string, optional_string_list},
    rules::policy::{
        Budget, BudgetStatus, CLOUD_PROVIDER, LOCAL_CONFIDENCE_THRESHOLD, LOCAL_PROVIDER,
        MONTHLY_CAP, MONTHLY_SPEND, NoteFields, PROTECTED_PATH_PREFIXES, PROTECTED_TAGS,
        RoutingReason, SECRET_PATTERNS, SensitivityReason, current_budget, fallback_preview,
        sensitivity_reasons,
    },
};
use poem_openapi::{Object, OpenApi, payload::Json};
use serde_json::Value;

/// The policy endpoints.
pub struct PolicyApi;

/// The sensitivity rules.
#[derive(Object, Debug)]
pub struct SensitivityPolicy {
    /// Tags that keep a note local, sorted.
    pub protected_tags: Vec<String>,
    /// Path prefixes that keep a note local, in rule order.
    pub protected_path_prefixes: Vec<String>,
    /// Number of secret patterns matched against note content.
    pub secret_pattern_count: u64,
}

/// A note to check; every field is optional.
#[derive(Object, Debug)]
pub struct SensitivityCheckRequest {
    /// Front matter; a truthy `sensitive` or `private` key blocks the note.
    /// Default `{}`.
    pub frontmatter: Option<HashMap<String, Value>>,
    /// Tags; a protected tag (compared lower-cased) blocks the note. Default
    /// `[]`.
    pub tags: Option<Vec<String>>,
    /// Path in the vault; a protected prefix blocks the note. Default `""`.
    pub path: Option<String>,
    /// Note text; a secret such as an API key blocks the note. Default `""`.
    pub content: Option<String>,
}

/// Whether a note may be sent to a cloud provider.
#[derive(Object, Debug, Clone)]
pub struct SensitivityResult {
    /// `true` exactly when `reasons` is empty.
    pub allowed: bool,
    /// The rules that blocked the note, in rule order.
    pub reasons: Vec<SensitivityReason>,
}

/// Routing settings.
#[derive(Object, Debug)]
pub struct RoutingSettings {
    /// Always `local`.
    pub local_provider: String,
    /// Always `openai`.
    pub fallback_provider: String,
    /// A local confidence below this falls back.
    pub local_confidence_threshold: f64,
    /// The triggers of a fallback, in rule order.
    pub fallback_reasons: Vec<RoutingReason>,
    /// The provider each trigger would route to now.
    pub fallback_preview: FallbackPreview,
}

/// The provider each fallback trigger routes to under the current budget.
#[derive(Object, Debug)]
pub struct FallbackPreview {
    /// A local timeout.
    pub timeout: String,
    /// A failed grounding check.
    pub grounding_failure: String,
    /// A local confidence below the threshold.
    pub low_confidence: String,
}

/// The budget with its inputs.
#[derive(Object, Debug)]
pub struct BudgetDetails {
    /// Spend this month; fixed at 0.0.
    pub monthly_spend: f64,
    /// Monthly cap; fixed at 30.0.
    pub monthly_cap: f64,
    /// `normal`, `warn_70`, `warn_90` or `hard_stop`.
    pub status: BudgetStatus,
    /// `false` only at `hard_stop`.
    pub cloud_allowed: bool,
    /// `true` only at `hard_stop`.
    pub local_only_mode: bool,
}

/// The routing policy and the budget.
#[derive(Object, Debug)]
pub struct RoutingPolicy {
    /// Provider routing.
    pub routing: RoutingSettings,
    /// Budget guardrails.
    pub budget: BudgetDetails,
}

#[OpenApi(tag = "ApiTags::Policy")]
impl PolicyApi {
    /// Read the sensitivity rules
    ///
    /// Returns the protected tags and path prefixes and the number of secret
    /// patterns that keep a note away from cloud providers.
    #[oai(
        path = "/policy/sensitivity",
        method = "get",
        operation_id = "sensitivity_policy"
    )]
    async fn sensitivity(&self) -> Json<SensitivityPolicy> {
        Json(SensitivityPolicy {
            protected_tags: PROTECTED_TAGS.map(str::to_owned).to_vec(),
            protected_path_prefixes: PROTECTED_PATH_PREFIXES.map(str::to_owned).to_vec(),
            secret_pattern_count: SECRET_PATTERNS.len() as u64,
        })
    }

    /// Check a note against the sensitivity rules
    ///
    /// Tells whether the note may be sent to a cloud provider and which rules
    /// block it. Stores nothing.
    #[oai(
        path = "/policy/sensitivity/check",
        method = "post",
        operation_id = "sensitivity_check"
    )]
    async fn sensitivity_check(
        &self,
        body: JsonBody<SensitivityCheckRequest>,
    ) -> Result<Json<SensitivityResult>, RequestError> {
        Ok(Json(check_sensitivity(&body.object)?))
    }

    /// Read the routing policy
    ///
    /// Returns the providers, the confidence threshold, the fallback triggers
    /// with the provider each would pick now, and the budget.
    #[oai(
        path = "/policy/routing",
        method = "get",
        operation_id = "routing_policy"
    )]
    async fn routing(&self) -> Json<RoutingPolicy> {
        let budget: Budget = current_budget();
        let preview = fallback_preview(budget.cloud_allowed);
        let provider_for = |trigger: RoutingReason| {
            preview
                .iter()
                .find(|(reason, _)| *reason == trigger)
                .map_or(LOCAL_PROVIDER, |(_, provider)| provider)
                .to_owned()
        };
        Json(RoutingPolicy {
            routing: RoutingSettings {
                local_provider: LOCAL_PROVIDER.to_owned(),
                fallback_provider: CLOUD_PROVIDER.to_owned(),
                local_confidence_threshold: LOCAL_CONFIDENCE_THRESHOLD,
                fallback_reasons: preview.iter().map(|(reason, _)| *reason).collect(),
                fallback_preview: FallbackPreview {
                    timeout: provider_for(RoutingReason::Timeout),
                    grounding_failure: provider_for(RoutingReason::GroundingFailure),
                    low_confidence: provider_for(RoutingReason::LowConfidence),
                },
            },
            budget: BudgetDetails {
                monthly_spend: MONTHLY_SPEND,
                monthly_cap: MONTHLY_CAP,
                status: budget.status,
                cloud_allowed: budget.cloud_allowed,
                local_only_mode: budget.local_only_mode,
            },
        })
    }
}

/// Reads `frontmatter`, `tags`, `path` and `content` in v1's order and runs
/// the sensitivity gate on them.
pub fn check_sensitivity(body: &JsonObject) -> Result<SensitivityResult, AppError> {
    let empty = JsonObject::new();
    let frontmatter = optional_object(body, "frontmatter")?.unwrap_or(&empty);
    let tags = optional_string_list(body, "tags")?;
    let path = optional_string(body, "path", "")?;
    let content = optional_string(body, "content", "")?;
    let reasons = sensitivity_reasons(NoteFields {
        frontmatter,
        tags: &tags,
        path,
        content,
    });
    Ok(SensitivityResult {
        allowed: reasons.is_empty(),
        reasons,
    })
}
