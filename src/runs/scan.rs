//! Read-only folder analysis: finds the notes below a folder and counts their
//! wiki-links with v1's rule.
//!
//! Unlike v1, the scan skips hidden entries (names starting with `.`) and
//! decodes invalid UTF-8 lossily with a warning. It never reads a file outside
//! the folder, whether through a symbolic link or a folder swapped during the
//! scan. With a vault root configured, it rejects folders outside that root.
//! It opens files for reading only, without blocking on FIFOs or devices, and
//! reads each note in chunks, so a note of any size takes constant memory.

use std::{
    fs::{self, File},
    io::{self, Read},
    path::{Component, Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

use walkdir::{DirEntry, WalkDir};

use crate::{
    error::AppError,
    rules::runs::{FolderProfile, WikiLinkCounter, folder_profile, is_note_file_name},
};

/// Bytes read from a note at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Analyses the folder at `folder_path` (resolved against the working
/// directory when relative). Blocking: run it on a blocking thread. It stops
/// with an error soon after `cancelled` is set, between entries or chunks.
pub fn scan_folder(
    folder_path: &str,
    vault_root: Option<&Path>,
    cancelled: &AtomicBool,
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
        check_cancelled(cancelled)?;
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                let path = error.path().unwrap_or(&root).to_owned();
                let cause = error
                    .into_io_error()
                    .unwrap_or_else(|| io::Error::other("file system loop"));
                if cause.kind() == io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), "skipped a folder deleted during the scan");
                    continue;
                }
                return Err(unreadable(&path, &cause));
            }
        };
        let Some(note) = note_to_read(&entry, &root) else {
            continue;
        };
        if let Some(links) = count_note_links(&note, &root, cancelled)? {
            links_per_note.push(links);
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

    // The root was made canonical at startup and is not resolved again, so a
    // root removed or replaced since then leaves nothing inside it rather
    // than failing every analysis.
    if let Some(vault_root) = vault_root {
        let compared = match &canonical {
            Some(path) => path.clone(),
            None => resolve_missing(Path::new(folder_path)),
        };
        if !compared.starts_with(vault_root) {
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

/// Resolves a path that does not exist as the OS would if it did: `..` and
/// `.` are applied, and the longest existing ancestor is canonicalised. So a
/// missing path gets the same vault-root verdict as an existing one in its
/// place, and the response reveals nothing about paths outside the root.
fn resolve_missing(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut normal = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                // Like the OS, resolve a symbolic link before leaving it.
                if let Ok(canonical) = fs::canonicalize(&normal) {
                    normal = canonical;
                }
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    let mut existing = normal.as_path();
    let mut rest = Vec::new();
    while let Some(parent) = existing.parent() {
        if let Ok(canonical) = fs::canonicalize(existing) {
            return rest
                .iter()
                .rev()
                .fold(canonical, |path, part| path.join(part));
        }
        if let Some(name) = existing.file_name() {
            rest.push(name.to_owned());
        }
        existing = parent;
    }
    normal
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

/// Counts the wiki-links of one note, or returns `None` when the path is no
/// longer a regular file inside the folder (it changed during the scan).
/// Invalid UTF-8 is counted as replacement characters and logged.
fn count_note_links(
    path: &Path,
    root: &Path,
    cancelled: &AtomicBool,
) -> Result<Option<usize>, AppError> {
    let Some(mut file) = open_regular_file(path)? else {
        return Ok(None);
    };
    if let Some(opened) = opened_path(&file).filter(|opened| !opened.starts_with(root)) {
        tracing::warn!(
            path = %path.display(),
            opened = %opened.display(),
            "skipped a note that resolved outside the analysed folder while it was scanned"
        );
        return Ok(None);
    }

    let mut counter = WikiLinkCounter::default();
    let mut utf8 = Utf8Check::default();
    let mut buffer = vec![0; READ_CHUNK_BYTES];
    loop {
        check_cancelled(cancelled)?;
        let read = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(unreadable(path, &error)),
        };
        counter.feed(&buffer[..read]);
        utf8.feed(&buffer[..read]);
    }
    if let Some(offset) = utf8.finish() {
        tracing::warn!(
            path = %path.display(),
            first_invalid_byte = offset,
            "note is not valid UTF-8; invalid bytes were read as replacement characters"
        );
    }
    Ok(Some(counter.count()))
}

/// Opens `path` for reading without following a final symbolic link and
/// without blocking on a FIFO, then checks that the opened file is a regular
/// file. Returns `None`, with a warning, when it is not (the entry was
/// replaced during the scan).
fn open_regular_file(path: &Path) -> Result<Option<File>, AppError> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        #[cfg(unix)]
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
            tracing::warn!(path = %path.display(), "skipped a note replaced by a symbolic link during the scan");
            return Ok(None);
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), "skipped a note deleted during the scan");
            return Ok(None);
        }
        Err(error) => return Err(unreadable(path, &error)),
    };
    let metadata = file.metadata().map_err(|error| unreadable(path, &error))?;
    if metadata.is_file() {
        Ok(Some(file))
    } else {
        tracing::warn!(path = %path.display(), "skipped a note that is no longer a regular file");
        Ok(None)
    }
}

