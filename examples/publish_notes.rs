//! Publishes a folder of Markdown notes through a running mind-lite daemon.
//!
//! Each note goes through prepare, score, mark-for-gom, export-for-gom and
//! confirm-gom. The event ids are derived from the note's relative path and the
//! SHA-256 of its bytes, so a second run over unchanged notes replays the same
//! events and must get the original responses back without new side effects.
//!
//! ```text
//! cargo run --release --example publish_notes -- --folder notes --expect fresh
//! ```

mod support;

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, ValueEnum};
use reqwest::{Client, Method, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{
    ApiError, Idempotency, WriteOutcome, classify_write, excerpt, loopback_client,
    strip_closing_hashes, trim_whitespace,
};

/// Number of hex digits of the content hash that go into each event id.
const EVENT_HASH_HEX_LEN: usize = 16;

#[derive(Parser, Debug)]
#[command(
    about = "Publish a folder of Markdown notes to the GOM garden through a mind-lite daemon"
)]
struct Args {
    /// Base URL of the mind-lite daemon. Its host must be a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    base_url: String,

    /// Folder whose `.md` files are published, searched recursively.
    #[arg(long)]
    folder: PathBuf,

    /// Absolute http or https URL that each note's published URL starts with.
    #[arg(long, default_value = "https://garden.example/notes/")]
    url_prefix: String,

    /// Fail unless the run shows this outcome for every note.
    #[arg(long, value_enum)]
    expect: Option<Expectation>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Expectation {
    /// Every write is accepted as new, and every note ends up published exactly once.
    Fresh,
    /// Every write is a replay of an earlier event, and the published count does not change.
    Replay,
}

impl Expectation {
    fn name(self) -> &'static str {
        match self {
            Expectation::Fresh => "fresh",
            Expectation::Replay => "replay",
        }
    }
}

/// A Markdown file found under the notes folder.
struct Note {
    /// Path relative to the notes folder with `/` separators, used in messages and event ids.
    relative_path: String,
    draft_id: String,
    title: String,
    content: String,
    /// True when the file was blank, so its title is sent as the content.
    content_from_title: bool,
    sha256_hex: String,
}

impl Note {
    fn event_id(&self, step: &str) -> String {
        format!(
            "{step}:{}:{}",
            self.relative_path,
            &self.sha256_hex[..EVENT_HASH_HEX_LEN]
        )
    }
}

#[derive(Deserialize)]
struct PrepareResponse {
    draft_id: String,
    target: String,
    prepared_content: String,
}

#[derive(Deserialize)]
struct Scores {
    structure: f64,
    clarity: f64,
    safety: f64,
    overall: f64,
}

#[derive(Deserialize)]
struct ScoreResponse {
    draft_id: String,
    scores: Scores,
    gate_passed: bool,
}

#[derive(Deserialize)]
struct MarkResponse {
    draft_id: String,
    title: String,
    prepared_content: String,
    status: String,
    idempotency: Idempotency,
}

#[derive(Deserialize)]
struct ExportResponse {
    draft_id: String,
    format: String,
    status: String,
    artifact: String,
    idempotency: Idempotency,
}

#[derive(Deserialize)]
struct ConfirmResponse {
    draft_id: String,
    title: String,
    published_url: String,
    status: String,
    idempotency: Idempotency,
}

/// Body of `GET /publish/gom-queue` and `GET /publish/published`.
#[derive(Deserialize)]
struct ItemList {
    count: u64,
    items: Vec<Value>,
}

#[derive(Default)]
struct StepCounts {
    accepted: usize,
    replayed: usize,
}

impl StepCounts {
    fn record(&mut self, outcome: WriteOutcome) {
        match outcome {
            WriteOutcome::Accepted => self.accepted += 1,
            WriteOutcome::Replayed => self.replayed += 1,
        }
    }

    fn to_json(&self) -> Value {
        json!({ "accepted": self.accepted, "replayed": self.replayed })
    }
}

#[derive(Default)]
struct RunSummary {
    notes_found: usize,
    notes_with_title_as_content: usize,
    gate_passed: usize,
    mark: StepCounts,
    export: StepCounts,
    confirm: StepCounts,
    published_before: u64,
    published_after: u64,
    queue_count: u64,
}

