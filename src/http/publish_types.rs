//! Request and response schemas of the publish operations. The request types
//! document the body in the OpenAPI spec; the handlers read the fields with
//! v1's validation rules and messages.

use poem_openapi::{Enum, Object};

use crate::idempotency::{Idempotency, IdempotentResponse};

/// Body of `POST /publish/prepare`.
#[derive(Object, Debug)]
pub struct PrepareRequest {
    /// Draft identifier; must not be blank. Echoed trimmed.
    pub draft_id: String,
    /// Draft text; must not be blank.
    pub content: String,
    /// Publication target, for example `gom`; must not be blank. Echoed trimmed.
    pub target: String,
}

/// The normalised draft. Nothing is stored.
#[derive(Object, Debug)]
pub struct PrepareResponse {
    /// The trimmed draft identifier.
    pub draft_id: String,
    /// The trimmed target.
    pub target: String,
    /// The content trimmed, with every CR LF replaced by LF.
    pub prepared_content: String,
    /// Always `true` (kept for v1 clients; the content is not altered further).
    pub sanitized: bool,
}

/// Body of `POST /publish/score`.
#[derive(Object, Debug)]
pub struct ScoreRequest {
    /// Draft identifier; must not be blank. Echoed trimmed.
    pub draft_id: String,
    /// Draft text to score; must not be blank.
    pub content: String,
}

/// Quality scores in [0, 1], rounded to two decimals.
#[derive(Object, Debug)]
pub struct ScoreValues {
    /// min(1, words / 70).
    pub structure: f64,
    /// 0.9 with at least 40 words and a `.`, 0.6 with at least 20 words, else 0.4.
    pub clarity: f64,
    /// 0.2 when the lower-cased text contains `todo`, else 0.9.
    pub safety: f64,
    /// The mean of the three unrounded scores.
    pub overall: f64,
}

/// The scores of a draft. Nothing is stored.
#[derive(Object, Debug)]
pub struct ScoreResponse {
    /// The trimmed draft identifier.
    pub draft_id: String,
    /// The individual scores.
    pub scores: ScoreValues,
    /// `true` when the rounded overall score is at least 0.8.
    pub gate_passed: bool,
}

/// Body of `POST /publish/mark-for-gom`.
#[derive(Object, Debug)]
pub struct MarkRequest {
    /// Optional idempotency key; `null` means none. A retry with the same key
    /// returns the first response.
    #[oai(nullable)]
    pub event_id: Option<String>,
    /// Draft identifier; must not be blank. Stored trimmed.
    pub draft_id: String,
    /// Title; must not be blank. Stored trimmed.
    pub title: String,
    /// Content to publish, usually from `/publish/prepare`; must not be blank.
    /// Stored trimmed.
    pub prepared_content: String,
}

/// Status of a queued draft.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum QueueStatus {
    /// Waiting in the publish queue.
    QueuedForGom,
}

/// The queued draft, as stored.
#[derive(Object, Debug)]
pub struct MarkResponse {
    /// The trimmed draft identifier.
    pub draft_id: String,
    /// The trimmed title.
    pub title: String,
    /// The trimmed content.
    pub prepared_content: String,
    /// Always `queued_for_gom`.
    pub status: QueueStatus,
    /// Handling of the event id.
    pub idempotency: Idempotency,
}

impl IdempotentResponse for MarkResponse {
    fn set_idempotency(&mut self, idempotency: Idempotency) {
        self.idempotency = idempotency;
    }
}

/// A draft in the publish queue.
#[derive(Object, Debug)]
pub struct QueueItem {
    /// Draft identifier, unique in the queue.
    pub draft_id: String,
    /// Title.
    pub title: String,
    /// Content to publish.
    pub prepared_content: String,
    /// Always `queued_for_gom`.
    pub status: QueueStatus,
}

/// The publish queue, oldest first.
#[derive(Object, Debug)]
pub struct QueueList {
    /// Number of items.
    pub count: u64,
    /// Queued drafts in queue order.
    pub items: Vec<QueueItem>,
}

/// Body of `POST /publish/export-for-gom`.
#[derive(Object, Debug)]
pub struct ExportRequest {
    /// Optional idempotency key; `null` means none. A retry with the same key
    /// returns the first artifact, even after the draft left the queue.
    #[oai(nullable)]
    pub event_id: Option<String>,
    /// Identifier of a queued draft; must not be blank. Trimmed for lookup.
    pub draft_id: String,
    /// Exactly `markdown`, `html` or `json` (case-sensitive, not trimmed).
    pub format: String,
}

/// Status of an export.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ExportStatus {
    /// The artifact is ready.
    ExportReady,
}

/// The export artifact of a queued draft. The queue is not changed.
#[derive(Object, Debug)]
pub struct ExportResponse {
    /// The queued draft's identifier.
    pub draft_id: String,
    /// The requested format.
    pub format: String,
    /// Always `export_ready`.
    pub status: ExportStatus,
    /// `markdown`: the content. `html`: `<p>` + HTML-escaped content + `</p>`.
    /// `json`: the text of `{"draft_id", "prepared_content", "title"}` with
    /// `", "` and `": "` separators and non-ASCII escaped as `\uXXXX`.
    pub artifact: String,
    /// Handling of the event id.
    pub idempotency: Idempotency,
}

impl IdempotentResponse for ExportResponse {
    fn set_idempotency(&mut self, idempotency: Idempotency) {
        self.idempotency = idempotency;
    }
}

/// Body of `POST /publish/confirm-gom`.
#[derive(Object, Debug)]
pub struct ConfirmRequest {
    /// Optional idempotency key; `null` means none. A retry with the same key
    /// returns the first response and publishes nothing again.
    #[oai(nullable)]
    pub event_id: Option<String>,
    /// Identifier of a queued draft; must not be blank. Trimmed for lookup.
    pub draft_id: String,
    /// URL of the published draft: an absolute `http` or `https` URL. Stored
    /// trimmed.
    pub published_url: String,
}

/// Status of a published draft.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum PublishedStatus {
    /// Confirmed as published.
    Published,
}

/// The published draft, as stored.
#[derive(Object, Debug)]
pub struct ConfirmResponse {
    /// The draft identifier.
    pub draft_id: String,
    /// The draft's title at confirmation.
    pub title: String,
    /// The trimmed URL.
    pub published_url: String,
    /// Always `published`.
    pub status: PublishedStatus,
    /// Handling of the event id.
    pub idempotency: Idempotency,
}

impl IdempotentResponse for ConfirmResponse {
    fn set_idempotency(&mut self, idempotency: Idempotency) {
        self.idempotency = idempotency;
    }
}

/// A confirmed publication.
#[derive(Object, Debug)]
pub struct PublishedItem {
    /// The draft identifier; the same draft may be published several times.
    pub draft_id: String,
    /// The draft's title at confirmation.
    pub title: String,
    /// URL of the publication.
    pub published_url: String,
    /// Always `published`.
    pub status: PublishedStatus,
}

/// The published drafts in confirmation order.
#[derive(Object, Debug)]
pub struct PublishedList {
    /// Number of items.
    pub count: u64,
    /// Published drafts, oldest confirmation first.
    pub items: Vec<PublishedItem>,
}
