//! Note organisation over HTTP: PARA classification and folder proposals by
//! title keywords. Both store nothing.

use poem_openapi::{Object, OpenApi, payload::Json};
use serde_json::Value;

use super::{ApiTags, body::JsonBody};
use crate::{
    error::{AppError, RequestError},
    fields::{JsonObject, non_empty_list, optional_string, required_text},
    rules::organize::{
        ActionMode, CLASSIFY_RISK_TIER, DEFAULT_FOLDER, Para, action_mode, classify,
        proposed_folder,
    },
};

/// The organisation endpoints.
pub struct OrganizeApi;

/// A note to classify.
#[derive(Object, Debug)]
pub struct NoteTitle {
    /// Note identifier; must not be blank. Echoed trimmed.
    pub note_id: String,
    /// Note title; must not be blank.
    pub title: String,
}

/// Body of `POST /organize/classify`.
#[derive(Object, Debug)]
pub struct ClassifyRequest {
    /// Notes to classify; at least one.
    pub notes: Vec<NoteTitle>,
}

/// The PARA category of one note.
#[derive(Object, Debug)]
pub struct Classification {
    /// The trimmed note id.
    pub note_id: String,
    /// `project`, `area`, `resource` or `archive`, from title keywords.
    pub primary_para: Para,
    /// Always empty.
    pub secondary_para: Vec<Para>,
    /// Confidence of the category.
    pub confidence: f64,
    /// `auto`, or `manual` for resources.
    pub action_mode: ActionMode,
}

/// One result per note, in request order.
#[derive(Object, Debug)]
pub struct ClassifyResponse {
    /// The classifications.
    pub results: Vec<Classification>,
}

/// A note to place in a folder.
#[derive(Object, Debug)]
pub struct NoteInFolder {
    /// Note identifier; must not be blank. Echoed trimmed.
    pub note_id: String,
    /// Note title; must not be blank.
    pub title: String,
    /// Current folder, untrimmed. Default `Inbox`.
    pub folder: Option<String>,
}

/// Body of `POST /organize/propose-structure`.
#[derive(Object, Debug)]
pub struct ProposeStructureRequest {
    /// Notes to place; at least one.
    pub notes: Vec<NoteInFolder>,
}

/// Reason a folder is proposed.
#[derive(poem_openapi::Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum StructureReason {
    /// Always this reason.
    FolderStandardization,
}

/// A proposed folder for one note.
#[derive(Object, Debug)]
pub struct FolderProposal {
    /// The trimmed note id.
    pub note_id: String,
    /// The folder from the request, or `Inbox`.
    pub current_folder: String,
    /// `Projects` or `Archive` by title keyword, else the current folder when
    /// it is not blank, else `Resources`.
    pub proposed_folder: String,
    /// Always `folder_standardization`.
    pub reason: StructureReason,
    /// Always `manual`.
    pub action_mode: ActionMode,
}

/// One proposal per note, in request order, even when the folder stays.
#[derive(Object, Debug)]
pub struct ProposeStructureResponse {
    /// The proposals.
    pub proposals: Vec<FolderProposal>,
}

#[OpenApi(tag = "ApiTags::Organize")]
impl OrganizeApi {
    /// Classify notes into PARA categories
    ///
    /// Sorts each note into project, area, resource or archive by keywords in
    /// its title. Stores nothing.
    #[oai(
        path = "/organize/classify",
        method = "post",
        operation_id = "organize_classify"
    )]
    async fn classify(
        &self,
        body: JsonBody<ClassifyRequest>,
    ) -> Result<Json<ClassifyResponse>, RequestError> {
        let notes = non_empty_list(&body.object, "notes")?;
        let mut results = Vec::with_capacity(notes.len());
        for (index, note) in notes.iter().enumerate() {
            let note = note_object(note, index)?;
            let note_id = note_text(note, "note_id", index)?;
            let title = note_text(note, "title", index)?;
            let (para, confidence) = classify(title);
            let action_mode = action_mode(CLASSIFY_RISK_TIER, confidence)
                .map_err(|error| AppError::Internal(error.into()))?;
            results.push(Classification {
                note_id: note_id.to_owned(),
                primary_para: para,
                secondary_para: Vec::new(),
                confidence,
                action_mode,
            });
        }
        Ok(Json(ClassifyResponse { results }))
    }

    /// Propose folders for notes
    ///
    /// Proposes a folder for each note from keywords in its title and its
    /// current folder. Stores nothing.
    #[oai(
        path = "/organize/propose-structure",
        method = "post",
        operation_id = "organize_propose_structure"
    )]
    async fn propose_structure(
        &self,
        body: JsonBody<ProposeStructureRequest>,
    ) -> Result<Json<ProposeStructureResponse>, RequestError> {
        let notes = non_empty_list(&body.object, "notes")?;
        let mut proposals = Vec::with_capacity(notes.len());
        for (index, note) in notes.iter().enumerate() {
            let note = note_object(note, index)?;
            let note_id = note_text(note, "note_id", index)?;
            let title = note_text(note, "title", index)?;
            let folder = optional_string(note, "folder", DEFAULT_FOLDER)
                .map_err(|error| error.in_field(format!("notes[{index}].folder")))?;
            proposals.push(FolderProposal {
                note_id: note_id.to_owned(),
                current_folder: folder.to_owned(),
                proposed_folder: proposed_folder(title, folder).to_owned(),
                reason: StructureReason::FolderStandardization,
                action_mode: ActionMode::Manual,
            });
        }
        Ok(Json(ProposeStructureResponse { proposals }))
    }
}

fn note_object(note: &Value, index: usize) -> Result<&JsonObject, AppError> {
    note.as_object().ok_or_else(|| {
        AppError::invalid_field(format!("notes[{index}]"), "each note must be an object")
    })
}

/// Reads a required text field of `notes[index]`, naming it in the error.
fn note_text<'a>(
    note: &'a JsonObject,
    field: &'static str,
    index: usize,
) -> Result<&'a str, AppError> {
    required_text(note, field).map_err(|error| error.in_field(format!("notes[{index}].{field}")))
}
