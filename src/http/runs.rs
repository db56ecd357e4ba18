//! Folder analysis and the run workflow over HTTP: list, read, approve, apply
//! and roll back.

use std::path::PathBuf;

use poem::Request;
use poem_openapi::{
    OpenApi,
    param::{Path, Query},
    payload::Json,
};
use serde_json::Value;

use super::{ApiTags, body::JsonBody, runs_types::*};
use crate::{
    db::Database,
    error::{AppError, FolderError, RunActionError, RunLookupError, StorageError},
    fields::{JsonObject, as_string_list},
    rules::runs::RunState,
    runs::{self, ChangeTypes, store},
};

/// The onboarding and run endpoints.
pub struct RunsApi {
    pub db: Database,
    /// Folders outside this root are rejected (`MIND_LITE_VAULT_ROOT`).
    pub vault_root: Option<PathBuf>,
}

#[OpenApi(tag = "ApiTags::Runs")]
impl RunsApi {
    /// Analyse a folder of notes
    ///
    /// Counts the Markdown notes below the folder, the notes without a
    /// wiki-link and the wiki-links per note, then creates a run with two
    /// pending proposals. Reads the folder only; hidden files and folders are
    /// skipped and symbolic links are not followed out of the folder.
    #[oai(
        path = "/onboarding/analyze-folder",
        method = "post",
        operation_id = "analyze_folder"
    )]
    async fn analyze_folder(
        &self,
        body: JsonBody<AnalyzeFolderRequest>,
    ) -> Result<Json<RunBody>, FolderError> {
        let folder_path = match body.object.get("folder_path") {
            Some(Value::String(path)) if !path.is_empty() => path.as_str(),
            _ => return Err(AppError::required("folder_path").into()),
        };
        let run = runs::analyze_folder(&self.db, folder_path, self.vault_root.as_deref()).await?;
        Ok(Json(run.into()))
    }

    /// List runs
    ///
    /// Returns every run in creation order, or only those in the given state.
    #[oai(path = "/runs", method = "get", operation_id = "list_runs")]
    async fn list_runs(
        &self,
        request: &Request,
        /// Keep only runs in this state (`analyzing`, `approved`, `applied` or
        /// `rolled_back`). An empty value means no filter; when repeated, the
        /// last non-empty value counts.
        #[oai(name = "state")]
        _state: Query<Option<String>>,
    ) -> Result<Json<RunList>, StorageError> {
        let state = last_non_empty(request, "state");
        let runs = store::list_runs(&self.db.reader, state.as_deref()).await?;
        Ok(Json(RunList {
            runs: runs.into_iter().map(RunBody::from).collect(),
        }))
    }

    /// Read a run
    ///
    /// Returns the run record with its folder profile and snapshot ids.
    #[oai(path = "/runs/:run_id", method = "get", operation_id = "get_run")]
    async fn get_run(
        &self,
        request: &Request,
        /// The run id, such as `run_0001`.
        #[oai(name = "run_id")]
        _run_id: Path<String>,
    ) -> Result<Json<RunBody>, RunLookupError> {
        let run_id = raw_run_id(request)?;
        let run = runs::require_run(&self.db.reader, &run_id).await?;
        Ok(Json(run.into()))
    }

    /// List a run's proposals
    ///
    /// Returns the proposals in creation order, keeping those that match
    /// every given filter exactly. Empty filter values are ignored; when a
    /// filter is repeated, the last non-empty value counts.
    #[oai(
        path = "/runs/:run_id/proposals",
        method = "get",
        operation_id = "list_proposals"
    )]
    async fn list_proposals(
        &self,
        request: &Request,
        /// The run id, such as `run_0001`.
        #[oai(name = "run_id")]
        _run_id: Path<String>,
        /// Keep only this risk tier: `low`, `medium` or `high`.
        #[oai(name = "risk_tier")]
        _risk_tier: Query<Option<String>>,
        /// Keep only this action mode: `auto`, `suggest` or `manual`.
        #[oai(name = "action_mode")]
        _action_mode: Query<Option<String>>,
        /// Keep only this status: `pending`, `approved` or `applied`.
        #[oai(name = "status")]
        _status: Query<Option<String>>,
    ) -> Result<Json<ProposalList>, RunLookupError> {
        let run_id = raw_run_id(request)?;
        let mut connection = self.db.reader.acquire().await.map_err(AppError::from)?;
        runs::require_run(&mut *connection, &run_id).await?;
        let proposals = store::list_proposals(&mut *connection, &run_id).await?;
        drop(connection);

        let risk_tier = last_non_empty(request, "risk_tier");
        let action_mode = last_non_empty(request, "action_mode");
        let status = last_non_empty(request, "status");
        let matches = |filter: &Option<String>, value: &str| {
            filter.as_deref().is_none_or(|wanted| wanted == value)
        };
        let proposals = proposals
            .into_iter()
            .filter(|proposal| {
                matches(&risk_tier, &proposal.risk_tier)
                    && matches(&action_mode, &proposal.action_mode)
                    && matches(&status, &proposal.status)
            })
            .map(ProposalBody::from)
            .collect();
        Ok(Json(ProposalList { run_id, proposals }))
    }

    /// Approve a run's proposals
    ///
    /// Approves the proposals that are not applied yet, all of them or those
    /// of the given change types, and sets the run's state to `approved`.
    #[oai(
        path = "/runs/:run_id/approve",
        method = "post",
        operation_id = "approve_run"
    )]
    async fn approve(
        &self,
        request: &Request,
        /// The run id, such as `run_0001`.
        #[oai(name = "run_id")]
        _run_id: Path<String>,
        body: JsonBody<ChangeTypesRequest>,
    ) -> Result<Json<ApproveResponse>, RunActionError> {
        let run_id = raw_run_id(request)?;
        let change_types = change_types(&body.object);
        let outcome = runs::approve(&self.db, &run_id, &change_types).await?;
        Ok(Json(ApproveResponse {
            run_id: outcome.run_id,
            state: RunState::Approved,
            approved_count: outcome.count,
        }))
    }

    /// Apply a run's proposals
    ///
    /// Applies the proposals that are not applied yet, all of them or those of
    /// the given change types; approval first is optional. Records a snapshot
    /// of the applied proposals and sets the run's state to `applied`.
    #[oai(
        path = "/runs/:run_id/apply",
        method = "post",
        operation_id = "apply_run"
    )]
    async fn apply(
        &self,
        request: &Request,
        /// The run id, such as `run_0001`.
        #[oai(name = "run_id")]
        _run_id: Path<String>,
        body: JsonBody<ChangeTypesRequest>,
    ) -> Result<Json<ApplyResponse>, RunActionError> {
        let run_id = raw_run_id(request)?;
        let change_types = change_types(&body.object);
        let outcome = runs::apply(&self.db, &run_id, &change_types).await?;
        let snapshot_id = outcome
            .snapshot_id
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("apply returned no snapshot")))?;
        Ok(Json(ApplyResponse {
            run_id: outcome.run_id,
            state: RunState::Applied,
            snapshot_id,
            applied_count: outcome.count,
        }))
    }

    /// Roll back a run's newest snapshot
    ///
    /// Returns the proposals applied in the snapshot to `approved`, marks the
    /// snapshot rolled back and sets the run's state to `rolled_back`. Only
    /// the newest snapshot can be rolled back, and only once.
    #[oai(
        path = "/runs/:run_id/rollback",
        method = "post",
        operation_id = "rollback_run"
    )]
    async fn rollback(
        &self,
        request: &Request,
        /// The run id, such as `run_0001`.
        #[oai(name = "run_id")]
        _run_id: Path<String>,
        body: JsonBody<RollbackRequest>,
    ) -> Result<Json<RollbackResponse>, RunActionError> {
        let run_id = raw_run_id(request)?;
        let snapshot_id = runs::rollback(&self.db, &run_id, body.object.get("snapshot_id")).await?;
        Ok(Json(RollbackResponse {
            run_id,
            state: RunState::RolledBack,
            rolled_back_snapshot_id: snapshot_id,
        }))
    }
}

/// Reads `change_types`: absent or `null` means all types. A bad value is
/// reported only after the run is found, as in v1.
fn change_types(body: &JsonObject) -> ChangeTypes {
    match body.get("change_types") {
        None | Some(Value::Null) => ChangeTypes::All,
        Some(value) => as_string_list(value).map_or(ChangeTypes::Invalid, ChangeTypes::Only),
    }
}

/// Returns the run id segment of the request path as sent, without
/// percent-decoding, as v1 compares it. An empty segment is an unknown path.
fn raw_run_id(request: &Request) -> Result<String, AppError> {
    match request.uri().path().split('/').nth(2) {
        Some(run_id) if !run_id.is_empty() => Ok(run_id.to_owned()),
        _ => Err(AppError::NotFound),
    }
}

/// Returns the last non-empty value of a query parameter, decoded (`+` is a
/// space), as v1 reads its filters.
fn last_non_empty(request: &Request, name: &str) -> Option<String> {
    let query = request.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(key, value)| key == name && !value.is_empty())
        .last()
        .map(|(_, value)| value.into_owned())
}
