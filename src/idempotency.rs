//! The replay ledger: one generic implementation of idempotent operations.
//!
//! With an event id, the ledger lookup, the side effect and the ledger insert run
//! in ONE `BEGIN IMMEDIATE` transaction on the single writer connection, so two
//! requests with the same new event id cannot both miss the ledger. The second
//! waits for the first to commit, then finds its record and replays it. Known
//! event ids are first looked up on a read connection, so a replay is served
//! even when the database cannot be written. Counting the replay afterwards
//! waits for the writer but only briefly for another process's lock, and a
//! failure there is only logged. A request that
//! fails rolls back and leaves no record, so a corrected retry with the same
//! event id executes.

use futures_util::future::BoxFuture;
use poem_openapi::{
    Enum, Object,
    types::{ParseFromJSON, ToJSON},
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, SqliteConnection, SqlitePool};
use std::time::Duration;

use crate::{
    db::{BUSY_TIMEOUT, COUNT_BUSY_TIMEOUT, Database},
    error::AppError,
    fields::{EventId, JsonObject},
    time::now_rfc3339,
};

/// The operations that accept an `event_id`. An event id is scoped to its
/// operation: the same id may be used once for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Ask,
    LinksApply,
    PublishMark,
    PublishExport,
    PublishConfirm,
}

impl Operation {
    /// Returns the name stored in `replay_records.operation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ask => "ask",
            Self::LinksApply => "links_apply",
            Self::PublishMark => "publish_mark",
            Self::PublishExport => "publish_export",
            Self::PublishConfirm => "publish_confirm",
        }
    }
}

/// Reason a response was or was not served from the ledger.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum IdempotencyReason {
    /// The request carried no event id; nothing was recorded.
    NotProvided,
    /// First successful use of the event id; the response was recorded.
    Accepted,
    /// The event id was seen before; this is the recorded response.
    DuplicateEventId,
}

/// Handling of a request's idempotency key.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The trimmed event id, or `null` when the request had none.
    #[oai(nullable)]
    pub event_id: Option<String>,
    /// `true` when this response is a replay of the first response.
    pub duplicate: bool,
    /// `not_provided`, `accepted` or `duplicate_event_id`.
    pub reason: IdempotencyReason,
}

impl Idempotency {
    /// Builds the object for a request without an event id. Operations also
    /// put it in a response as a placeholder until [`run_once`] fills it in.
    pub fn not_provided() -> Self {
        Self {
            event_id: None,
            duplicate: false,
            reason: IdempotencyReason::NotProvided,
        }
    }

    fn accepted(event_id: &EventId) -> Self {
        Self {
            event_id: Some(event_id.as_str().to_owned()),
            duplicate: false,
            reason: IdempotencyReason::Accepted,
        }
    }

    fn duplicate(event_id: &EventId) -> Self {
        Self {
            event_id: Some(event_id.as_str().to_owned()),
            duplicate: true,
            reason: IdempotencyReason::DuplicateEventId,
        }
    }
}

/// A response of an idempotent operation: it ends with an `idempotency` object
/// and can be stored as JSON and read back.
pub trait IdempotentResponse: ToJSON + ParseFromJSON + Send {
    fn set_idempotency(&mut self, idempotency: Idempotency);
}

