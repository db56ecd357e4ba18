//! SQL for the publish queue and the published list. Every function takes the
//! connection so that callers can run it inside their transaction.

use sqlx::{SqliteConnection, SqliteExecutor};

use crate::time::now_rfc3339;

/// A draft in the publish queue.
#[derive(Debug, Clone)]
pub struct QueuedDraft {
    pub draft_id: String,
    pub title: String,
    pub prepared_content: String,
}

/// A confirmed publication.
#[derive(Debug, Clone)]
pub struct PublishedDraft {
    pub draft_id: String,
    pub title: String,
    pub published_url: String,
}

/// Queues a draft, or updates its title and content in place when the draft id
/// is already queued, keeping its queue position.
pub async fn upsert_draft(
    connection: &mut SqliteConnection,
    draft: &QueuedDraft,
) -> Result<(), sqlx::Error> {
    let now = now_rfc3339();
    sqlx::query!(
        "insert into drafts (draft_id, title, prepared_content, queued_at, updated_at)
         values (?1, ?2, ?3, ?4, ?4)
         on conflict (draft_id) do update
         set title = excluded.title,
             prepared_content = excluded.prepared_content,
             updated_at = excluded.updated_at",
        draft.draft_id,
        draft.title,
        draft.prepared_content,
        now,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Returns the queued draft with this id, if any.
pub async fn find_draft(
    executor: impl SqliteExecutor<'_>,
    draft_id: &str,
) -> Result<Option<QueuedDraft>, sqlx::Error> {
    sqlx::query_as!(
        QueuedDraft,
        "select draft_id, title, prepared_content from drafts where draft_id = ?1",
        draft_id,
    )
    .fetch_optional(executor)
    .await
}

/// Removes a draft from the queue and appends it to the published list, in the
/// caller's transaction. Returns `None` when the draft is not queued.
pub async fn publish_draft(
    connection: &mut SqliteConnection,
    draft_id: &str,
    published_url: &str,
) -> Result<Option<PublishedDraft>, sqlx::Error> {
    let removed = sqlx::query!(
        "delete from drafts where draft_id = ?1 returning draft_id, title",
        draft_id,
    )
    .fetch_optional(&mut *connection)
    .await?;
    let Some(removed) = removed else {
        return Ok(None);
    };

    let now = now_rfc3339();
    sqlx::query!(
        "insert into published (draft_id, title, published_url, published_at)
         values (?1, ?2, ?3, ?4)",
        removed.draft_id,
        removed.title,
        published_url,
        now,
    )
    .execute(&mut *connection)
    .await?;

    Ok(Some(PublishedDraft {
        draft_id: removed.draft_id,
        title: removed.title,
        published_url: published_url.to_owned(),
    }))
}

/// Lists the queue, oldest first.
pub async fn list_queue(
    executor: impl SqliteExecutor<'_>,
) -> Result<Vec<QueuedDraft>, sqlx::Error> {
    sqlx::query_as!(
        QueuedDraft,
        "select draft_id, title, prepared_content from drafts order by queue_position",
    )
    .fetch_all(executor)
    .await
}

/// Lists the published drafts in confirmation order.
pub async fn list_published(
    executor: impl SqliteExecutor<'_>,
) -> Result<Vec<PublishedDraft>, sqlx::Error> {
    sqlx::query_as!(
        PublishedDraft,
        "select draft_id, title, published_url from published order by publish_position",
    )
    .fetch_all(executor)
    .await
}

/// Row counts of the publish tables, for the metrics endpoint.
#[derive(Debug, Clone, Copy)]
pub struct PublishCounts {
    pub queued: i64,
    pub published: i64,
}

pub async fn count(executor: impl SqliteExecutor<'_>) -> Result<PublishCounts, sqlx::Error> {
    sqlx::query_as!(
        PublishCounts,
        r#"select (select count(*) from drafts) as "queued!: i64",
                  (select count(*) from published) as "published!: i64""#,
    )
    .fetch_one(executor)
    .await
}
