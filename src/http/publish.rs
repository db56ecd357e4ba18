//! The publish pipeline over HTTP: prepare, score, mark, list the queue,
//! export, confirm and list the published drafts.

use futures_util::future::BoxFuture;
use poem_openapi::{OpenApi, payload::Json};
use serde_json::Value;
use sqlx::SqliteConnection;

use super::{ApiTags, body::JsonBody, publish_types::*};
use crate::{
    db::Database,
    error::{AppError, RequestError, StorageError},
    fields::{JsonObject, optional_event_id, required_text, trim},
    idempotency::{Idempotency, Operation, run_once},
    publish::store::{self, QueuedDraft},
    rules::publish::{ExportFormat, build_artifact, prepare_content, score},
};

/// The publish endpoints.
pub struct PublishApi {
    pub db: Database,
}

#[OpenApi(tag = "ApiTags::Publish")]
impl PublishApi {
    /// Normalise a draft for publishing
    ///
    /// Trims the content and converts CR LF line ends to LF. Stores nothing.
    #[oai(
        path = "/publish/prepare",
        method = "post",
        operation_id = "publish_prepare"
    )]
    async fn prepare(
        &self,
        body: JsonBody<PrepareRequest>,
    ) -> Result<Json<PrepareResponse>, RequestError> {
        let request = body.object;
        let draft_id = required_text(&request, "draft_id")?;
        let content = required_text(&request, "content")?;
        let target = required_text(&request, "target")?;

        Ok(Json(PrepareResponse {
            draft_id: draft_id.to_owned(),
            target: target.to_owned(),
            prepared_content: prepare_content(content),
            sanitized: true,
        }))
    }

    /// Score a draft's quality
    ///
    /// Computes structure, clarity and safety scores and whether the overall
    /// score passes the 0.8 gate. Stores nothing.
    #[oai(
        path = "/publish/score",
        method = "post",
        operation_id = "publish_score"
    )]
    async fn score(
        &self,
        body: JsonBody<ScoreRequest>,
    ) -> Result<Json<ScoreResponse>, RequestError> {
        let request = body.object;
        let draft_id = required_text(&request, "draft_id")?;
        let content = required_text(&request, "content")?;

        let scores = score(content);
        Ok(Json(ScoreResponse {
            draft_id: draft_id.to_owned(),
            scores: ScoreValues {
                structure: scores.structure,
                clarity: scores.clarity,
                safety: scores.safety,
                overall: scores.overall,
            },
            gate_passed: scores.gate_passed,
        }))
    }

    /// Queue a draft for the digital garden
    ///
    /// Adds the draft to the end of the publish queue. Marking a draft id that is
    /// already queued updates its title and content in place and keeps its queue
    /// position. Idempotent by `event_id` (operation `publish_mark`).
    #[oai(
        path = "/publish/mark-for-gom",
        method = "post",
        operation_id = "publish_mark"
    )]
    async fn mark(&self, body: JsonBody<MarkRequest>) -> Result<Json<MarkResponse>, RequestError> {
        let request = body.object;
        let event_id = optional_event_id(&request)?;
        let response = run_once(
            &self.db,
            Operation::PublishMark,
            event_id.as_ref(),
            &request,
            mark_draft,
        )
        .await?;
        Ok(Json(response))
    }

    /// List the publish queue
    ///
    /// Returns the queued drafts, oldest first.
    #[oai(
        path = "/publish/gom-queue",
        method = "get",
        operation_id = "publish_queue"
    )]
    async fn queue(&self) -> Result<Json<QueueList>, StorageError> {
        let drafts = store::list_queue(&self.db.reader).await?;
        let items: Vec<QueueItem> = drafts
            .into_iter()
            .map(|draft| QueueItem {
                draft_id: draft.draft_id,
                title: draft.title,
                prepared_content: draft.prepared_content,
                status: QueueStatus::QueuedForGom,
            })
            .collect();
        Ok(Json(QueueList {
            count: items.len() as u64,
            items,
        }))
    }

    /// Export a queued draft
    ///
    /// Builds the artifact of a queued draft as `markdown`, `html` or `json`.
    /// The queue is not changed. Idempotent by `event_id` (operation
    /// `publish_export`): a retry returns the first artifact, also after a
    /// restart.
    #[oai(
        path = "/publish/export-for-gom",
        method = "post",
        operation_id = "publish_export"
    )]
    async fn export(
        &self,
        body: JsonBody<ExportRequest>,
    ) -> Result<Json<ExportResponse>, RequestError> {
        let request = body.object;
        let event_id = optional_event_id(&request)?;
        let response = run_once(
            &self.db,
            Operation::PublishExport,
            event_id.as_ref(),
            &request,
            export_draft,
        )
        .await?;
        Ok(Json(response))
    }

    /// Confirm that a draft was published
    ///
    /// Removes the draft from the queue and appends it to the published list
    /// with its URL. Idempotent by `event_id` (operation `publish_confirm`).
    #[oai(
        path = "/publish/confirm-gom",
        method = "post",
        operation_id = "publish_confirm"
    )]
    async fn confirm(
        &self,
        body: JsonBody<ConfirmRequest>,
    ) -> Result<Json<ConfirmResponse>, RequestError> {
        let request = body.object;
        let event_id = optional_event_id(&request)?;
        let response = run_once(
            &self.db,
            Operation::PublishConfirm,
            event_id.as_ref(),
            &request,
            confirm_draft,
        )
        .await?;
        Ok(Json(response))
    }

    /// List the published drafts
    ///
    /// Returns every confirmed publication in confirmation order.
    #[oai(
        path = "/publish/published",
        method = "get",
        operation_id = "publish_published"
    )]
    async fn published(&self) -> Result<Json<PublishedList>, StorageError> {
        let published = store::list_published(&self.db.reader).await?;
        let items: Vec<PublishedItem> = published
            .into_iter()
            .map(|draft| PublishedItem {
                draft_id: draft.draft_id,
                title: draft.title,
                published_url: draft.published_url,
                status: PublishedStatus::Published,
            })
            .collect();
        Ok(Json(PublishedList {
            count: items.len() as u64,
            items,
        }))
    }
}

