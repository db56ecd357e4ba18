//! Folder analysis over HTTP against the in-process daemon, on vaults built
//! in temporary directories. Covers which files are notes, how wiki-links are
//! counted, hidden entries, lossy decoding, symbolic links, input errors and
//! the vault root. Also checks that the analysis never writes under the
//! folder.

mod common;

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::symlink,
    path::{Component, Path, PathBuf},
    time::SystemTime,
};

use common::{
    TestDir, TestServer,
    publish::{ExpectedError, assert_error},
    runs::{ANALYZE, Vault, analyze, analyze_raw, path_text, profile, run_ids, settings, start},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A folder of 86 real Markdown notes, read in place.
const FOAM_DOCS: &str = "/work/shared/data/foam-docs";

// ---------------------------------------------------------------------------
// Helpers

fn profile_of(note_count: i64, orphan_notes: i64, link_density: f64) -> Value {
    json!({"note_count": note_count, "orphan_notes": orphan_notes, "link_density": link_density})
}

fn missing_folder(folder_path: &str) -> String {
    format!("folder does not exist or is not a directory: {folder_path}")
}

/// Asserts the 400 for a path that is not an existing directory.
fn assert_missing_folder(context: &str, response: &(StatusCode, Value), folder_path: &str) {
    let message = missing_folder(folder_path);
    let expected = ExpectedError {
        status: StatusCode::BAD_REQUEST,
        message: &message,
        code: "missing_folder",
        field: Some("folder_path"),
    };
    assert_error(context, response, &expected);
}

/// Asserts the 403 for a folder outside the vault root.
fn assert_outside_root(context: &str, response: &(StatusCode, Value), folder_path: &str) {
    let (status, body) = response;
    assert_eq!(
        *status,
        StatusCode::FORBIDDEN,
        "{context}: wrong status, body {body}"
    );
    common::assert_error_shape(body);
    assert_eq!(body["code"], "outside_vault_root", "{context}: wrong code");
    assert_eq!(body["field"], "folder_path", "{context}: wrong field");
    let message = body["error"].as_str().unwrap_or_default();
    assert!(
        message.contains(folder_path),
        "{context}: message {message:?} does not name the folder {folder_path:?}"
    );
}

/// Returns the path that leads from the working directory to `target`, made
/// of `..` components and the target's components, so that a relative
/// `folder_path` can reach a temporary directory from any working directory.
fn relative_from_cwd(target: &Path) -> PathBuf {
    let cwd = fs::canonicalize(std::env::current_dir().expect("working directory"))
        .expect("canonical working directory");
    let target = fs::canonicalize(target).expect("canonical target");
    let mut relative = PathBuf::new();
    for component in cwd.components() {
        if matches!(component, Component::Normal(_)) {
            relative.push("..");
        }
    }
    for component in target.components() {
        if let Component::Normal(name) = component {
            relative.push(name);
        }
    }
    relative
}

/// What the analysis must leave unchanged for one entry under a folder.
#[derive(Debug, PartialEq)]
struct EntryState {
    kind: &'static str,
    len: u64,
    modified: SystemTime,
    content: Option<Vec<u8>>,
}

/// Records every entry below `root` (symbolic links not followed) with its
/// type, size, modification time and, for files, its bytes.
fn folder_state(root: &Path) -> BTreeMap<PathBuf, EntryState> {
    let mut state = BTreeMap::new();
    let mut pending = vec![root.to_owned()];
    while let Some(path) = pending.pop() {
        let metadata = fs::symlink_metadata(&path).expect("read metadata");
        let file_type = metadata.file_type();
        let (kind, content) = if file_type.is_symlink() {
            ("symlink", None)
        } else if file_type.is_dir() {
            for entry in fs::read_dir(&path).expect("list folder") {
                pending.push(entry.expect("read folder entry").path());
            }
            ("dir", None)
        } else {
            ("file", Some(fs::read(&path).expect("read file")))
        };
        let entry = EntryState {
            kind,
            len: metadata.len(),
            modified: metadata.modified().expect("modification time"),
            content,
        };
        state.insert(path, entry);
    }
    state
}

// ---------------------------------------------------------------------------
// Notes and wiki-links

#[tokio::test]
async fn note_detection_by_extension() {
    let (_dir, server) = start().await;
    let cases: &[(&str, &[&str], i64)] = &[
        ("lower-case .md", &["note.md"], 1),
        ("upper-case .MD", &["NOTE.MD"], 1),
        ("mixed-case .Md", &["note.Md"], 1),
        (".markdown", &["note.markdown"], 1),
        ("upper-case .MARKDOWN", &["note.MARKDOWN"], 1),
        ("double extension ending in .md", &["note.txt.md"], 1),
        (".md.bak", &["note.md.bak"], 0),
        (".txt", &["note.txt"], 0),
        ("no extension", &["md"], 0),
        ("name ending in md without a dot", &["notemd"], 0),
        (".mdx", &["note.mdx"], 0),
        ("file named .md", &[".md"], 0),
        ("trailing dot", &["note.md."], 0),
    ];
    for (case, files, expected) in cases {
        let vault = Vault::new();
        for file in *files {
            vault.write(file, "[[x]]");
        }
        let profile = profile(&server, &vault.folder_path()).await;
        assert_eq!(
            profile["note_count"], *expected,
            "{case}: wrong note_count for {files:?}"
        );
    }
}

#[tokio::test]
async fn directory_named_md_not_a_note() {
    let (_dir, server) = start().await;
    let vault = Vault::new();
    vault.mkdir("folder.md");
    vault.write("folder.md/inside.txt", "[[x]]");
    vault.mkdir("empty.markdown");

    let profile = profile(&server, &vault.folder_path()).await;

    assert_eq!(
        profile,
        profile_of(0, 0, 0.0),
        "directories with note extensions were counted"
    );
}

#[tokio::test]
async fn notes_inside_md_directory_counted() {
    let (_dir, server) = start().await;
    let vault = Vault::new();
    vault.write("folder.md/inside.md", "[[x]]");

    let profile = profile(&server, &vault.folder_path()).await;

    assert_eq!(
        profile["note_count"], 1,
        "a note inside a folder named folder.md"
    );
}

#[tokio::test]
async fn wiki_link_counting() {
    let (_dir, server) = start().await;
    let cases: &[(&str, &str, i64)] = &[
        ("plain link", "see [[a]]", 1),
        ("link with alias", "see [[a|b]]", 1),
        ("embed", "![[embed.png]]", 1),
        ("link spanning lines", "[[first\nsecond]]", 1),
        ("empty brackets", "[[]]", 0),
        ("single brackets", "[a]", 0),
        ("unclosed link", "[[a] and [[b", 0),
        ("two links on one line", "[[a]] and [[b]]", 2),
        ("adjacent links", "[[a]][[b]]", 2),
        ("extra opening bracket", "[[[a]]", 1),
        ("extra closing bracket", "[[a]]]", 1),
        (
            "links on several lines",
            "[[a]]\n\ntext\n[[b|c]]\n![[d]]",
            3,
        ),
        ("no links", "plain text", 0),
        ("empty note", "", 0),
    ];
    for (case, content, links) in cases {
        let vault = Vault::new();
        vault.write("note.md", content);
        let orphans = i64::from(*links == 0);
        let profile = profile(&server, &vault.folder_path()).await;
        assert_eq!(
            profile,
            profile_of(1, orphans, *links as f64),
            "{case}: wrong profile for content {content:?}"
        );
    }
}

#[tokio::test]
async fn two_notes_example_profile() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();

    let profile = profile(&server, &vault.folder_path()).await;

    assert_eq!(profile, profile_of(2, 1, 0.5), "the two-note example");
}

