//! Link suggestions over HTTP: propose links from title keywords, and apply
//! links above a confidence threshold (idempotent by `event_id`, operation
//! `links_apply`). As in v1, applied links are not stored; only the replay
//! ledger records an apply that carries an event id.

use futures_util::future::BoxFuture;
use poem_openapi::{Enum, Object, OpenApi, payload::Json};
use sqlx::SqliteConnection;

use super::{ApiTags, body::JsonBody};
use crate::{
    db::Database,
    error::{AppError, RequestError},
    fields::{
        JsonObject, confidence, non_empty_list, optional_confidence, optional_event_id,
        required_text,
    },
    idempotency::{Idempotency, IdempotentResponse, Operation, run_once},
    rules::organize::{LinkReason, link_suggestion},
};

/// The link endpoints.
pub struct LinksApi {
    pub db: Database,
}

/// A note that the source might link to.
#[derive(Object, Debug)]
pub struct CandidateNote {
    /// Note identifier; must not be blank. Echoed trimmed.
    pub note_id: String,
    /// Note title; must not be blank.
    pub title: String,
}

/// Body of `POST /links/propose`.
#[derive(Object, Debug)]
pub struct ProposeLinksRequest {
    /// The note that would hold the links; must not be blank.
    pub source_note_id: String,
    /// Candidate targets; at least one.
    pub candidate_notes: Vec<CandidateNote>,
}

/// A suggested link.
#[derive(Object, Debug)]
pub struct LinkSuggestion {
    /// The trimmed candidate note id.
    pub target_note_id: String,
    /// 0.88, 0.82 or 0.61, from keywords in the candidate's title.
    pub confidence: f64,
    /// Reason the link is suggested.
    pub reason: LinkReason,
}

/// The suggestions, one per candidate.
#[derive(Object, Debug)]
pub struct ProposeLinksResponse {
    /// The trimmed source note id.
    pub source_note_id: String,
    /// Suggestions by confidence, highest first; equal confidences keep the
    /// request order.
    pub suggestions: Vec<LinkSuggestion>,
}

/// A link to apply.
#[derive(Object, Debug)]
pub struct LinkToApply {
    /// Target note id; must not be blank. Echoed trimmed.
    pub target_note_id: String,
    /// Confidence of the link, a number in [0, 1].
    pub confidence: f64,
}

/// Body of `POST /links/apply`.
#[derive(Object, Debug)]
pub struct ApplyLinksRequest {
    /// The note that contains the links; must not be blank.
    pub source_note_id: String,
    /// Optional idempotency key; `null` means none. A retry with the same key
    /// returns the first response, whatever else the retry contains.
    #[oai(nullable)]
    pub event_id: Option<String>,
    /// Links to apply; at least one.
    pub links: Vec<LinkToApply>,
    /// Links with a lower confidence are skipped; a number in [0, 1].
    /// Default 0.0.
    pub min_confidence: Option<f64>,
}

/// Status of an applied link.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum LinkStatus {
    /// Always this status.
    Applied,
}

/// An applied link.
#[derive(Object, Debug, Clone)]
pub struct AppliedLink {
    /// The trimmed target note id.
    pub target_note_id: String,
    /// The link's confidence.
    pub confidence: f64,
    /// Always `applied`.
    pub status: LinkStatus,
}

/// The links kept by the threshold.
#[derive(Object, Debug, Clone)]
pub struct ApplyLinksResponse {
    /// The trimmed source note id.
    pub source_note_id: String,
    /// Number of applied links; may be 0.
    pub applied_count: u64,
    /// Links at or above `min_confidence`, in request order.
    pub applied_links: Vec<AppliedLink>,
    /// Handling of the event id.
    pub idempotency: Idempotency,
}

impl IdempotentResponse for ApplyLinksResponse {
    fn set_idempotency(&mut self, idempotency: Idempotency) {
        self.idempotency = idempotency;
    }
}