/// HTTP client bound to one daemon base URL.
struct DaemonClient {
    http: Client,
    base_url: String,
}

impl DaemonClient {
    fn new(base_url: &str) -> Result<Self> {
        let (http, base_url) = loopback_client(base_url)?;
        Ok(Self { http, base_url })
    }

    /// Sends one request and decodes a 2xx JSON body into `T`.
    ///
    /// `request_label` starts every error message, so that errors name the request and the note.
    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        request_label: &str,
    ) -> Result<T> {
        let url = format!("{}{path}", self.base_url);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.with_context(|| {
            format!(
                "{request_label} failed (check that the daemon is running at {})",
                self.base_url
            )
        })?;
        let status = response.status();
        let text = response.text().await.with_context(|| {
            format!("{request_label}: failed to read the response body (HTTP {status})")
        })?;

        if !status.is_success() {
            match serde_json::from_str::<ApiError>(&text) {
                Ok(api_error) => {
                    let field = api_error
                        .field
                        .map(|field| format!(", field {field:?}"))
                        .unwrap_or_default();
                    bail!(
                        "{request_label} was rejected with HTTP {status}: code {:?}{field}: {}",
                        api_error.code,
                        api_error.error
                    );
                }
                Err(_) => bail!(
                    "{request_label} failed with HTTP {status} and a body that is not the documented \
                     {{\"error\", \"code\"}} JSON: {}",
                    excerpt(&text)
                ),
            }
        }

        serde_json::from_str(&text).with_context(|| {
            format!(
                "{request_label} returned HTTP {status} with a body that does not match the documented response: {}",
                excerpt(&text)
            )
        })
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
        request_label: &str,
    ) -> Result<T> {
        self.send(Method::POST, path, Some(body), request_label)
            .await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(Method::GET, path, None, &format!("GET {path}"))
            .await
    }
}