#[tokio::test]
async fn three_notes_example_profile() {
    let (_dir, server) = start().await;
    let vault = Vault::new();
    vault.write("one.md", "No links here");
    vault.write("two.md", "[[one]] and [[three]]");
    vault.write("three.md", "Nothing");

    let response = server
        .client
        .post(server.url(ANALYZE))
        .header("content-type", "application/json")
        .body(json!({"folder_path": vault.folder_path()}).to_string())
        .send()
        .await
        .expect("send analysis");
    let status = response.status();
    let text = response.text().await.expect("read body");

    assert_eq!(status, StatusCode::OK, "analysis failed: {text}");
    let body: Value = serde_json::from_str(&text).expect("JSON body");
    assert_eq!(
        body["profile"],
        profile_of(3, 2, 2.0 / 3.0),
        "the three-note example"
    );
    assert!(
        text.contains("0.6666666666666666"),
        "link_density must be written unrounded as 0.6666666666666666: {text}"
    );
}

#[tokio::test]
async fn empty_folder_profile() {
    let (_dir, server) = start().await;
    let vault = Vault::new();

    let profile = profile(&server, &vault.folder_path()).await;

    assert_eq!(profile, profile_of(0, 0, 0.0), "an empty folder");
    assert!(
        profile["link_density"].is_f64(),
        "link_density of an empty folder must be the float 0.0: {profile}"
    );
}