/// Commits the side effect of `work` at most once per `(operation, event_id)`
/// and returns its response, or the recorded response of the first successful
/// request with that event id.
///
/// `work` receives the transaction's connection and `request`. It validates the
/// request and performs the side effect, and a failure rolls both back. The
/// `idempotency` object of its response is filled in here. Replays skip `work`
/// entirely, whatever the new request contains, as in v1.
pub async fn run_once<T, F>(
    db: &Database,
    operation: Operation,
    event_id: Option<&EventId>,
    request: &JsonObject,
    work: F,
) -> Result<T, AppError>
where
    T: IdempotentResponse,
    F: for<'c> FnOnce(
            &'c mut SqliteConnection,
            &'c JsonObject,
        ) -> BoxFuture<'c, Result<T, AppError>>
        + Send,
{
    // A known event id is served from a read connection, so a retry still
    // gets its recorded response when the database cannot be written (full
    // disk, read-only file, a lock held by another process).
    if let Some(event_id) = event_id {
        let mut reader = db.reader.acquire().await?;
        let record = find_record(&mut reader, operation, event_id).await?;
        drop(reader);
        if let Some(record) = record {
            return replay(db, operation, event_id, request, record).await;
        }
    }

    let mut transaction = db.writer.begin_with("BEGIN IMMEDIATE").await?;

    let Some(event_id) = event_id else {
        let mut response = work(&mut transaction, request).await?;
        response.set_idempotency(Idempotency::not_provided());
        transaction.commit().await?;
        return Ok(response);
    };

    // Checked again under the write lock: a concurrent request with the same
    // event id may have committed since the read above.
    if let Some(record) = find_record(&mut transaction, operation, event_id).await? {
        transaction.rollback().await?;
        return replay(db, operation, event_id, request, record).await;
    }

    let mut response = work(&mut transaction, request).await?;
    response.set_idempotency(Idempotency::accepted(event_id));
    let record = NewRecord {
        operation,
        event_id,
        request_sha256: &canonical_sha256(request),
        request_body: &serde_json::to_string(request)
            .map_err(|error| anyhow::anyhow!("failed to serialise the request: {error}"))?,
        response_body: &response.to_json_string(),
    };
    insert_record(&mut transaction, &record).await?;
    transaction.commit().await?;

    tracing::debug!(
        operation = operation.as_str(),
        event_id = event_id.as_str(),
        "recorded first response for event id"
    );
    Ok(response)
}

/// Returns the recorded response with the duplicate `idempotency` object and
/// counts the replay in the ledger. Counting is best effort: when the database
/// cannot be written, the replay is still served and the failure logged.
async fn replay<T: IdempotentResponse>(
    db: &Database,
    operation: Operation,
    event_id: &EventId,
    request: &JsonObject,
    record: StoredRecord,
) -> Result<T, AppError> {
    let mut response = decode_response::<T>(&record.response_body, operation, event_id)?;
    response.set_idempotency(Idempotency::duplicate(event_id));

    if record.request_sha256 != canonical_sha256(request) {
        tracing::warn!(
            operation = operation.as_str(),
            event_id = event_id.as_str(),
            "duplicate event id with a different payload; replaying the first response"
        );
    }
    if let Err(error) = count_replay(&db.writer, record.replay_record_id).await {
        tracing::warn!(
            operation = operation.as_str(),
            event_id = event_id.as_str(),
            %error,
            "replay served but not counted in the ledger"
        );
    }
    Ok(response)
}

struct StoredRecord {
    replay_record_id: i64,
    request_sha256: String,
    response_body: String,
}

struct NewRecord<'a> {
    operation: Operation,
    event_id: &'a EventId,
    request_sha256: &'a str,
    request_body: &'a str,
    response_body: &'a str,
}

async fn find_record(
    connection: &mut SqliteConnection,
    operation: Operation,
    event_id: &EventId,
) -> Result<Option<StoredRecord>, sqlx::Error> {
    let operation = operation.as_str();
    let event_id = event_id.as_str();
    sqlx::query_as!(
        StoredRecord,
        r#"select replay_record_id as "replay_record_id!", request_sha256, response_body
           from replay_records where operation = ?1 and event_id = ?2"#,
        operation,
        event_id,
    )
    .fetch_optional(connection)
    .await
}

/// Adds one to the replay count of a ledger row.
///
/// A lock held by another process would make a plain update wait the full
/// busy timeout before the replay is returned. So the count lowers the
/// writer's busy timeout for its one statement and restores it afterwards.
/// It runs in its own task, so a client that disconnects cannot stop it
/// before the restore and leave the writer with the short timeout.
async fn count_replay(writer: &SqlitePool, replay_record_id: i64) -> anyhow::Result<()> {
    let writer = writer.clone();
    let task = tokio::spawn(async move {
        let mut connection = writer.acquire().await?;
        set_busy_timeout(&mut connection, COUNT_BUSY_TIMEOUT).await?;
        let counted = add_replay(&mut connection, replay_record_id).await;
        if let Err(error) = set_busy_timeout(&mut connection, BUSY_TIMEOUT).await {
            // The pool opens a new connection, with the configured timeout,
            // in place of this one.
            connection.close_on_drop();
            return Err(error);
        }
        counted
    });
    task.await
        .map_err(|error| anyhow::anyhow!("the task counting the replay failed: {error}"))??;
    Ok(())
}

