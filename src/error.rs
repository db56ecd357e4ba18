//! The one error type of the daemon and its JSON rendering.
//!
//! Every non-2xx response has the body `{"error": "<message>", "code":
//! "<kind>"}`, plus `"field"` when one input field is at fault. `error` keeps the
//! exact v1 message text because v1 clients match it.

use std::borrow::Cow;

use poem::{
    Response,
    error::ResponseError,
    http::{StatusCode, header},
};
use poem_openapi::{ApiResponse, Object, payload::Json, types::ToJSON};

/// Seconds a client is asked to wait before retrying after a 503.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// The JSON body of every error response.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// Human-readable message. For v1 errors this is the exact v1 text.
    pub error: String,
    /// Machine-readable kind of error in snake case, such as `invalid_json`,
    /// `missing_field`, `invalid_field`, `unknown_draft`, `unknown_run`,
    /// `no_matching_proposals`, `snapshot_not_found`, `not_latest_snapshot`,
    /// `snapshot_already_rolled_back`, `missing_folder`, `unreadable_path`,
    /// `outside_vault_root`, `not_found`, `method_not_allowed`,
    /// `unsupported_media_type`, `payload_too_large`, `body_timeout`,
    /// `invalid_body`, `forbidden_host`, `bad_request`, `storage_unavailable`
    /// or `internal`.
    pub code: String,
    /// The request field at fault, when the error concerns one field.
    #[oai(skip_serializing_if_is_none)]
    pub field: Option<String>,
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A request the client must correct: 400 with the v1 message.
    #[error("{message}")]
    BadRequest {
        message: String,
        code: &'static str,
        field: Option<Cow<'static, str>>,
    },
    /// No route matches the path.
    #[error("not found")]
    NotFound,
    /// A run route names a run that does not exist.
    #[error("unknown run id: {run_id}")]
    UnknownRun { run_id: String },
    /// The folder to analyse is outside `MIND_LITE_VAULT_ROOT`.
    #[error(
        "folder is outside the vault root: {folder_path}; analyse a folder under \
         MIND_LITE_VAULT_ROOT"
    )]
    OutsideVaultRoot { folder_path: String },
    /// The path exists but not for this method.
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    /// The `Host` header names a host that is not allowed (DNS-rebinding
    /// protection).
    #[error(
        "host {host:?} is not allowed; send requests to localhost, 127.0.0.1 or [::1], \
         or add the host to MIND_LITE_ALLOWED_HOSTS"
    )]
    ForbiddenHost { host: String },
    /// The body is larger than the configured limit.
    #[error(
        "request body is larger than {limit} bytes; send a smaller body or raise \
         MIND_LITE_MAX_BODY_BYTES"
    )]
    PayloadTooLarge { limit: usize },
    /// The client did not send the whole body in time.
    #[error(
        "request body not received within {seconds} s; send the whole body at once or raise \
         MIND_LITE_BODY_TIMEOUT_SECS"
    )]
    BodyTimeout { seconds: u64 },
    /// A POST body that is not declared as JSON.
    #[error("content type must be application/json, got {found}")]
    UnsupportedMediaType { found: String },
    /// Any other client error raised by the HTTP layer, with its status.
    #[error("{message}")]
    Rejected { status: StatusCode, message: String },
    /// The database is locked or every connection is in use; the client should
    /// retry.
    #[error("storage is busy, retry the request")]
    StorageBusy(#[source] sqlx::Error),
    /// The database cannot be read or written (full disk, read-only file, I/O
    /// error, damaged file); the client may retry later.
    #[error("storage failed, retry later; the cause is in the daemon's log")]
    StorageFailed(#[source] sqlx::Error),
    /// Any other database failure.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// A bug or an unexpected state.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// Builds a 400 for a missing or blank required field, with v1's
    /// `<field> is required` message.
    pub fn required(field: &'static str) -> Self {
        Self::BadRequest {
            message: format!("{field} is required"),
            code: "missing_field",
            field: Some(Cow::Borrowed(field)),
        }
    }

    /// Builds a 400 for a field whose value is present but invalid.
    pub fn invalid_field(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            code: "invalid_field",
            field: Some(field.into()),
        }
    }

    /// Names `field` as the field at fault of a 400, keeping its message; used
    /// for fields inside list items, such as `notes[2].title`.
    pub fn in_field(self, field: impl Into<Cow<'static, str>>) -> Self {
        match self {
            Self::BadRequest { message, code, .. } => Self::BadRequest {
                message,
                code,
                field: Some(field.into()),
            },
            other => other,
        }
    }

    /// Builds v1's `invalid json` 400: a body that is not a JSON object.
    pub fn invalid_json() -> Self {
        Self::BadRequest {
            message: "invalid json".to_owned(),
            code: "invalid_json",
            field: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound | Self::UnknownRun { .. } => StatusCode::NOT_FOUND,
            Self::OutsideVaultRoot { .. } => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::ForbiddenHost { .. } => StatusCode::FORBIDDEN,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Rejected { status, .. } => *status,
            Self::StorageBusy(_) | Self::StorageFailed(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. } => code,
            Self::NotFound => "not_found",
            Self::UnknownRun { .. } => "unknown_run",
            Self::OutsideVaultRoot { .. } => "outside_vault_root",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::ForbiddenHost { .. } => "forbidden_host",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::BodyTimeout { .. } => "body_timeout",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::Rejected { .. } => "bad_request",
            Self::StorageBusy(_) | Self::StorageFailed(_) => "storage_unavailable",
            Self::Database(_) | Self::Internal(_) => "internal",
        }
    }

    /// Builds the JSON body. Server-side failures get a generic message: their
    /// cause is logged, never sent.
    pub fn body(&self) -> ErrorBody {
        let error = match self {
            Self::Database(_) | Self::Internal(_) => {
                "internal error; the cause is in the daemon's log".to_owned()
            }
            other => other.to_string(),
        };
        let field = match self {
            Self::BadRequest { field, .. } => field.as_deref().map(str::to_owned),
            Self::OutsideVaultRoot { .. } => Some("folder_path".to_owned()),
            _ => None,
        };
        ErrorBody {
            error,
            code: self.code().to_owned(),
            field,
        }
    }

    /// Logs a server-side failure at ERROR with its cause chain. Client errors
    /// are not logged here; the request log line records their status.
    fn log_if_server_error(&self) {
        match self {
            Self::StorageBusy(source) => {
                tracing::warn!(error = %source, "storage busy, asked the client to retry");
            }
            Self::StorageFailed(source) => {
                tracing::error!(error = ?source, "storage failed while handling request");
            }
            Self::Database(source) => {
                tracing::error!(error = ?source, "database error while handling request");
            }
            Self::Internal(source) => {
                tracing::error!(error = ?source, "internal error while handling request");
            }
            _ => {}
        }
    }

    /// Renders the error as an HTTP response with the JSON error body.
    pub fn to_response(&self) -> Response {
        self.log_if_server_error();
        let status = self.status();
        let body = self.body().to_json_string();
        let mut builder = Response::builder()
            .status(status)
            .content_type("application/json");
        if status == StatusCode::SERVICE_UNAVAILABLE {
            builder = builder.header(header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string());
        }
        builder.body(body)
    }
}