#[tokio::test]
async fn nested_folders_counted() {
    let (_dir, server) = start().await;
    let vault = Vault::new();
    vault.write("top.md", "[[a]]");
    vault.write("one/two.md", "no links");
    vault.write("one/two/three/four.markdown", "[[a]] [[b]] [[c]]");
    vault.write("one/two/three/skip.txt", "[[ignored]]");

    let profile = profile(&server, &vault.folder_path()).await;

    assert_eq!(
        profile,
        profile_of(3, 1, 4.0 / 3.0),
        "notes in nested folders"
    );
}

#[tokio::test]
async fn hidden_entries_skipped() {
    let (_dir, server) = start().await;
    let vault = Vault::new();
    vault.write("visible.md", "[[a]]");
    vault.write(".obsidian/workspace.md", "no links");
    vault.write(".trash/deleted.md", "no links");
    vault.write(".hidden.md", "no links");
    vault.write("sub/.draft.md", "no links");
    vault.write("sub/.cache/deep/note.md", "no links");
    vault.write("sub/shown.md", "[[b]] [[c]]");

    let profile = profile(&server, &vault.folder_path()).await;

    assert_eq!(
        profile,
        profile_of(2, 0, 1.5),
        "hidden files and folders must be skipped"
    );
}

#[tokio::test]
async fn hidden_analysed_folder_allowed() {
    let (_dir, server) = start().await;
    let vault = Vault::new();
    vault.write(".vault/note.md", "[[a]]");

    let profile = profile(&server, &path_text(&vault.join(".vault"))).await;

    assert_eq!(
        profile,
        profile_of(1, 0, 1.0),
        "a folder whose own name starts with a dot must still be analysed"
    );
}

#[tokio::test]
async fn invalid_utf8_decoded_lossily() {
    let (_dir, server) = start().await;
    let vault = Vault::new();
    vault.write(
        "broken.md",
        b"\xff\xfe [[link]] \xc3( [[other|x]]\n".as_slice(),
    );
    vault.write("inside.md", b"[[bad \xff byte]]".as_slice());
    vault.write("orphan.md", b"\x80\x81 no links".as_slice());

    let profile = profile(&server, &vault.folder_path()).await;

    assert_eq!(
        profile,
        profile_of(3, 1, 1.0),
        "notes with invalid UTF-8 must be counted with their links"
    );
}

// ---------------------------------------------------------------------------
// Symbolic links