/// Lists the `.md` files under `folder` as sorted relative paths with `/` separators.
///
/// Names starting with `.` are skipped. Symbolic links to files are followed, but symbolic links
/// to folders are not, so a link cycle cannot make the walk loop forever.
fn find_note_paths(folder: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    let mut pending = vec![(folder.to_path_buf(), String::new())];

    while let Some((dir, relative_dir)) = pending.pop() {
        let entries = fs::read_dir(&dir)
            .with_context(|| format!("failed to list folder {}", dir.display()))?;
        for entry in entries {
            let entry = entry
                .with_context(|| format!("failed to read an entry of folder {}", dir.display()))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            let relative = format!("{relative_dir}{name}");
            let path = entry.path();
            let file_type = entry
                .file_type()
                .with_context(|| format!("failed to read the file type of {}", path.display()))?;

            if file_type.is_dir() {
                pending.push((path, format!("{relative}/")));
                continue;
            }
            let is_file = file_type.is_file()
                || (file_type.is_symlink()
                    && fs::metadata(&path).is_ok_and(|metadata| metadata.is_file()));
            if is_file && name.ends_with(".md") {
                found.push((relative, path));
            }
        }
    }

    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

fn load_note(relative_path: String, path: &Path) -> Result<Note> {
    let bytes =
        fs::read(path).with_context(|| format!("failed to read note {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let draft_id = relative_path
        .strip_suffix(".md")
        .unwrap_or(&relative_path)
        .to_owned();
    let stem = draft_id.rsplit('/').next().unwrap_or(&draft_id);
    let title = extract_title(&text)
        .map(|title| trim_whitespace(&title).to_owned())
        .filter(|title| !title.is_empty())
        .unwrap_or_else(|| stem.to_owned());

    let content_from_title = trim_whitespace(&text).is_empty();
    let content = if content_from_title {
        title.clone()
    } else {
        text
    };

    Ok(Note {
        relative_path,
        draft_id,
        title,
        content,
        content_from_title,
        sha256_hex: hex::encode(Sha256::digest(&bytes)),
    })
}

/// Returns the front-matter `title:` value, else the text of the first `# ` heading.
///
/// NOTE: the front matter is scanned line by line for a top-level `title:` key, not parsed as
/// YAML, so block scalars (`title: |`) and escapes inside quoted values are taken literally.
fn extract_title(text: &str) -> Option<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();

    // Without a closing delimiter, a leading `---` is a thematic break and not front matter.
    let front_matter_end = if lines.first().map(|line| line.trim_end()) == Some("---") {
        lines
            .iter()
            .skip(1)
            .position(|line| matches!(line.trim_end(), "---" | "..."))
            .map(|offset| offset + 1)
    } else {
        None
    };
    let mut body = lines.as_slice();
    if let Some(end) = front_matter_end {
        let front_matter_title = lines[1..end]
            .iter()
            .find_map(|line| line.trim_end().strip_prefix("title:"))
            .map(|value| unquote(value.trim()))
            .filter(|title| !title.is_empty());
        if let Some(title) = front_matter_title {
            return Some(title.to_owned());
        }
        body = &lines[end + 1..];
    }

    // A `# ` line inside a fenced code block is a shell comment or similar, not a heading.
    let mut open_fence: Option<&str> = None;
    for line in body {
        let trimmed = line.trim_start();
        if let Some(fence) = open_fence {
            if trimmed.starts_with(fence) {
                open_fence = None;
            }
            continue;
        }
        if trimmed.starts_with("```") {
            open_fence = Some("```");
            continue;
        }
        if trimmed.starts_with("~~~") {
            open_fence = Some("~~~");
            continue;
        }
        if let Some(heading) = line.strip_prefix("# ") {
            let heading = strip_closing_hashes(heading.trim());
            if !heading.is_empty() {
                return Some(heading.to_owned());
            }
        }
    }
    None
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

/// Builds the published URL, percent-encoding every byte outside `[A-Za-z0-9/_-]` of the draft id.
fn published_url(url_prefix: &str, draft_id: &str) -> Result<String> {
    let mut url = String::from(url_prefix);
    for byte in draft_id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'_' | b'-') {
            url.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(url, "%{byte:02X}");
        }
    }
    validate_absolute_url(&url)
        .with_context(|| format!("invalid published URL for draft {draft_id:?}"))?;
    Ok(url)
}

fn validate_absolute_url(url: &str) -> Result<()> {
    let parsed = Url::parse(url).with_context(|| format!("{url:?} is not an absolute URL"))?;
    ensure!(
        matches!(parsed.scheme(), "http" | "https"),
        "{url:?} uses scheme {:?}, expected http or https",
        parsed.scheme()
    );
    ensure!(parsed.host_str().is_some(), "{url:?} has no host");
    Ok(())
}

fn expect_field(request_label: &str, field: &str, actual: &str, expected: &str) -> Result<()> {
    ensure!(
        actual == expected,
        "{request_label}: response {field} is {:?}, expected {:?}",
        excerpt(actual),
        excerpt(expected)
    );
    Ok(())
}

/// Outcomes of the three idempotent writes for one note.
struct NoteOutcome {
    gate_passed: bool,
    mark: WriteOutcome,
    export: WriteOutcome,
    confirm: WriteOutcome,
}

fn note_request_label(path: &str, note: &Note) -> String {
    format!("POST {path} for note {:?}", note.relative_path)
}

/// Sends the note to `/publish/prepare` and returns the prepared content.
async fn prepare_note(client: &DaemonClient, note: &Note) -> Result<String> {
    let path = "/publish/prepare";
    let label = note_request_label(path, note);
    let body = json!({ "draft_id": note.draft_id, "content": note.content, "target": "gom" });
    let prepared: PrepareResponse = client.post(path, &body, &label).await?;

    expect_field(&label, "draft_id", &prepared.draft_id, &note.draft_id)?;
    expect_field(&label, "target", &prepared.target, "gom")?;
    Ok(prepared.prepared_content)
}

async fn score_note(client: &DaemonClient, note: &Note) -> Result<ScoreResponse> {
    let path = "/publish/score";
    let label = note_request_label(path, note);
    let body = json!({ "draft_id": note.draft_id, "content": note.content });
    let scored: ScoreResponse = client.post(path, &body, &label).await?;

    expect_field(&label, "draft_id", &scored.draft_id, &note.draft_id)?;
    Ok(scored)
}

async fn mark_note(
    client: &DaemonClient,
    note: &Note,
    prepared_content: &str,
) -> Result<WriteOutcome> {
    let path = "/publish/mark-for-gom";
    let label = note_request_label(path, note);
    let event_id = note.event_id("mark");
    let body = json!({
        "event_id": event_id,
        "draft_id": note.draft_id,
        "title": note.title,
        "prepared_content": prepared_content,
    });
    let marked: MarkResponse = client.post(path, &body, &label).await?;

    expect_field(&label, "draft_id", &marked.draft_id, &note.draft_id)?;
    expect_field(&label, "title", &marked.title, &note.title)?;
    expect_field(
        &label,
        "prepared_content",
        &marked.prepared_content,
        prepared_content,
    )?;
    expect_field(&label, "status", &marked.status, "queued_for_gom")?;
    classify_write(&marked.idempotency, &event_id, &label)
}

async fn export_note(
    client: &DaemonClient,
    note: &Note,
    prepared_content: &str,
) -> Result<WriteOutcome> {
    let path = "/publish/export-for-gom";
    let label = note_request_label(path, note);
    let event_id = note.event_id("export");
    let body = json!({ "event_id": event_id, "draft_id": note.draft_id, "format": "markdown" });
    let exported: ExportResponse = client.post(path, &body, &label).await?;

    expect_field(&label, "draft_id", &exported.draft_id, &note.draft_id)?;
    expect_field(&label, "format", &exported.format, "markdown")?;
    expect_field(&label, "status", &exported.status, "export_ready")?;
    expect_field(&label, "artifact", &exported.artifact, prepared_content)?;
    classify_write(&exported.idempotency, &event_id, &label)
}

async fn confirm_note(
    client: &DaemonClient,
    note: &Note,
    url_prefix: &str,
) -> Result<WriteOutcome> {
    let path = "/publish/confirm-gom";
    let label = note_request_label(path, note);
    let event_id = note.event_id("confirm");
    let url = published_url(url_prefix, &note.draft_id)?;
    let body = json!({ "event_id": event_id, "draft_id": note.draft_id, "published_url": url });
    let confirmed: ConfirmResponse = client.post(path, &body, &label).await?;

    expect_field(&label, "draft_id", &confirmed.draft_id, &note.draft_id)?;
    expect_field(&label, "title", &confirmed.title, &note.title)?;
    expect_field(&label, "published_url", &confirmed.published_url, &url)?;
    expect_field(&label, "status", &confirmed.status, "published")?;
    classify_write(&confirmed.idempotency, &event_id, &label)
}

/// Runs the five publish steps for one note and prints one progress line.
async fn publish_note(client: &DaemonClient, note: &Note, url_prefix: &str) -> Result<NoteOutcome> {
    let prepared_content = prepare_note(client, note).await?;
    let scored = score_note(client, note).await?;
    let mark = mark_note(client, note, &prepared_content).await?;
    let export = export_note(client, note, &prepared_content).await?;
    let confirm = confirm_note(client, note, url_prefix).await?;

    let Scores {
        structure,
        clarity,
        safety,
        overall,
    } = scored.scores;
    let gate = if scored.gate_passed {
        "passed"
    } else {
        "failed"
    };
    println!(
        "{}: draft {:?}, overall score {overall} (structure {structure}, clarity {clarity}, \
         safety {safety}), gate {gate}, mark {}, export {}, confirm {}",
        note.relative_path,
        note.draft_id,
        mark.as_str(),
        export.as_str(),
        confirm.as_str(),
    );

    Ok(NoteOutcome {
        gate_passed: scored.gate_passed,
        mark,
        export,
        confirm,
    })
}

/// Counts how often each draft id occurs in a `{"count", "items"}` list.
fn count_draft_ids(list: &ItemList, path: &str) -> Result<HashMap<String, usize>> {
    let mut counts = HashMap::new();
    for (index, item) in list.items.iter().enumerate() {
        let draft_id = item
            .get("draft_id")
            .and_then(Value::as_str)
            .with_context(|| {
                format!(
                    "GET {path}: item {index} has no string draft_id: {}",
                    excerpt(&item.to_string())
                )
            })?;
        *counts.entry(draft_id.to_owned()).or_insert(0) += 1;
    }
    Ok(counts)
}

/// Lists every way in which the run differs from `expectation`. An empty list means it was met.
fn check_expectation(
    expectation: Expectation,
    summary: &RunSummary,
    draft_ids: &BTreeSet<&str>,
    queue: &HashMap<String, usize>,
    published: &HashMap<String, usize>,
) -> Vec<String> {
    let mut failures = Vec::new();
    let steps = [
        ("mark-for-gom", &summary.mark),
        ("export-for-gom", &summary.export),
        ("confirm-gom", &summary.confirm),
    ];

    match expectation {
        Expectation::Fresh => {
            for (step, counts) in steps {
                if counts.replayed > 0 {
                    failures.push(format!(
                        "{step}: {} of {} writes were replays, expected all to be accepted",
                        counts.replayed, summary.notes_found
                    ));
                }
            }
            let still_queued: Vec<&str> = draft_ids
                .iter()
                .copied()
                .filter(|id| queue.contains_key(*id))
                .collect();
            if !still_queued.is_empty() {
                failures.push(format!(
                    "{} published notes are still in /publish/gom-queue: {}",
                    still_queued.len(),
                    still_queued.join(", ")
                ));
            }
            for id in draft_ids {
                match published.get(*id).copied().unwrap_or(0) {
                    1 => {}
                    0 => failures.push(format!("draft {id:?} is missing from /publish/published")),
                    n => failures.push(format!(
                        "draft {id:?} occurs {n} times in /publish/published, expected once"
                    )),
                }
            }
        }
        Expectation::Replay => {
            for (step, counts) in steps {
                if counts.accepted > 0 {
                    failures.push(format!(
                        "{step}: {} of {} writes were accepted as new, expected all to be replays",
                        counts.accepted, summary.notes_found
                    ));
                }
            }
            if summary.published_before != summary.published_after {
                failures.push(format!(
                    "the published count changed from {} to {} during a replay",
                    summary.published_before, summary.published_after
                ));
            }
        }
    }
    failures
}

fn print_summary(summary: &RunSummary) {
    println!("notes found: {}", summary.notes_found);
    println!(
        "blank notes sent with their title as content: {}",
        summary.notes_with_title_as_content
    );
    println!(
        "score gate passed: {} of {}",
        summary.gate_passed, summary.notes_found
    );
    for (step, counts) in [
        ("mark-for-gom", &summary.mark),
        ("export-for-gom", &summary.export),
        ("confirm-gom", &summary.confirm),
    ] {
        println!(
            "{step}: {} accepted, {} replayed",
            counts.accepted, counts.replayed
        );
    }
    println!("gom queue count: {}", summary.queue_count);
    println!(
        "published count: {} (before the run: {})",
        summary.published_after, summary.published_before
    );

    let json_line = json!({
        "notes_found": summary.notes_found,
        "notes_with_title_as_content": summary.notes_with_title_as_content,
        "gate_passed": summary.gate_passed,
        "mark_for_gom": summary.mark.to_json(),
        "export_for_gom": summary.export.to_json(),
        "confirm_gom": summary.confirm.to_json(),
        "gom_queue_count": summary.queue_count,
        "published_count_before": summary.published_before,
        "published_count": summary.published_after,
    });
    println!("{json_line}");
}

async fn run(args: Args) -> Result<Vec<String>> {
    let client = DaemonClient::new(&args.base_url)?;
    validate_absolute_url(&args.url_prefix).context("invalid --url-prefix")?;

    ensure!(
        args.folder.is_dir(),
        "notes folder {} does not exist or is not a folder; check --folder",
        args.folder.display()
    );
    let note_paths = find_note_paths(&args.folder)?;
    ensure!(
        !note_paths.is_empty(),
        "no .md notes found under {}; check --folder",
        args.folder.display()
    );

    let mut notes = Vec::with_capacity(note_paths.len());
    for (relative_path, path) in note_paths {
        notes.push(load_note(relative_path, &path)?);
    }

    // File names that are not valid UTF-8 are read lossily, so two of them can map to one draft id.
    let mut draft_ids = BTreeSet::new();
    for note in &notes {
        ensure!(
            draft_ids.insert(note.draft_id.as_str()),
            "two notes map to draft id {:?}; rename one of the files so that their names differ in valid UTF-8",
            note.draft_id
        );
    }

    let mut summary = RunSummary {
        notes_found: notes.len(),
        ..RunSummary::default()
    };
    let published_before: ItemList = client.get("/publish/published").await?;
    summary.published_before = published_before.count;

    for note in &notes {
        let outcome = publish_note(&client, note, &args.url_prefix).await?;
        summary.notes_with_title_as_content += usize::from(note.content_from_title);
        summary.gate_passed += usize::from(outcome.gate_passed);
        summary.mark.record(outcome.mark);
        summary.export.record(outcome.export);
        summary.confirm.record(outcome.confirm);
    }

    let queue: ItemList = client.get("/publish/gom-queue").await?;
    let published: ItemList = client.get("/publish/published").await?;
    summary.queue_count = queue.count;
    summary.published_after = published.count;
    for (path, list) in [
        ("/publish/gom-queue", &queue),
        ("/publish/published", &published),
    ] {
        if usize::try_from(list.count).ok() != Some(list.items.len()) {
            eprintln!(
                "warning: GET {path} reports count {} but lists {} items",
                list.count,
                list.items.len()
            );
        }
    }

    print_summary(&summary);

    let Some(expectation) = args.expect else {
        return Ok(Vec::new());
    };
    let queue_ids = count_draft_ids(&queue, "/publish/gom-queue")?;
    let published_ids = count_draft_ids(&published, "/publish/published")?;
    Ok(check_expectation(
        expectation,
        &summary,
        &draft_ids,
        &queue_ids,
        &published_ids,
    ))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let expectation = args.expect;

    // Printed by hand so that the message shows its whole context chain on one line, without
    // the backtrace that anyhow adds when RUST_BACKTRACE is set.
    let failures = match run(args).await {
        Ok(failures) => failures,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };

    if failures.is_empty() {
        if let Some(expectation) = expectation {
            println!("expectation {} met", expectation.name());
        }
        return ExitCode::SUCCESS;
    }
    for failure in &failures {
        eprintln!("expectation failed: {failure}");
    }
    eprintln!(
        "{} expectation checks failed; see the lines above and the daemon log",
        failures.len()
    );
    ExitCode::FAILURE
}

// Run with `cargo test --example publish_notes`, or with the rest of the suite by `cargo test`.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_from_front_matter() {
        let text = "---\ntags: [a]\ntitle: \"Front Title\"\n---\n# Heading\n";
        assert_eq!(extract_title(text).as_deref(), Some("Front Title"));
    }

    #[test]
    fn title_from_heading_after_front_matter() {
        let text = "---\nlayout: page\n---\n\n# Math Support\n";
        assert_eq!(extract_title(text).as_deref(), Some("Math Support"));
    }

    #[test]
    fn title_skips_fenced_code() {
        let text = "```bash\n# not a heading\n```\n# Real Heading #\n";
        assert_eq!(extract_title(text).as_deref(), Some("Real Heading"));
    }

    #[test]
    fn title_unclosed_front_matter_is_body() {
        let text = "---\n# Heading\n";
        assert_eq!(extract_title(text).as_deref(), Some("Heading"));
    }

    #[test]
    fn title_missing_returns_none() {
        assert_eq!(extract_title("## Second level\nplain text\n"), None);
        assert_eq!(extract_title("#hashtag\n"), None);
    }

    #[test]
    fn published_url_encodes_reserved_bytes() {
        let url = published_url("https://garden.example/notes/", "sub/a b.é_x-y").unwrap();
        assert_eq!(url, "https://garden.example/notes/sub/a%20b%2E%C3%A9_x-y");
    }

    #[test]
    fn published_url_rejects_relative_prefix() {
        assert!(published_url("notes/", "a").is_err());
        assert!(published_url("ftp://host/", "a").is_err());
    }
}