/// Returns the path of an open file as the kernel resolved it, read from
/// `/proc` on Linux. Elsewhere, or without `/proc`, it returns `None`, and
/// only the checks made on the path before opening apply.
fn opened_path(file: &File) -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        None
    }
}

/// Validates UTF-8 over chunks, carrying an incomplete sequence at the end of
/// one chunk into the next.
#[derive(Debug, Default)]
struct Utf8Check {
    carried: Vec<u8>,
    offset: usize,
    first_invalid: Option<usize>,
}

impl Utf8Check {
    fn feed(&mut self, chunk: &[u8]) {
        if self.first_invalid.is_some() {
            return;
        }
        let mut bytes = std::mem::take(&mut self.carried);
        bytes.extend_from_slice(chunk);
        match std::str::from_utf8(&bytes) {
            Ok(_) => self.offset += bytes.len(),
            Err(error) if error.error_len().is_none() => {
                let valid = error.valid_up_to();
                self.offset += valid;
                self.carried = bytes[valid..].to_vec();
            }
            Err(error) => self.first_invalid = Some(self.offset + error.valid_up_to()),
        }
    }

    /// Returns the offset of the first invalid byte, if any.
    fn finish(self) -> Option<usize> {
        self.first_invalid
            .or_else(|| (!self.carried.is_empty()).then_some(self.offset))
    }
}

/// Stops the scan once the request that started it is gone (the client
/// disconnected or shutdown timed out), so that it does not keep reading and
/// keep the process alive.
fn check_cancelled(cancelled: &AtomicBool) -> Result<(), AppError> {
    if cancelled.load(Ordering::Relaxed) {
        Err(AppError::Internal(anyhow::anyhow!(
            "folder analysis cancelled because its request ended"
        )))
    } else {
        Ok(())
    }
}

fn unreadable(path: &Path, error: &io::Error) -> AppError {
    tracing::warn!(path = %path.display(), %error, "folder analysis could not read a path");
    AppError::BadRequest {
        message: format!("cannot read {}: {error}", path.display()),
        code: "unreadable_path",
        field: Some("folder_path".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_check_across_chunks() {
        let text = "café ☕ naïve".as_bytes();
        for split in 0..=text.len() {
            let mut check = Utf8Check::default();
            check.feed(&text[..split]);
            check.feed(&text[split..]);
            assert_eq!(check.finish(), None, "valid text split at {split}");
        }
    }

    #[test]
    fn utf8_check_reports_first_invalid_byte() {
        let mut check = Utf8Check::default();
        check.feed(b"ab");
        check.feed(b"c\xffd");
        assert_eq!(check.finish(), Some(3), "offset of 0xff");
    }

    #[test]
    fn utf8_check_reports_truncated_end() {
        let mut check = Utf8Check::default();
        check.feed("ab".as_bytes());
        check.feed(&"é".as_bytes()[..1]);
        assert_eq!(check.finish(), Some(2), "an incomplete last character");
    }

    #[test]
    fn resolve_missing_applies_parent_components() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let root = fs::canonicalize(dir.path()).expect("canonical root");
        let inside = root.join("vault");
        fs::create_dir(&inside).expect("create vault");

        let escaped = resolve_missing(&inside.join("missing/../../elsewhere"));
        assert_eq!(escaped, root.join("elsewhere"), "`..` is applied");

        let outside = root.join("outside/deeper");
        fs::create_dir_all(&outside).expect("create outside folder");
        std::os::unix::fs::symlink(&outside, inside.join("link")).expect("create symlink");
        let through_link = resolve_missing(&inside.join("link/../missing"));
        assert_eq!(
            through_link,
            root.join("outside/missing"),
            "`..` after a symbolic link leaves the link's target"
        );
        let kept = resolve_missing(&inside.join("missing/child"));
        assert_eq!(kept, inside.join("missing/child"), "missing parts are kept");
    }

    #[test]
    fn cancelled_scan_stops() {
        let dir = tempfile::tempdir().expect("temporary directory");
        fs::write(dir.path().join("a.md"), "[[b]]").expect("write note");
        let folder = dir.path().to_string_lossy().into_owned();

        let finished = scan_folder(&folder, None, &AtomicBool::new(false));
        assert!(finished.is_ok(), "a scan that is not cancelled finishes");
        let cancelled = scan_folder(&folder, None, &AtomicBool::new(true));
        assert!(
            matches!(cancelled, Err(AppError::Internal(_))),
            "a cancelled scan must stop with an error"
        );
    }
}