#[tokio::test]
async fn symlink_to_inside_note_counts() {
    let (_dir, server) = start().await;
    let vault = Vault::new();
    let real = vault.write("real.md", "[[a]]");
    symlink(&real, vault.join("alias.md")).expect("create symlink");
    symlink("real.md", vault.join("relative-alias.md")).expect("create relative symlink");

    let profile = profile(&server, &vault.folder_path()).await;

    assert_eq!(
        profile,
        profile_of(3, 0, 1.0),
        "links to a note inside the folder count"
    );
}

#[tokio::test]
async fn symlink_to_outside_note_skipped() {
    let (_dir, server) = start().await;
    let outside = Vault::new();
    let secret = outside.write("secret.md", "[[a]] [[b]]");
    let vault = Vault::new();
    vault.write("own.md", "no links");
    symlink(&secret, vault.join("leak.md")).expect("create symlink");

    let profile = profile(&server, &vault.folder_path()).await;

    assert_eq!(
        profile,
        profile_of(1, 1, 0.0),
        "a link to a note outside the folder must not count"
    );
}

#[tokio::test]
async fn symlink_to_directory_not_descended() {
    let (_dir, server) = start().await;
    let outside = Vault::new();
    outside.write("elsewhere.md", "[[a]]");
    let vault = Vault::new();
    vault.write("inner/note.md", "[[b]]");
    symlink(vault.join("inner"), vault.join("inner-link")).expect("create inner symlink");
    symlink(vault.join("inner"), vault.join("inner-link.md")).expect("create .md symlink");
    symlink(outside.path(), vault.join("outside-link")).expect("create outside symlink");

    let profile = profile(&server, &vault.folder_path()).await;

    assert_eq!(
        profile,
        profile_of(1, 0, 1.0),
        "links to directories must not be descended or counted"
    );
}

#[tokio::test]
async fn broken_symlink_skipped() {
    let (_dir, server) = start().await;
    let vault = Vault::new();
    vault.write("note.md", "[[a]]");
    symlink(vault.join("gone.md"), vault.join("broken.md")).expect("create broken symlink");
    symlink(vault.join("gone"), vault.join("broken-dir")).expect("create broken symlink");

    let profile = profile(&server, &vault.folder_path()).await;

    assert_eq!(
        profile,
        profile_of(1, 0, 1.0),
        "broken links must be skipped"
    );
}

#[tokio::test]
async fn symlinked_folder_analysed() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let links = Vault::new();
    let link = links.join("vault-link");
    symlink(vault.path(), &link).expect("create folder symlink");

    let profile = profile(&server, &path_text(&link)).await;

    assert_eq!(
        profile,
        profile_of(2, 1, 0.5),
        "a folder given as a link to a directory"
    );
}

// ---------------------------------------------------------------------------
// Input errors

#[tokio::test]
async fn folder_path_required() {
    let (_dir, server) = start().await;
    let bodies = [
        json!({}),
        json!({"folder_path": null}),
        json!({"folder_path": 5}),
        json!({"folder_path": true}),
        json!({"folder_path": ""}),
        json!({"folder_path": []}),
        json!({"folder_path": {}}),
        json!({"path": "/tmp"}),
    ];
    for body in bodies {
        let response = server.post(ANALYZE, body.clone()).await;
        let expected = ExpectedError {
            status: StatusCode::BAD_REQUEST,
            message: "folder_path is required",
            code: "missing_field",
            field: Some("folder_path"),
        };
        assert_error(&format!("analysis with {body}"), &response, &expected);
    }
    assert_eq!(
        run_ids(&server, "").await,
        Vec::<String>::new(),
        "rejected analyses stored runs"
    );
}