impl ResponseError for AppError {
    fn status(&self) -> StatusCode {
        AppError::status(self)
    }

    fn as_response(&self) -> Response {
        self.to_response()
    }
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        match storage_condition(&error) {
            Some(StorageCondition::Busy) => Self::StorageBusy(error),
            Some(StorageCondition::Failed) => Self::StorageFailed(error),
            None => Self::Database(error),
        }
    }
}

/// Returns whether a database error is contention that passes by itself: a
/// busy or locked database, or no free pooled connection in time.
pub(crate) fn is_contention(error: &sqlx::Error) -> bool {
    matches!(storage_condition(error), Some(StorageCondition::Busy))
}

enum StorageCondition {
    /// Contention that passes by itself.
    Busy,
    /// The storage itself fails; it may recover once an operator acts.
    Failed,
}

/// Classifies a database error by SQLite's primary result code (the low byte
/// of the extended code): BUSY (5) and LOCKED (6) are contention; READONLY (8),
/// IOERR (10), CORRUPT (11), FULL (13) and CANTOPEN (14) are storage failures.
/// A pool with no free connection in time also counts as contention.
fn storage_condition(error: &sqlx::Error) -> Option<StorageCondition> {
    let code = match error {
        sqlx::Error::PoolTimedOut => return Some(StorageCondition::Busy),
        sqlx::Error::Io(_) => return Some(StorageCondition::Failed),
        sqlx::Error::Database(database_error) => database_error
            .code()
            .and_then(|code| code.parse::<i64>().ok())?,
        _ => return None,
    };
    match code & 0xff {
        5 | 6 => Some(StorageCondition::Busy),
        8 | 10 | 11 | 13 | 14 => Some(StorageCondition::Failed),
        _ => None,
    }
}

