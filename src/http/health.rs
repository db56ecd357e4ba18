//! Liveness, readiness and Prometheus metrics.

use poem_openapi::{
    ApiResponse, Object, OpenApi,
    payload::{Json, PlainText},
};

use super::ApiTags;
use crate::{
    db::Database,
    error::{ErrorBody, RETRY_AFTER_SECONDS, StorageError},
    publish::store,
    runs,
};

/// The health and metrics endpoints.
pub struct HealthApi {
    pub db: Database,
}

/// A status report.
#[derive(Object, Debug)]
pub struct Status {
    /// `ok` for liveness, `ready` for readiness.
    pub status: String,
}

/// Result of the readiness check.
#[derive(ApiResponse, Debug)]
pub enum ReadyResponse {
    /// The database responds to queries.
    #[oai(status = 200)]
    Ready(Json<Status>),
    /// The database does not respond; retry after `Retry-After` seconds.
    #[oai(status = 503)]
    Unavailable(
        Json<ErrorBody>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u32,
    ),
}

/// Metrics in the Prometheus text format.
#[derive(ApiResponse, Debug)]
pub enum MetricsResponse {
    /// Five gauges read from the database.
    #[oai(status = 200, content_type = "text/plain; version=0.0.4")]
    Ok(PlainText<String>),
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Check that the daemon is running
    ///
    /// Always returns `{"status": "ok"}`; consults nothing.
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self) -> Json<Status> {
        Json(Status {
            status: "ok".to_owned(),
        })
    }

    /// Check that the daemon can serve requests
    ///
    /// Returns `{"status": "ready"}` when the database responds to a query.
    #[oai(path = "/health/ready", method = "get", operation_id = "health_ready")]
    async fn ready(&self) -> ReadyResponse {
        match sqlx::query!("select 1 as ready")
            .fetch_one(&self.db.reader)
            .await
        {
            Ok(_) => ReadyResponse::Ready(Json(Status {
                status: "ready".to_owned(),
            })),
            Err(error) => {
                tracing::warn!(error = %error, "readiness check failed: database does not respond");
                let body = ErrorBody {
                    error: "database does not answer; retry later".to_owned(),
                    code: "storage_unavailable".to_owned(),
                    field: None,
                };
                ReadyResponse::Unavailable(Json(body), RETRY_AFTER_SECONDS)
            }
        }
    }

    /// Read the metrics
    ///
    /// Returns five gauges in the Prometheus text format: runs, proposals,
    /// snapshots, queued drafts and published drafts, each a row count.
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self) -> Result<MetricsResponse, StorageError> {
        let counts = store::count(&self.db.reader).await?;
        let run_counts = runs::store::count(&self.db.reader).await?;
        let gauges = [
            (
                "mind_lite_runs_total",
                "Total runs recorded",
                run_counts.runs,
            ),
            (
                "mind_lite_proposals_total",
                "Total proposals recorded",
                run_counts.proposals,
            ),
            (
                "mind_lite_snapshots_total",
                "Total snapshots recorded",
                run_counts.snapshots,
            ),
            (
                "mind_lite_publish_queue_total",
                "Total drafts queued for publish",
                counts.queued,
            ),
            (
                "mind_lite_publish_published_total",
                "Total drafts published",
                counts.published,
            ),
        ];
        let mut text = String::new();
        for (name, help, value) in gauges {
            text.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
            ));
        }
        Ok(MetricsResponse::Ok(PlainText(text)))
    }
}