fn mark_draft<'c>(
    connection: &'c mut SqliteConnection,
    request: &'c JsonObject,
) -> BoxFuture<'c, Result<MarkResponse, AppError>> {
    Box::pin(async move {
        let draft = QueuedDraft {
            draft_id: required_text(request, "draft_id")?.to_owned(),
            title: required_text(request, "title")?.to_owned(),
            prepared_content: required_text(request, "prepared_content")?.to_owned(),
        };
        store::upsert_draft(connection, &draft).await?;

        Ok(MarkResponse {
            draft_id: draft.draft_id,
            title: draft.title,
            prepared_content: draft.prepared_content,
            status: QueueStatus::QueuedForGom,
            idempotency: Idempotency::not_provided(),
        })
    })
}

fn export_draft<'c>(
    connection: &'c mut SqliteConnection,
    request: &'c JsonObject,
) -> BoxFuture<'c, Result<ExportResponse, AppError>> {
    Box::pin(async move {
        let draft_id = required_text(request, "draft_id")?;
        let format = match request.get("format") {
            Some(Value::String(name)) if !trim(name).is_empty() => name.as_str(),
            _ => return Err(AppError::required("format")),
        };
        let format = ExportFormat::parse(format).ok_or_else(|| {
            AppError::invalid_field("format", "format must be one of: markdown, html, json")
        })?;
        let draft = store::find_draft(&mut *connection, draft_id)
            .await?
            .ok_or_else(|| unknown_draft(draft_id))?;

        let artifact = build_artifact(
            format,
            &draft.draft_id,
            &draft.title,
            &draft.prepared_content,
        );
        Ok(ExportResponse {
            draft_id: draft.draft_id,
            format: format.as_str().to_owned(),
            status: ExportStatus::ExportReady,
            artifact,
            idempotency: Idempotency::not_provided(),
        })
    })
}

fn confirm_draft<'c>(
    connection: &'c mut SqliteConnection,
    request: &'c JsonObject,
) -> BoxFuture<'c, Result<ConfirmResponse, AppError>> {
    Box::pin(async move {
        let draft_id = required_text(request, "draft_id")?;
        let published_url = required_text(request, "published_url")?;
        check_published_url(published_url)?;
        let published = store::publish_draft(connection, draft_id, published_url)
            .await?
            .ok_or_else(|| unknown_draft(draft_id))?;

        Ok(ConfirmResponse {
            draft_id: published.draft_id,
            title: published.title,
            published_url: published.published_url,
            status: PublishedStatus::Published,
            idempotency: Idempotency::not_provided(),
        })
    })
}

/// Builds v1's `unknown draft id: {draft_id}` with the trimmed id (v1 quoted
/// the raw value, which hid the spaces that caused the miss).
fn unknown_draft(draft_id: &str) -> AppError {
    AppError::BadRequest {
        message: format!("unknown draft id: {draft_id}"),
        code: "unknown_draft",
        field: Some("draft_id".into()),
    }
}

/// Accepts only absolute `http` and `https` URLs with a host.
fn check_published_url(published_url: &str) -> Result<(), AppError> {
    let valid = url::Url::parse(published_url)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host());
    if valid {
        Ok(())
    } else {
        Err(AppError::invalid_field(
            "published_url",
            "published_url must be an absolute http or https URL",
        ))
    }
}