#[tokio::test]
async fn missing_folder_rejected() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let missing = path_text(&vault.join("missing"));
    let file = path_text(&vault.join("a.md"));
    let with_slash = format!("{}/", path_text(&vault.join("nope")));
    let with_nul = format!("{}\0x", vault.folder_path());

    for folder_path in [missing, file, with_slash, with_nul, "  ".to_owned()] {
        let response = analyze_raw(&server, &folder_path).await;
        assert_missing_folder(
            &format!("analysis of {folder_path:?}"),
            &response,
            &folder_path,
        );
    }
    assert_eq!(
        run_ids(&server, "").await,
        Vec::<String>::new(),
        "rejected analyses stored runs"
    );
}

#[tokio::test]
async fn invalid_json_body_rejected() {
    let (_dir, server) = start().await;

    for body in ["", "not json", "[]", "\"/tmp\"", "{\"folder_path\": "] {
        let response = server
            .post_raw(ANALYZE, Some("application/json"), body)
            .await;
        let expected = ExpectedError {
            status: StatusCode::BAD_REQUEST,
            message: "invalid json",
            code: "invalid_json",
            field: None,
        };
        assert_error(
            &format!("analysis with body {body:?}"),
            &response,
            &expected,
        );
    }
}

#[tokio::test]
async fn relative_folder_path_resolved() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let relative = relative_from_cwd(vault.path());
    assert!(
        relative.is_relative(),
        "{} is not relative",
        relative.display()
    );

    let profile = profile(&server, &path_text(&relative)).await;

    assert_eq!(
        profile,
        profile_of(2, 1, 0.5),
        "relative path {} must resolve against the working directory",
        relative.display()
    );
}

#[tokio::test]
async fn unknown_fields_ignored() {
    let (_dir, server) = start().await;
    let vault = Vault::two_notes();
    let body = json!({"folder_path": vault.folder_path(), "mode": "full", "batch_size": 5});

    let (status, run) = server.post(ANALYZE, body).await;

    assert_eq!(
        status,
        StatusCode::OK,
        "analysis with extra fields failed: {run}"
    );
    assert_eq!(
        run["profile"],
        profile_of(2, 1, 0.5),
        "profile with extra fields"
    );
}

// ---------------------------------------------------------------------------
// Vault root

#[tokio::test]
async fn vault_root_limits_folders() {
    let base = Vault::new();
    let root = base.mkdir("vault");
    base.write("vault/notes/a.md", "[[b]]");
    base.write("vault/notes/b.md", "No links");
    base.write("other/secret.md", "[[x]]");
    base.write("vault-sibling/note.md", "[[x]]");
    symlink(base.join("other"), base.join("vault/escape")).expect("create escaping symlink");
    let dir = TestDir::new();
    let server = TestServer::start_with(settings(&dir, Some(&root))).await;

    let inside = [
        path_text(&root),
        path_text(&base.join("vault/notes")),
        path_text(&base.join("vault/notes/../notes")),
    ];
    for folder_path in &inside {
        let response = analyze_raw(&server, folder_path).await;
        assert_eq!(
            response.0,
            StatusCode::OK,
            "{folder_path} is inside the vault root: {}",
            response.1
        );
    }

    let outside = [
        path_text(&base.join("other")),
        path_text(&base.join("vault-sibling")),
        path_text(&base.join("vault/notes/../../other")),
        path_text(&base.join("vault/escape")),
        path_text(&base.join("other/missing")),
        // Missing paths that leave the root through `..` must get 403 too, or
        // the answer would tell which paths outside the root exist.
        path_text(&base.join("vault/missing/../../other/missing")),
        path_text(&base.join("vault/../nowhere")),
        "/".to_owned(),
    ];
    for folder_path in &outside {
        let response = analyze_raw(&server, folder_path).await;
        assert_outside_root(
            &format!("analysis of {folder_path}"),
            &response,
            folder_path,
        );
    }

    let missing_inside = path_text(&base.join("vault/missing"));
    let response = analyze_raw(&server, &missing_inside).await;
    assert_missing_folder("missing folder inside the root", &response, &missing_inside);

    assert_eq!(
        run_ids(&server, "").await.len(),
        inside.len(),
        "only the analyses inside the root may store runs"
    );
}