async fn add_replay(
    connection: &mut SqliteConnection,
    replay_record_id: i64,
) -> Result<(), sqlx::Error> {
    let now = now_rfc3339();
    sqlx::query!(
        "update replay_records
         set replay_count = replay_count + 1, last_replayed_at = ?1
         where replay_record_id = ?2",
        now,
        replay_record_id,
    )
    .execute(connection)
    .await?;
    Ok(())
}

async fn set_busy_timeout(
    connection: &mut SqliteConnection,
    timeout: Duration,
) -> Result<(), sqlx::Error> {
    // Built from our own constant, never from request input.
    let statement = format!("pragma busy_timeout = {}", timeout.as_millis());
    sqlx::query(AssertSqlSafe(statement))
        .execute(connection)
        .await?;
    Ok(())
}

async fn insert_record(
    connection: &mut SqliteConnection,
    record: &NewRecord<'_>,
) -> Result<(), sqlx::Error> {
    let operation = record.operation.as_str();
    let event_id = record.event_id.as_str();
    let now = now_rfc3339();
    sqlx::query!(
        "insert into replay_records
             (operation, event_id, request_sha256, request_body, response_body, first_seen_at)
         values (?1, ?2, ?3, ?4, ?5, ?6)",
        operation,
        event_id,
        record.request_sha256,
        record.request_body,
        record.response_body,
        now,
    )
    .execute(connection)
    .await?;
    Ok(())
}

fn decode_response<T: ParseFromJSON>(
    stored: &str,
    operation: Operation,
    event_id: &EventId,
) -> Result<T, AppError> {
    let value: Value = serde_json::from_str(stored).map_err(|error| {
        anyhow::anyhow!(
            "stored response of {} event {:?} is not JSON: {error}",
            operation.as_str(),
            event_id.as_str()
        )
    })?;
    T::parse_from_json(Some(value)).map_err(|error| {
        AppError::Internal(anyhow::anyhow!(
            "stored response of {} event {:?} does not match the response type: {}",
            operation.as_str(),
            event_id.as_str(),
            error.into_message()
        ))
    })
}

/// Returns the hex SHA-256 of `request` serialised with object keys sorted at
/// every level, so that key order does not change the hash.
pub fn canonical_sha256(request: &JsonObject) -> String {
    let canonical = sort_object_keys(request).to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn sort_object_keys(object: &JsonObject) -> Value {
    let mut entries: Vec<(&String, &Value)> = object.iter().collect();
    entries.sort_by(|left, right| left.0.cmp(right.0));
    Value::Object(
        entries
            .into_iter()
            .map(|(key, value)| (key.clone(), sort_keys(value)))
            .collect(),
    )
}

fn sort_keys(value: &Value) -> Value {
    match value {
        Value::Object(object) => sort_object_keys(object),
        Value::Array(items) => Value::Array(items.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn canonical_hash_ignores_key_order() {
        let first = json!({"a": 1, "b": {"x": 1, "y": [1, {"q": 1, "p": 2}]}});
        let second = json!({"b": {"y": [1, {"p": 2, "q": 1}], "x": 1}, "a": 1});
        let (Value::Object(first), Value::Object(second)) = (first, second) else {
            unreachable!("literals are objects");
        };
        assert_eq!(canonical_sha256(&first), canonical_sha256(&second));
    }

    #[test]
    fn canonical_hash_changes_with_values() {
        let (Value::Object(first), Value::Object(second)) = (json!({"a": 1}), json!({"a": 2}))
        else {
            unreachable!("literals are objects");
        };
        assert_ne!(canonical_sha256(&first), canonical_sha256(&second));
    }
}