#[OpenApi(tag = "ApiTags::Links")]
impl LinksApi {
    /// Suggest links from a note
    ///
    /// Scores a link from the source note to each candidate by keywords in
    /// the candidate's title. Stores nothing.
    #[oai(
        path = "/links/propose",
        method = "post",
        operation_id = "links_propose"
    )]
    async fn propose(
        &self,
        body: JsonBody<ProposeLinksRequest>,
    ) -> Result<Json<ProposeLinksResponse>, RequestError> {
        let request = body.object;
        let source_note_id = required_text(&request, "source_note_id")?;
        let candidates = non_empty_list(&request, "candidate_notes")?;
        let mut suggestions = Vec::with_capacity(candidates.len());
        for (index, candidate) in candidates.iter().enumerate() {
            let candidate = candidate.as_object().ok_or_else(|| {
                AppError::invalid_field(
                    format!("candidate_notes[{index}]"),
                    "each candidate note must be an object",
                )
            })?;
            let note_id = candidate_text(candidate, "note_id", index)?;
            let title = candidate_text(candidate, "title", index)?;
            let (confidence, reason) = link_suggestion(title);
            suggestions.push(LinkSuggestion {
                target_note_id: note_id.to_owned(),
                confidence,
                reason,
            });
        }
        // `sort_by` is stable: equal confidences keep the request order.
        suggestions.sort_by(|left, right| right.confidence.total_cmp(&left.confidence));
        Ok(Json(ProposeLinksResponse {
            source_note_id: source_note_id.to_owned(),
            suggestions,
        }))
    }

    /// Apply links from a note
    ///
    /// Keeps the links whose confidence is at least `min_confidence` and
    /// reports them as applied. The links are not stored. Idempotent by
    /// `event_id` (operation `links_apply`).
    #[oai(path = "/links/apply", method = "post", operation_id = "links_apply")]
    async fn apply(
        &self,
        body: JsonBody<ApplyLinksRequest>,
    ) -> Result<Json<ApplyLinksResponse>, RequestError> {
        let request = body.object;
        // As in v1, a bad source note id is reported before a bad event id,
        // but a replay needs only a valid event id.
        let event_id = optional_event_id(&request).map_err(|error| {
            required_text(&request, "source_note_id")
                .err()
                .unwrap_or(error)
        })?;
        // Without an event id there is nothing to record, so the links are
        // selected without taking the write lock.
        let Some(event_id) = event_id else {
            return Ok(Json(select_links(&request)?));
        };
        let response = run_once(
            &self.db,
            Operation::LinksApply,
            Some(&event_id),
            &request,
            apply_links,
        )
        .await?;
        Ok(Json(response))
    }
}

/// Reads a required text field of `candidate_notes[index]`, with v1's
/// `candidate <field> is required`.
fn candidate_text<'a>(
    candidate: &'a JsonObject,
    field: &'static str,
    index: usize,
) -> Result<&'a str, AppError> {
    required_text(candidate, field).map_err(|_| AppError::BadRequest {
        message: format!("candidate {field} is required"),
        code: "missing_field",
        field: Some(format!("candidate_notes[{index}].{field}").into()),
    })
}

fn apply_links<'c>(
    _connection: &'c mut SqliteConnection,
    request: &'c JsonObject,
) -> BoxFuture<'c, Result<ApplyLinksResponse, AppError>> {
    Box::pin(async move { select_links(request) })
}

/// Validates the links in v1's order, keeping those at or above the threshold.
fn select_links(request: &JsonObject) -> Result<ApplyLinksResponse, AppError> {
    let source_note_id = required_text(request, "source_note_id")?;
    let links = non_empty_list(request, "links")?;
    let min_confidence = optional_confidence(request, "min_confidence", 0.0)?;
    let mut applied_links = Vec::new();
    for (index, link) in links.iter().enumerate() {
        let link = link.as_object().ok_or_else(|| {
            AppError::invalid_field(format!("links[{index}]"), "each link must be an object")
        })?;
        let target_note_id =
            required_text(link, "target_note_id").map_err(|_| AppError::BadRequest {
                message: "target_note_id is required".to_owned(),
                code: "missing_field",
                field: Some(format!("links[{index}].target_note_id").into()),
            })?;
        let value = link.get("confidence").unwrap_or(&serde_json::Value::Null);
        let confidence = confidence(value, "confidence", format!("links[{index}].confidence"))?;
        if confidence >= min_confidence {
            applied_links.push(AppliedLink {
                target_note_id: target_note_id.to_owned(),
                confidence,
                status: LinkStatus::Applied,
            });
        }
    }
    Ok(ApplyLinksResponse {
        source_note_id: source_note_id.to_owned(),
        applied_count: applied_links.len() as u64,
        applied_links,
        idempotency: Idempotency::not_provided(),
    })
}