#[tokio::test]
async fn vault_root_removed_after_start() {
    let base = Vault::new();
    let root = base.mkdir("vault");
    base.write("vault/notes/a.md", "[[b]]");
    base.write("other/b.md", "no links");
    let dir = TestDir::new();
    let server = TestServer::start_with(settings(&dir, Some(&root))).await;
    std::fs::remove_dir_all(&root).expect("remove the vault root");

    let was_inside = path_text(&base.join("vault/notes"));
    let response = analyze_raw(&server, &was_inside).await;
    assert_missing_folder("folder of a removed root", &response, &was_inside);

    let outside = path_text(&base.join("other"));
    let response = analyze_raw(&server, &outside).await;
    assert_outside_root("folder outside a removed root", &response, &outside);

    // A folder created again in the root's place is analysed as before.
    base.write("vault/notes/c.md", "[[d]]");
    let run = analyze(&server, &was_inside).await;
    assert_eq!(run["profile"], profile_of(1, 0, 1.0), "run {run}");
}

#[tokio::test]
async fn vault_root_applies_to_symlinked_notes() {
    let base = Vault::new();
    let root = base.mkdir("vault");
    base.write("vault/note.md", "no links");
    base.write("other/linked.md", "[[a]]");
    symlink(base.join("other/linked.md"), base.join("vault/linked.md")).expect("create symlink");
    let dir = TestDir::new();
    let server = TestServer::start_with(settings(&dir, Some(&root))).await;

    let run = analyze(&server, &path_text(&root)).await;

    assert_eq!(
        run["profile"],
        profile_of(1, 1, 0.0),
        "a note linked from outside the root must not be read"
    );
}

// ---------------------------------------------------------------------------
// Read-only scan and real notes

#[tokio::test]
async fn analysis_leaves_folder_unchanged() {
    let (_dir, server) = start().await;
    let vault = Vault::new();
    vault.write("a.md", "[[b]]");
    vault.write("sub/b.md", "no links");
    vault.write("sub/c.txt", "text");
    vault.write(".obsidian/app.json", "{}");
    vault.write("bad.md", b"\xff [[x]]".as_slice());
    symlink(vault.join("a.md"), vault.join("alias.md")).expect("create symlink");
    let before = folder_state(vault.path());

    analyze(&server, &vault.folder_path()).await;
    analyze(&server, &vault.folder_path()).await;

    let after = folder_state(vault.path());
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "the analysis added or removed entries"
    );
    for (path, state) in &before {
        assert_eq!(
            after.get(path),
            Some(state),
            "the analysis changed {}",
            path.display()
        );
    }
}

#[tokio::test]
async fn foam_docs_note_count() {
    let (_dir, server) = start().await;

    let profile = profile(&server, FOAM_DOCS).await;

    assert_eq!(profile["note_count"], 86, "notes in foam-docs: {profile}");
    let orphans = profile["orphan_notes"]
        .as_i64()
        .expect("orphan_notes integer");
    let density = profile["link_density"]
        .as_f64()
        .expect("link_density float");
    assert!(
        (0..=86).contains(&orphans),
        "orphan_notes out of range: {profile}"
    );
    assert!(
        density.is_finite() && density > 0.0,
        "foam-docs has wiki-links, so link_density must be positive: {profile}"
    );
}

#[tokio::test]
async fn fifo_named_as_note_skipped() {
    let vault = Vault::two_notes();
    let fifo = vault.join("pipe.md");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo failed");
    let (_dir, server) = start().await;

    // A FIFO is no note: reading it would wait for a writer forever.
    let profile = profile(&server, &vault.folder_path()).await;

    assert_eq!(
        profile["note_count"], 2,
        "the FIFO must not count: {profile}"
    );
    server.stop().await;
}
