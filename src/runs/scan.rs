//! Read-only folder analysis: finds the notes below a folder and counts their
//! wiki-links (spec 4.4, with decision D40).
//!
//! Unlike v1, the scan skips hidden entries (names starting with `.`), decodes
//! invalid UTF-8 lossily with a warning, never follows a symbolic link out of
//! the folder, and, with a vault root configured, refuses folders outside it.
//! It opens files for reading only.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use walkdir::{DirEntry, WalkDir};

use crate::{
    error::AppError,
    rules::runs::{FolderProfile, count_wiki_links, folder_profile, is_note_file_name},
};

/// Analyses the folder at `folder_path` (resolved against the working
/// directory when relative). Blocking: run it on a blocking thread.
pub fn scan_folder(
    folder_path: &str,
    vault_root: Option<&Path>,
) -> Result<FolderProfile, AppError> {
    let root = resolve_folder(folder_path, vault_root)?;
    let mut links_per_note = Vec::new();
    let walker = WalkDir::new(&root)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| !is_hidden(entry));
    for entry in walker {
        let entry = entry.map_err(|error| {
            let path = error.path().unwrap_or(&root).to_owned();
            unreadable(&path, error.into())
        })?;
        if let Some(note) = note_to_read(&entry, &root) {
            links_per_note.push(count_wiki_links(&read_note(&note)?));
        }
    }
    Ok(folder_profile(&links_per_note))
}

/// Checks that the folder exists, is a directory (a symbolic link to one
/// counts) and lies under the vault root; returns its canonical path.
fn resolve_folder(folder_path: &str, vault_root: Option<&Path>) -> Result<PathBuf, AppError> {
    let missing = || AppError::BadRequest {
        message: format!("folder does not exist or is not a directory: {folder_path}"),
        code: "missing_folder",
        field: Some("folder_path".into()),
    };
    let canonical = if folder_path.contains('\0') {
        None
    } else {
        fs::canonicalize(folder_path).ok()
    };

    if let Some(vault_root) = vault_root {
        let vault_root = fs::canonicalize(vault_root).map_err(|error| {
            AppError::Internal(anyhow::anyhow!(
                "MIND_LITE_VAULT_ROOT {} cannot be resolved: {error}",
                vault_root.display()
            ))
        })?;
        // A path that does not exist is compared as written, so that the
        // answer does not tell whether a path outside the root exists.
        let compared = match &canonical {
            Some(path) => path.clone(),
            None => std::path::absolute(folder_path).unwrap_or_else(|_| folder_path.into()),
        };
        if !compared.starts_with(&vault_root) {
            return Err(AppError::OutsideVaultRoot {
                folder_path: folder_path.to_owned(),
            });
        }
    }

    let canonical = canonical.ok_or_else(missing)?;
    if canonical.is_dir() {
        Ok(canonical)
    } else {
        Err(missing())
    }
}

/// Hidden entries below the folder, such as `.obsidian` and `.trash`, are
/// skipped with everything inside them.
fn is_hidden(entry: &DirEntry) -> bool {
    entry.depth() > 0 && entry.file_name().to_string_lossy().starts_with('.')
}

/// Returns the file to read when `entry` is a note: a regular file with a note
/// extension, or a symbolic link with one whose target is a file inside the
/// folder. Links to directories are not descended into.
fn note_to_read(entry: &DirEntry, root: &Path) -> Option<PathBuf> {
    if !is_note_file_name(&entry.file_name().to_string_lossy()) {
        return None;
    }
    let file_type = entry.file_type();
    if file_type.is_file() {
        return Some(entry.path().to_owned());
    }
    if !file_type.is_symlink() {
        return None;
    }
    let Ok(target) = fs::canonicalize(entry.path()) else {
        tracing::debug!(path = %entry.path().display(), "skipped a broken symbolic link");
        return None;
    };
    if !target.starts_with(root) {
        tracing::warn!(
            path = %entry.path().display(),
            target = %target.display(),
            "skipped a symbolic link that points outside the analysed folder"
        );
        return None;
    }
    target.is_file().then_some(target)
}

/// Reads a note as text; invalid UTF-8 is replaced and logged, not refused.
fn read_note(path: &Path) -> Result<String, AppError> {
    let bytes = fs::read(path).map_err(|error| unreadable(path, error))?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(error) => {
            tracing::warn!(
                path = %path.display(),
                valid_up_to = error.utf8_error().valid_up_to(),
                "note is not valid UTF-8; invalid bytes were replaced before counting links"
            );
            Ok(String::from_utf8_lossy(error.as_bytes()).into_owned())
        }
    }
}

fn unreadable(path: &Path, error: io::Error) -> AppError {
    tracing::warn!(path = %path.display(), error = %error, "folder analysis could not read a path");
    AppError::BadRequest {
        message: format!("cannot read {}: {error}", path.display()),
        code: "unreadable_path",
        field: Some("folder_path".into()),
    }
}