/// Error statuses of operations that take a JSON body.
#[derive(ApiResponse, Debug)]
pub enum RequestError {
    /// The body is not a JSON object (`invalid json`), or a field fails
    /// validation; `error` contains the v1 message and `field` names the field.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// The body is larger than the configured limit (`MIND_LITE_MAX_BODY_BYTES`).
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The whole body did not arrive within `MIND_LITE_BODY_TIMEOUT_SECS`.
    #[oai(status = 408)]
    BodyTimeout(Json<ErrorBody>),
    /// The `Content-Type` header is missing or is not `application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// An unexpected failure; the cause is logged by the daemon.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The storage is busy or failing; retry after the number of seconds in
    /// `Retry-After`.
    #[oai(status = 503)]
    Unavailable(
        Json<ErrorBody>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u32,
    ),
}

/// Error statuses of read-only operations.
#[derive(ApiResponse, Debug)]
pub enum StorageError {
    /// An unexpected failure; the cause is logged by the daemon.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The storage is busy or failing; retry after the number of seconds in
    /// `Retry-After`.
    #[oai(status = 503)]
    Unavailable(
        Json<ErrorBody>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u32,
    ),
}

impl From<AppError> for RequestError {
    fn from(error: AppError) -> Self {
        error.log_if_server_error();
        let status = error.status();
        let body = Json(error.body());
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge(body),
            StatusCode::REQUEST_TIMEOUT => Self::BodyTimeout(body),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType(body),
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable(body, RETRY_AFTER_SECONDS),
            StatusCode::INTERNAL_SERVER_ERROR => Self::Internal(body),
            _ => Self::BadRequest(body),
        }
    }
}

impl From<AppError> for StorageError {
    fn from(error: AppError) -> Self {
        error.log_if_server_error();
        let status = error.status();
        let body = Json(error.body());
        match status {
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable(body, RETRY_AFTER_SECONDS),
            _ => Self::Internal(body),
        }
    }
}

impl From<sqlx::Error> for StorageError {
    fn from(error: sqlx::Error) -> Self {
        AppError::from(error).into()
    }
}

impl From<sqlx::Error> for RequestError {
    fn from(error: sqlx::Error) -> Self {
        AppError::from(error).into()
    }
}

/// Error statuses of `POST /onboarding/analyze-folder`.
#[derive(ApiResponse, Debug)]
pub enum FolderError {
    /// The body is not a JSON object, `folder_path` is missing, the folder
    /// does not exist, or a note cannot be read.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// The folder is outside `MIND_LITE_VAULT_ROOT`.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// The body is larger than the configured limit (`MIND_LITE_MAX_BODY_BYTES`).
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The whole body did not arrive within `MIND_LITE_BODY_TIMEOUT_SECS`.
    #[oai(status = 408)]
    BodyTimeout(Json<ErrorBody>),
    /// The `Content-Type` header is missing or is not `application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// An unexpected failure; the cause is logged by the daemon.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The storage is busy or failing; retry after the number of seconds in
    /// `Retry-After`.
    #[oai(status = 503)]
    Unavailable(
        Json<ErrorBody>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u32,
    ),
}

impl From<AppError> for FolderError {
    fn from(error: AppError) -> Self {
        if error.status() == StatusCode::FORBIDDEN {
            return Self::Forbidden(Json(error.body()));
        }
        match RequestError::from(error) {
            RequestError::BadRequest(body) => Self::BadRequest(body),
            RequestError::PayloadTooLarge(body) => Self::PayloadTooLarge(body),
            RequestError::BodyTimeout(body) => Self::BodyTimeout(body),
            RequestError::UnsupportedMediaType(body) => Self::UnsupportedMediaType(body),
            RequestError::Internal(body) => Self::Internal(body),
            RequestError::Unavailable(body, seconds) => Self::Unavailable(body, seconds),
        }
    }
}

/// Error statuses of the run actions: approve, apply and rollback.
#[derive(ApiResponse, Debug)]
pub enum RunActionError {
    /// The body is not a JSON object, a field is invalid, no proposal matches,
    /// or the rollback is refused; `error` contains the message.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No run has this id (`unknown run id: {run_id}`).
    #[oai(status = 404)]
    UnknownRun(Json<ErrorBody>),
    /// The body is larger than the configured limit (`MIND_LITE_MAX_BODY_BYTES`).
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The whole body did not arrive within `MIND_LITE_BODY_TIMEOUT_SECS`.
    #[oai(status = 408)]
    BodyTimeout(Json<ErrorBody>),
    /// The `Content-Type` header is missing or is not `application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// An unexpected failure; the cause is logged by the daemon.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The storage is busy or failing; retry after the number of seconds in
    /// `Retry-After`.
    #[oai(status = 503)]
    Unavailable(
        Json<ErrorBody>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u32,
    ),
}

impl From<AppError> for RunActionError {
    fn from(error: AppError) -> Self {
        if error.status() == StatusCode::NOT_FOUND {
            return Self::UnknownRun(Json(error.body()));
        }
        match RequestError::from(error) {
            RequestError::BadRequest(body) => Self::BadRequest(body),
            RequestError::PayloadTooLarge(body) => Self::PayloadTooLarge(body),
            RequestError::BodyTimeout(body) => Self::BodyTimeout(body),
            RequestError::UnsupportedMediaType(body) => Self::UnsupportedMediaType(body),
            RequestError::Internal(body) => Self::Internal(body),
            RequestError::Unavailable(body, seconds) => Self::Unavailable(body, seconds),
        }
    }
}

/// Error statuses of the run reads.
#[derive(ApiResponse, Debug)]
pub enum RunLookupError {
    /// No run has this id (`unknown run id: {run_id}`).
    #[oai(status = 404)]
    UnknownRun(Json<ErrorBody>),
    /// An unexpected failure; the cause is logged by the daemon.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The storage is busy or failing; retry after the number of seconds in
    /// `Retry-After`.
    #[oai(status = 503)]
    Unavailable(
        Json<ErrorBody>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u32,
    ),
}

impl From<AppError> for RunLookupError {
    fn from(error: AppError) -> Self {
        if error.status() == StatusCode::NOT_FOUND {
            return Self::UnknownRun(Json(error.body()));
        }
        match StorageError::from(error) {
            StorageError::Internal(body) => Self::Internal(body),
            StorageError::Unavailable(body, seconds) => Self::Unavailable(body, seconds),
        }
    }
}

impl From<sqlx::Error> for RunLookupError {
    fn from(error: sqlx::Error) -> Self {
        AppError::from(error).into()
    }
}
