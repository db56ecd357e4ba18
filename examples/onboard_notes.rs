//! Onboards a folder of Markdown notes through a running mind-lite daemon.
//!
//! The client analyses the folder and takes the new run through approve, apply and
//! rollback. It then proposes and applies links between notes that link to each other,
//! classifies every note, and asks one question per note with the note's front matter,
//! tags, path and body, so that the sensitivity gate judges the real notes.
//!
//! The event ids of `/ask` and `/links/apply` are derived from the note's relative path
//! and the SHA-256 of its bytes, so a second run over unchanged notes replays every
//! write. Every idempotent write is also sent once more without an event id, which
//! recomputes the response from the notes without storing anything, and the two bodies
//! must be equal apart from their `idempotency` objects.
//!
//! ```text
//! cargo run --release --example onboard_notes -- --folder notes --expect fresh
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::LazyLock;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, ValueEnum};
use regex::Regex;
use reqwest::{Client, Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use walkdir::WalkDir;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Number of hex digits of the content hash that go into each event id.
const EVENT_HASH_HEX_LEN: usize = 16;

/// Maximum number of response-body characters quoted in an error message.
const BODY_EXCERPT_CHARS: usize = 500;

/// Notes per `POST /organize/classify` request. 50 short titles stay far below the
/// daemon's default body limit of 1 MiB.
const CLASSIFY_BATCH_SIZE: usize = 50;

/// The folder-analysis wiki-link pattern: `[[`, one or more characters other than `]`
/// (newlines included), `]]`.
static WIKI_LINK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[\[[^\]]+\]\]").expect("the wiki-link pattern is valid"));

/// An inline tag: `#` at the start of a line or after whitespace, then letters, digits,
/// `_`, `-` or `/`. A heading (`# Title`) has a space after the `#` and does not match.
static INLINE_TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|\s)#([\p{L}\p{N}_][\p{L}\p{N}_/-]*)").expect("the tag pattern is valid")
});

#[derive(Parser, Debug)]
#[command(
    about = "Analyse, link, classify and ask about a folder of Markdown notes through a mind-lite daemon"
)]
struct Args {
    /// Base URL of the mind-lite daemon. Its host must be a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    base_url: String,

    /// Folder of `.md` and `.markdown` notes, searched recursively. The daemon must be
    /// able to read it under the same absolute path.
    #[arg(long)]
    folder: PathBuf,

    /// Fail unless every `/ask` and `/links/apply` write shows this outcome.
    #[arg(long, value_enum)]
    expect: Option<Expectation>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Expectation {
    /// Every write is accepted as new.
    Fresh,
    /// Every write is a replay of an earlier run over the same notes.
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

// ---------------------------------------------------------------------------
// Notes: front matter, title, tags and wiki-links
// ---------------------------------------------------------------------------

/// Outcome of reading a note's front matter.
#[derive(Clone, Debug, PartialEq)]
enum FrontMatterStatus {
    /// The note does not start with a `---` line closed by `---` or `...`.
    Absent,
    /// The block is a YAML mapping, or empty.
    Parsed,
    /// The block is not valid YAML, or not a mapping. The text gives the reason.
    Unparsable(String),
}

/// Front matter as sent to `/ask`: the parsed YAML mapping, or an empty object.
#[derive(Clone, Debug)]
struct FrontMatter {
    fields: Map<String, Value>,
    status: FrontMatterStatus,
}

/// Splits a note into its front-matter block (without the `---` lines) and its body.
///
/// A leading `---` without a closing `---` or `...` line is a thematic break, so the
/// whole text is then the body.
fn split_front_matter(text: &str) -> (Option<&str>, &str) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let Some(first_line) = lines.next() else {
        return (None, text);
    };
    if first_line.trim_end() != "---" {
        return (None, text);
    }

    let yaml_start = first_line.len();
    let mut offset = yaml_start;
    for line in lines {
        if matches!(line.trim_end(), "---" | "...") {
            return (
                Some(&text[yaml_start..offset]),
                &text[offset + line.len()..],
            );
        }
        offset += line.len();
    }
    (None, text)
}

/// Parses a front-matter block as YAML into a JSON object.
fn parse_front_matter(block: Option<&str>) -> FrontMatter {
    let Some(block) = block else {
        return FrontMatter {
            fields: Map::new(),
            status: FrontMatterStatus::Absent,
        };
    };
    let unparsable = |reason: String| FrontMatter {
        fields: Map::new(),
        status: FrontMatterStatus::Unparsable(reason),
    };

    match serde_yaml_ng::from_str::<Value>(block) {
        Ok(Value::Object(fields)) => FrontMatter {
            fields,
            status: FrontMatterStatus::Parsed,
        },
        // A block with only blank lines or comments is an empty YAML document.
        Ok(Value::Null) => FrontMatter {
            fields: Map::new(),
            status: FrontMatterStatus::Parsed,
        },
        Ok(other) => unparsable(format!(
            "the YAML is a {}, not a mapping",
            json_type_name(&other)
        )),
        Err(error) => unparsable(format!("invalid YAML: {error}")),
    }
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

/// Trims whitespace as the daemon does: Unicode `White_Space` plus the separators
/// U+001C..U+001F. Values the client expects to be echoed are trimmed with it.
fn trim_whitespace(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// Tracks fenced code blocks (```` ``` ```` or `~~~`) line by line.
#[derive(Default)]
struct FenceTracker {
    /// The fence character and length of the open block.
    open: Option<(char, usize)>,
}

impl FenceTracker {
    /// Tells whether `line` is code: a fence line or a line inside a fenced block.
    fn is_code(&mut self, line: &str) -> bool {
        let trimmed = line.trim_start();
        let fence_char = trimmed.chars().next().filter(|c| matches!(c, '`' | '~'));
        let fence_len = fence_char.map_or(0, |c| trimmed.chars().take_while(|&x| x == c).count());

        match (self.open, fence_char) {
            (Some((open_char, open_len)), Some(c)) if c == open_char && fence_len >= open_len => {
                // A closing fence has nothing after its fence characters.
                if trimmed[fence_len * c.len_utf8()..].trim().is_empty() {
                    self.open = None;
                }
                true
            }
            (Some(_), _) => true,
            (None, Some(c)) if fence_len >= 3 => {
                self.open = Some((c, fence_len));
                true
            }
            (None, _) => false,
        }
    }
}

/// Returns the text of the first level-one ATX heading (`# Title`) outside code blocks.
fn first_heading(body: &str) -> Option<String> {
    let mut fences = FenceTracker::default();
    for line in body.lines() {
        if fences.is_code(line) {
            continue;
        }
        // Up to three spaces of indentation; four make an indented code block.
        let unindented = line.trim_start_matches(' ');
        if line.len() - unindented.len() > 3 {
            continue;
        }
        let Some(heading) = unindented
            .strip_prefix("# ")
            .or_else(|| unindented.strip_prefix("#\t"))
        else {
            continue;
        };
        let heading = strip_closing_hashes(trim_whitespace(heading));
        if !heading.is_empty() {
            return Some(heading.to_owned());
        }
    }
    None
}

/// Removes an optional closing `#` sequence, as in `# Title #`.
fn strip_closing_hashes(heading: &str) -> &str {
    let without_hashes = heading.trim_end_matches('#');
    if without_hashes.len() == heading.len() {
        return heading;
    }
    if without_hashes.is_empty() || without_hashes.ends_with([' ', '\t']) {
        without_hashes.trim_end()
    } else {
        heading
    }
}

/// Picks the note title: the first `# ` heading of the body, else the front-matter
/// `title`, else the file stem.
fn note_title(front_matter: &Map<String, Value>, body: &str, stem: &str) -> String {
    if let Some(heading) = first_heading(body) {
        return heading;
    }
    let front_matter_title = match front_matter.get("title") {
        Some(Value::String(title)) => Some(trim_whitespace(title).to_owned()),
        Some(Value::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    match front_matter_title {
        Some(title) if !title.is_empty() => title,
        _ => stem.to_owned(),
    }
}

/// Collects the note's tags: the front-matter `tags` (a list, or a string of names
/// separated by commas or whitespace), then the inline `#tags` of the body, without
/// their `#` and without duplicates.
///
/// Inline tags are not looked for in fenced code blocks or inline code spans. A tag
/// made only of digits (`#1`) is an issue number, not a tag.
fn note_tags(front_matter: &Map<String, Value>, body: &str) -> Vec<String> {
    let mut tags = Vec::new();
    let mut push = |tag: &str| {
        let tag = tag.strip_prefix('#').unwrap_or(tag).trim();
        if !tag.is_empty() && !tags.iter().any(|known| known == tag) {
            tags.push(tag.to_owned());
        }
    };

    match front_matter.get("tags") {
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(tag) => push(tag),
                    Value::Number(number) => push(&number.to_string()),
                    Value::Bool(flag) => push(&flag.to_string()),
                    _ => {}
                }
            }
        }
        Some(Value::String(names)) => {
            for tag in names.split(|c: char| c == ',' || c.is_whitespace()) {
                push(tag);
            }
        }
        _ => {}
    }

    let mut fences = FenceTracker::default();
    for line in body.lines() {
        if fences.is_code(line) {
            continue;
        }
        for prose in line.split('`').step_by(2) {
            for captures in INLINE_TAG.captures_iter(prose) {
                let tag = captures[1].trim_end_matches(['/', '-']);
                if !tag.chars().all(|c| c.is_ascii_digit()) {
                    push(tag);
                }
            }
        }
    }
    tags
}

/// Returns the inner text of every wiki-link, as the daemon's folder analysis counts them.
fn wiki_links(text: &str) -> Vec<&str> {
    WIKI_LINK
        .find_iter(text)
        .map(|found| &text[found.start() + 2..found.end() - 2])
        .collect()
}

/// Reduces a wiki-link's inner text to the lower-cased file stem it points to.
///
/// `[[Some/Folder/Note.md#Section|alias]]` points to `note`. A link to a section of the
/// same note (`[[#Section]]`) has no target.
fn link_target_stem(inner: &str) -> Option<String> {
    let target = inner.split(['|', '#']).next().unwrap_or_default();
    // In a Markdown table the alias separator is escaped as `\|`.
    let target = target.trim().trim_end_matches('\\').trim();
    let file_name = target.rsplit('/').next().unwrap_or(target);
    let stem = strip_note_extension(file_name).unwrap_or(file_name);
    let stem = trim_whitespace(stem);
    (!stem.is_empty()).then(|| stem.to_lowercase())
}

/// Returns the name without its `.md` or `.markdown` extension (any case), or `None`
/// when the name has no such extension. A name that is only `.md` has no extension.
fn strip_note_extension(name: &str) -> Option<&str> {
    let (stem, extension) = name.rsplit_once('.')?;
    let is_note =
        extension.eq_ignore_ascii_case("md") || extension.eq_ignore_ascii_case("markdown");
    (is_note && !stem.is_empty()).then_some(stem)
}

/// Builds the outgoing links of each note as indexes into the note list.
///
/// Targets match file stems case-insensitively. A stem shared by several notes (such as
/// `index`) links to all of them. Links from a note to itself are dropped.
fn link_graph(stems: &[String], link_targets: &[Vec<String>]) -> Vec<BTreeSet<usize>> {
    let mut notes_by_stem: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, stem) in stems.iter().enumerate() {
        notes_by_stem
            .entry(stem.to_lowercase())
            .or_default()
            .push(index);
    }

    link_targets
        .iter()
        .enumerate()
        .map(|(source, targets)| {
            targets
                .iter()
                .filter_map(|target| notes_by_stem.get(&target.to_lowercase()))
                .flatten()
                .copied()
                .filter(|&target| target != source)
                .collect()
        })
        .collect()
}

/// Returns the pairs `(a, b)` with `a < b` where each note links to the other.
fn mutual_pairs(graph: &[BTreeSet<usize>]) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for (source, targets) in graph.iter().enumerate() {
        for &target in targets.range(source + 1..) {
            if graph[target].contains(&source) {
                pairs.push((source, target));
            }
        }
    }
    pairs
}

/// A Markdown file found under the notes folder.
struct Note {
    /// Path relative to the notes folder with `/` separators: the note id and the path
    /// sent to the sensitivity gate.
    relative_path: String,
    /// File name without its extension.
    stem: String,
    title: String,
    front_matter: FrontMatter,
    tags: Vec<String>,
    /// The text after the front matter.
    body: String,
    /// Number of wiki-link matches in the whole file, front matter included.
    wiki_link_count: usize,
    /// Lower-cased stems that the wiki-links point to.
    link_targets: Vec<String>,
    sha256_hex: String,
    /// True when the file is not valid UTF-8 and was decoded lossily.
    decoded_lossily: bool,
}

impl Note {
    fn event_id(&self, step: &str) -> String {
        format!(
            "{step}:{}:{}",
            self.relative_path,
            &self.sha256_hex[..EVENT_HASH_HEX_LEN]
        )
    }

    /// Returns the note id trimmed as the daemon trims it before echoing it.
    fn echoed_id(&self) -> &str {
        trim_whitespace(&self.relative_path)
    }
}

/// Lists the notes under `root` as sorted `(relative path, path to read)` pairs.
///
/// This follows the daemon's folder analysis: hidden entries (names starting with `.`)
/// are skipped with everything inside them, symbolic links to folders are not descended,
/// and a symbolic link to a file counts only when its target lies inside `root`.
fn find_note_paths(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let walker = WalkDir::new(root)
        .follow_links(false)
        .min_depth(1)
        .into_iter()
        .filter_entry(|entry| !entry.file_name().to_string_lossy().starts_with('.'));

    let mut found = Vec::new();
    for entry in walker {
        let entry = entry.with_context(|| format!("failed to list folder {}", root.display()))?;
        if strip_note_extension(&entry.file_name().to_string_lossy()).is_none() {
            continue;
        }
        let file_type = entry.file_type();
        let path_to_read = if file_type.is_file() {
            entry.path().to_owned()
        } else if file_type.is_symlink() {
            match fs::canonicalize(entry.path()) {
                Ok(target) if target.starts_with(root) && target.is_file() => target,
                _ => continue,
            }
        } else {
            continue;
        };

        let relative = entry.path().strip_prefix(root).with_context(|| {
            format!("{} is not below {}", entry.path().display(), root.display())
        })?;
        let relative = relative
            .components()
            .map(|component| component.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        found.push((relative, path_to_read));
    }

    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

fn load_note(relative_path: String, path: &Path) -> Result<Note> {
    let bytes =
        fs::read(path).with_context(|| format!("failed to read note {}", path.display()))?;
    let decoded_lossily = std::str::from_utf8(&bytes).is_err();
    let text = String::from_utf8_lossy(&bytes).into_owned();

    let file_name = relative_path.rsplit('/').next().unwrap_or(&relative_path);
    let stem = strip_note_extension(file_name)
        .unwrap_or(file_name)
        .to_owned();
    let (block, body) = split_front_matter(&text);
    let front_matter = parse_front_matter(block);
    let mut title = note_title(&front_matter.fields, body, &stem);
    if trim_whitespace(&title).is_empty() {
        // The daemon rejects a blank title, and a stem can be blank (` .md`).
        title = relative_path.clone();
    }
    let tags = note_tags(&front_matter.fields, body);
    let links = wiki_links(&text);

    Ok(Note {
        title,
        tags,
        body: body.to_owned(),
        wiki_link_count: links.len(),
        link_targets: links.into_iter().filter_map(link_target_stem).collect(),
        front_matter,
        stem,
        relative_path,
        sha256_hex: hex::encode(Sha256::digest(&bytes)),
        decoded_lossily,
    })
}

// ---------------------------------------------------------------------------
// HTTP client and response types
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct ApiError {
    error: String,
    code: String,
    #[serde(default)]
    field: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
struct Idempotency {
    event_id: Option<String>,
    duplicate: bool,
    reason: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
struct Profile {
    note_count: u64,
    orphan_notes: u64,
    link_density: f64,
}

#[derive(Debug, Deserialize)]
struct RunRecord {
    run_id: String,
    state: String,
    profile: Profile,
    #[serde(default)]
    snapshot_id: Option<String>,
    #[serde(default)]
    rolled_back_snapshot_id: Option<String>,
}

#[derive(Deserialize)]
struct RunList {
    runs: Vec<RunRecord>,
}

#[derive(Debug, Deserialize)]
struct Proposal {
    proposal_id: String,
    change_type: String,
    status: String,
}

#[derive(Deserialize)]
struct ProposalList {
    run_id: String,
    proposals: Vec<Proposal>,
}

#[derive(Deserialize)]
struct ApproveResponse {
    run_id: String,
    state: String,
    approved_count: u64,
}

#[derive(Deserialize)]
struct ApplyResponse {
    run_id: String,
    state: String,
    snapshot_id: String,
    applied_count: u64,
}

#[derive(Deserialize)]
struct RollbackResponse {
    run_id: String,
    state: String,
    rolled_back_snapshot_id: String,
}

#[derive(Deserialize)]
struct Suggestion {
    target_note_id: String,
    confidence: f64,
    reason: String,
}

#[derive(Deserialize)]
struct ProposeLinksResponse {
    source_note_id: String,
    suggestions: Vec<Suggestion>,
}

#[derive(Deserialize)]
struct AppliedLink {
    target_note_id: String,
    confidence: f64,
    status: String,
}

#[derive(Deserialize)]
struct ApplyLinksResponse {
    source_note_id: String,
    applied_count: u64,
    applied_links: Vec<AppliedLink>,
}

#[derive(Deserialize)]
struct ClassifyResult {
    note_id: String,
    primary_para: String,
    secondary_para: Vec<Value>,
    confidence: f64,
    action_mode: String,
}

#[derive(Deserialize)]
struct ClassifyResponse {
    results: Vec<ClassifyResult>,
}

#[derive(Deserialize)]
struct Answer {
    text: String,
}

#[derive(Deserialize)]
struct Sensitivity {
    allowed: bool,
    reasons: Vec<String>,
}

#[derive(Deserialize)]
struct AskResponse {
    answer: Answer,
    sensitivity: Sensitivity,
}

/// HTTP client bound to one daemon base URL on a loopback address.
struct DaemonClient {
    http: Client,
    base_url: String,
}

impl DaemonClient {
    fn new(base_url: &str) -> Result<Self> {
        let parsed = Url::parse(base_url).with_context(|| {
            format!("invalid --base-url {base_url:?}: expected e.g. http://127.0.0.1:8000")
        })?;
        ensure!(
            parsed.scheme() == "http",
            "invalid --base-url {base_url:?}: the daemon serves plain http on loopback, use an http:// URL"
        );
        let host_is_loopback = match parsed.host_str() {
            Some("localhost") => true,
            Some(host) => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()),
            None => false,
        };
        ensure!(
            host_is_loopback,
            "invalid --base-url {base_url:?}: the host must be a loopback address such as 127.0.0.1"
        );

        // Without a proxy and without redirects, every request stays on the loopback
        // address, even when *_PROXY variables are set or a response redirects elsewhere.
        let http = Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("failed to build the HTTP client")?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// Sends one request and returns the status and body text, whatever the status.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        label: &str,
    ) -> Result<(StatusCode, String)> {
        let url = format!("{}{path}", self.base_url);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.with_context(|| {
            format!(
                "{label} failed (check that the daemon is running at {})",
                self.base_url
            )
        })?;
        let status = response.status();
        let text = response.text().await.with_context(|| {
            format!("{label}: failed to read the response body (HTTP {status})")
        })?;
        Ok((status, text))
    }

    /// Sends one request and returns its 2xx JSON body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        label: &str,
    ) -> Result<Value> {
        let (status, text) = self.exchange(method, path, body, label).await?;
        if !status.is_success() {
            match serde_json::from_str::<ApiError>(&text) {
                Ok(api_error) => {
                    let field = api_error
                        .field
                        .map(|field| format!(", field {field:?}"))
                        .unwrap_or_default();
                    bail!(
                        "{label} was rejected with HTTP {status}: code {:?}{field}: {}",
                        api_error.code,
                        api_error.error
                    );
                }
                Err(_) => bail!(
                    "{label} failed with HTTP {status} and a body that is not the documented \
                     {{\"error\", \"code\"}} JSON: {}",
                    excerpt(&text)
                ),
            }
        }
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{label} returned HTTP {status} with a body that is not JSON: {}",
                excerpt(&text)
            )
        })
    }

    /// Sends one request that must fail with `expected_status` and returns its error body.
    async fn call_expecting_error(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        label: &str,
        expected_status: StatusCode,
    ) -> Result<ApiError> {
        let (status, text) = self.exchange(method, path, Some(body), label).await?;
        ensure!(
            status == expected_status,
            "{label} returned HTTP {status}, expected {expected_status}: {}",
            excerpt(&text)
        );
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{label} returned a body that is not the documented {{\"error\", \"code\"}} JSON: {}",
                excerpt(&text)
            )
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let label = format!("GET {path}");
        let value = self.call(Method::GET, path, None, &label).await?;
        decode(value, &label)
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &Value, label: &str) -> Result<T> {
        let value = self.call(Method::POST, path, Some(body), label).await?;
        decode(value, label)
    }
}

fn decode<T: DeserializeOwned>(value: Value, label: &str) -> Result<T> {
    let text = value.to_string();
    serde_json::from_value(value).with_context(|| {
        format!(
            "{label} returned a body that does not match the documented response: {}",
            excerpt(&text)
        )
    })
}

fn excerpt(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(BODY_EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}... (truncated)")
    } else {
        format!("{head:?}")
    }
}

// ---------------------------------------------------------------------------
// Idempotent writes
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteOutcome {
    Accepted,
    Replayed,
}

impl WriteOutcome {
    fn as_str(self) -> &'static str {
        match self {
            WriteOutcome::Accepted => "accepted",
            WriteOutcome::Replayed => "replayed",
        }
    }
}

/// Checks an idempotency object against the event id that was sent and classifies the write.
fn classify_write(idempotency: &Idempotency, event_id: &str, label: &str) -> Result<WriteOutcome> {
    ensure!(
        idempotency.event_id.as_deref() == Some(event_id),
        "{label}: response idempotency.event_id is {:?}, expected the event id sent, {event_id:?}",
        idempotency.event_id
    );
    match (idempotency.reason.as_str(), idempotency.duplicate) {
        ("accepted", false) => Ok(WriteOutcome::Accepted),
        ("duplicate_event_id", true) => Ok(WriteOutcome::Replayed),
        (reason, duplicate) => bail!(
            "{label}: response idempotency has reason {reason:?} with duplicate={duplicate}, \
             expected \"accepted\" with false or \"duplicate_event_id\" with true"
        ),
    }
}

/// Removes the `idempotency` object from a response body and returns it.
fn take_idempotency(body: &mut Value, label: &str) -> Result<Idempotency> {
    let idempotency = body
        .as_object_mut()
        .and_then(|object| object.remove("idempotency"))
        .with_context(|| format!("{label}: the response has no idempotency object"))?;
    decode(idempotency, &format!("{label} (idempotency object)"))
}

/// Serialises a JSON value compactly. Unlike a comparison of `Value`s, a comparison of
/// this text distinguishes objects whose keys are in a different order.
fn json_text(value: &Value) -> String {
    value.to_string()
}

/// Describes the first top-level key in which two response bodies differ, or `None`
/// when their JSON text is identical (key order included).
fn describe_difference(written: &Value, recomputed: &Value) -> Option<String> {
    if json_text(written) == json_text(recomputed) {
        return None;
    }
    let (Some(written), Some(recomputed)) = (written.as_object(), recomputed.as_object()) else {
        return Some(format!(
            "{} differs from {}",
            excerpt(&written.to_string()),
            excerpt(&recomputed.to_string())
        ));
    };
    let written_keys: Vec<&String> = written.keys().collect();
    let recomputed_keys: Vec<&String> = recomputed.keys().collect();
    if written_keys != recomputed_keys {
        return Some(format!(
            "keys {written_keys:?} differ from the recomputed keys {recomputed_keys:?}"
        ));
    }
    let key = written_keys
        .into_iter()
        .find(|key| json_text(&written[key.as_str()]) != json_text(&recomputed[key.as_str()]))?;
    Some(format!(
        "{key} is {} but the recomputation gives {}",
        excerpt(&written[key.as_str()].to_string()),
        excerpt(&recomputed[key.as_str()].to_string())
    ))
}

/// The response of an idempotent write, without its idempotency object.
struct IdempotentReply {
    body: Value,
    outcome: WriteOutcome,
    /// Difference between the body and the response to the same request without an event id.
    difference: Option<String>,
}

/// Sends an idempotent write with `event_id`, then the same body without an event id,
/// and compares the two responses apart from their idempotency objects.
///
/// The request without an event id stores nothing in the daemon, so it recomputes the
/// response from the note alone. A replay must equal it just as an accepted write must.
async fn send_idempotent(
    client: &DaemonClient,
    path: &str,
    body: &Value,
    event_id: &str,
    label: &str,
) -> Result<IdempotentReply> {
    let mut written = client.call(Method::POST, path, Some(body), label).await?;
    let idempotency = take_idempotency(&mut written, label)?;
    let outcome = classify_write(&idempotency, event_id, label)?;

    let mut without_event_id = body.clone();
    if let Some(object) = without_event_id.as_object_mut() {
        object.remove("event_id");
    }
    let recompute_label = format!("{label} (sent again without event_id)");
    let mut recomputed = client
        .call(
            Method::POST,
            path,
            Some(&without_event_id),
            &recompute_label,
        )
        .await?;
    let recomputed_idempotency = take_idempotency(&mut recomputed, &recompute_label)?;
    ensure!(
        recomputed_idempotency.event_id.is_none()
            && !recomputed_idempotency.duplicate
            && recomputed_idempotency.reason == "not_provided",
        "{recompute_label}: idempotency is {recomputed_idempotency:?}, expected event_id null, \
         duplicate false and reason \"not_provided\""
    );

    Ok(IdempotentReply {
        difference: describe_difference(&written, &recomputed),
        body: written,
        outcome,
    })
}

// ---------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------

/// Computes the folder profile from the notes, as the daemon's analysis should.
fn local_profile(notes: &[Note]) -> Profile {
    let total_links: usize = notes.iter().map(|note| note.wiki_link_count).sum();
    let note_count = notes.len();
    Profile {
        note_count: note_count as u64,
        orphan_notes: notes
            .iter()
            .filter(|note| note.wiki_link_count == 0)
            .count() as u64,
        link_density: if note_count == 0 {
            0.0
        } else {
            total_links as f64 / note_count as f64
        },
    }
}

/// Compares the daemon's profile with the client's count.
///
/// `link_density` is compared with a relative tolerance of 1e-12, because serde_json's
/// default float parser may round the last bit differently from the daemon's writer.
fn check_profile(reported: &Profile, expected: &Profile, label: &str) -> Result<()> {
    ensure!(
        reported.note_count == expected.note_count,
        "{label}: note_count is {}, but the client found {} notes",
        reported.note_count,
        expected.note_count
    );
    ensure!(
        reported.orphan_notes == expected.orphan_notes,
        "{label}: orphan_notes is {}, but the client found {} notes without a wiki-link",
        reported.orphan_notes,
        expected.orphan_notes
    );
    let tolerance = 1e-12 * expected.link_density.abs().max(1.0);
    ensure!(
        (reported.link_density - expected.link_density).abs() <= tolerance,
        "{label}: link_density is {}, but the client counts {}",
        reported.link_density,
        expected.link_density
    );
    Ok(())
}

/// Returns the run id that the next folder analysis must get: the newest listed run's
/// counter plus one, or `run_0001` when there is no run.
fn next_run_id(runs: &[RunRecord]) -> Result<String> {
    let Some(newest) = runs.last() else {
        return Ok("run_0001".to_owned());
    };
    let counter: u64 = newest
        .run_id
        .strip_prefix("run_")
        .and_then(|digits| digits.parse().ok())
        .with_context(|| {
            format!(
                "GET /runs lists run id {:?}, expected run_ and a number",
                newest.run_id
            )
        })?;
    Ok(format!("run_{:04}", counter + 1))
}

fn expect_equal<T: PartialEq + std::fmt::Debug>(
    label: &str,
    field: &str,
    actual: &T,
    expected: &T,
) -> Result<()> {
    ensure!(
        actual == expected,
        "{label}: response {field} is {actual:?}, expected {expected:?}"
    );
    Ok(())
}

/// Fails unless the run's proposals are exactly the two initial ones, all in `status`.
async fn check_proposals(client: &DaemonClient, run_id: &str, status: &str) -> Result<usize> {
    let path = format!("/runs/{run_id}/proposals");
    let list: ProposalList = client.get(&path).await?;
    let label = format!("GET {path}");
    expect_equal(&label, "run_id", &list.run_id, &run_id.to_owned())?;

    let expected_types = ["tag_enrichment", "link_add"];
    ensure!(
        list.proposals.len() == expected_types.len(),
        "{label}: {} proposals listed, expected the {} initial ones",
        list.proposals.len(),
        expected_types.len()
    );
    for (position, (proposal, change_type)) in list.proposals.iter().zip(expected_types).enumerate()
    {
        let expected_id = format!("{run_id}-prop-{:02}", position + 1);
        expect_equal(&label, "proposal_id", &proposal.proposal_id, &expected_id)?;
        expect_equal(
            &label,
            &format!("{expected_id} change_type"),
            &proposal.change_type.as_str(),
            &change_type,
        )?;
        expect_equal(
            &label,
            &format!("{expected_id} status"),
            &proposal.status.as_str(),
            &status,
        )?;
    }
    Ok(list.proposals.len())
}

/// Outcome of the run workflow.
struct RunReport {
    run_id: String,
    profile: Profile,
    approved_count: u64,
    applied_count: u64,
    snapshot_id: String,
    /// The newest run before this one, if any.
    previous_run: Option<RunRecord>,
}

/// Analyses the folder, then approves, applies and rolls back the new run's proposals.
async fn run_onboarding(
    client: &DaemonClient,
    folder: &Path,
    expected_profile: &Profile,
) -> Result<RunReport> {
    let mut earlier: RunList = client.get("/runs").await?;
    let expected_run_id = next_run_id(&earlier.runs)?;

    let folder_path = folder.to_str().with_context(|| {
        format!(
            "folder path {} is not valid UTF-8, so it cannot be sent as JSON",
            folder.display()
        )
    })?;
    let path = "/onboarding/analyze-folder";
    let label = &format!("POST {path}");
    let run: RunRecord = client
        .post(path, &json!({ "folder_path": folder_path }), label)
        .await?;
    expect_equal(label, "run_id", &run.run_id, &expected_run_id)?;
    expect_equal(label, "state", &run.state.as_str(), &"analyzing")?;
    check_profile(&run.profile, expected_profile, label)?;
    let run_id = run.run_id;
    println!(
        "analysed {folder_path}: run {run_id}, note_count {}, orphan_notes {}, link_density {}",
        run.profile.note_count, run.profile.orphan_notes, run.profile.link_density
    );

    let proposal_count = check_proposals(client, &run_id, "pending").await? as u64;

    let path = format!("/runs/{run_id}/approve");
    let label = format!("POST {path}");
    let approved: ApproveResponse = client.post(&path, &json!({}), &label).await?;
    expect_equal(&label, "run_id", &approved.run_id, &run_id)?;
    expect_equal(&label, "state", &approved.state.as_str(), &"approved")?;
    expect_equal(
        &label,
        "approved_count",
        &approved.approved_count,
        &proposal_count,
    )?;
    check_proposals(client, &run_id, "approved").await?;

    let path = format!("/runs/{run_id}/apply");
    let label = format!("POST {path}");
    let applied: ApplyResponse = client.post(&path, &json!({}), &label).await?;
    let snapshot_id = format!("snap-{run_id}-1");
    expect_equal(&label, "run_id", &applied.run_id, &run_id)?;
    expect_equal(&label, "state", &applied.state.as_str(), &"applied")?;
    expect_equal(&label, "snapshot_id", &applied.snapshot_id, &snapshot_id)?;
    expect_equal(
        &label,
        "applied_count",
        &applied.applied_count,
        &proposal_count,
    )?;
    check_proposals(client, &run_id, "applied").await?;

    let path = format!("/runs/{run_id}/rollback");
    let label = format!("POST {path}");
    let rolled_back: RollbackResponse = client.post(&path, &json!({}), &label).await?;
    expect_equal(&label, "run_id", &rolled_back.run_id, &run_id)?;
    expect_equal(&label, "state", &rolled_back.state.as_str(), &"rolled_back")?;
    expect_equal(
        &label,
        "rolled_back_snapshot_id",
        &rolled_back.rolled_back_snapshot_id,
        &snapshot_id,
    )?;
    check_proposals(client, &run_id, "approved").await?;

    let second_label = format!("second {label} of {snapshot_id}");
    let refusal = client
        .call_expecting_error(
            Method::POST,
            &path,
            &json!({ "snapshot_id": snapshot_id }),
            &second_label,
            StatusCode::BAD_REQUEST,
        )
        .await?;
    expect_equal(
        &second_label,
        "code",
        &refusal.code.as_str(),
        &"snapshot_already_rolled_back",
    )?;
    expect_equal(
        &second_label,
        "error",
        &refusal.error,
        &format!("snapshot {snapshot_id} is already rolled back"),
    )?;

    let path = format!("/runs/{run_id}");
    let label = format!("GET {path}");
    let final_run: RunRecord = client.get(&path).await?;
    expect_equal(&label, "state", &final_run.state.as_str(), &"rolled_back")?;
    expect_equal(
        &label,
        "snapshot_id",
        &final_run.snapshot_id,
        &Some(snapshot_id.clone()),
    )?;
    expect_equal(
        &label,
        "rolled_back_snapshot_id",
        &final_run.rolled_back_snapshot_id,
        &Some(snapshot_id.clone()),
    )?;
    expect_equal(&label, "profile", &final_run.profile, &run.profile)?;
    println!(
        "run {run_id}: approved {}, applied {} as {snapshot_id}, rolled back; proposals are \
         approved again and a second rollback is refused",
        approved.approved_count, applied.applied_count
    );

    Ok(RunReport {
        run_id,
        profile: run.profile,
        approved_count: approved.approved_count,
        applied_count: applied.applied_count,
        snapshot_id,
        previous_run: earlier.runs.pop(),
    })
}

/// One idempotent write of one note.
struct WriteRecord {
    note: String,
    step: &'static str,
    outcome: WriteOutcome,
}

/// Link targets chosen for each note.
struct LinkPlan {
    /// True when no two notes link to each other, so one-way links are used.
    one_way: bool,
    pairs: Vec<(usize, usize)>,
    /// For each note, the notes proposed as its link targets.
    targets: Vec<BTreeSet<usize>>,
}

fn plan_links(notes: &[Note]) -> LinkPlan {
    let stems: Vec<String> = notes.iter().map(|note| note.stem.clone()).collect();
    let link_targets: Vec<Vec<String>> =
        notes.iter().map(|note| note.link_targets.clone()).collect();
    let graph = link_graph(&stems, &link_targets);
    let pairs = mutual_pairs(&graph);
    if pairs.is_empty() {
        return LinkPlan {
            one_way: true,
            pairs,
            targets: graph,
        };
    }

    let mut targets = vec![BTreeSet::new(); notes.len()];
    for &(a, b) in &pairs {
        targets[a].insert(b);
        targets[b].insert(a);
    }
    LinkPlan {
        one_way: false,
        pairs,
        targets,
    }
}

/// Proposes links from `source` to `targets`, then applies every suggestion.
async fn link_note(
    client: &DaemonClient,
    source: &Note,
    targets: &[&Note],
) -> Result<IdempotentReply> {
    let candidates: Vec<Value> = targets
        .iter()
        .map(|target| json!({ "note_id": target.relative_path, "title": target.title }))
        .collect();
    let label = format!("POST /links/propose for note {:?}", source.relative_path);
    let proposed: ProposeLinksResponse = client
        .post(
            "/links/propose",
            &json!({ "source_note_id": source.relative_path, "candidate_notes": candidates }),
            &label,
        )
        .await?;

    expect_equal(
        &label,
        "source_note_id",
        &proposed.source_note_id.as_str(),
        &source.echoed_id(),
    )?;
    let mut suggested: Vec<&str> = proposed
        .suggestions
        .iter()
        .map(|suggestion| suggestion.target_note_id.as_str())
        .collect();
    suggested.sort_unstable();
    let mut expected: Vec<&str> = targets.iter().map(|target| target.echoed_id()).collect();
    expected.sort_unstable();
    expect_equal(&label, "suggestion targets", &suggested, &expected)?;
    for (earlier, later) in proposed
        .suggestions
        .iter()
        .zip(proposed.suggestions.iter().skip(1))
    {
        ensure!(
            earlier.confidence >= later.confidence,
            "{label}: suggestion {:?} ({}) comes before {:?} ({}), expected highest confidence first",
            earlier.target_note_id,
            earlier.confidence,
            later.target_note_id,
            later.confidence
        );
    }
    for suggestion in &proposed.suggestions {
        ensure!(
            (0.0..=1.0).contains(&suggestion.confidence) && !suggestion.reason.is_empty(),
            "{label}: suggestion for {:?} has confidence {} and reason {:?}, expected a \
             confidence in [0, 1] and a reason",
            suggestion.target_note_id,
            suggestion.confidence,
            suggestion.reason
        );
    }

    let links: Vec<Value> = proposed
        .suggestions
        .iter()
        .map(|suggestion| {
            json!({ "target_note_id": suggestion.target_note_id, "confidence": suggestion.confidence })
        })
        .collect();
    let event_id = source.event_id("links");
    let label = format!("POST /links/apply for note {:?}", source.relative_path);
    let body =
        json!({ "source_note_id": source.relative_path, "event_id": event_id, "links": links });
    let reply = send_idempotent(client, "/links/apply", &body, &event_id, &label).await?;

    let applied: ApplyLinksResponse = decode(reply.body.clone(), &label)?;
    expect_equal(
        &label,
        "source_note_id",
        &applied.source_note_id.as_str(),
        &source.echoed_id(),
    )?;
    expect_equal(
        &label,
        "applied_count",
        &applied.applied_count,
        &(proposed.suggestions.len() as u64),
    )?;
    let applied_links: Vec<(&str, f64, &str)> = applied
        .applied_links
        .iter()
        .map(|link| {
            (
                link.target_note_id.as_str(),
                link.confidence,
                link.status.as_str(),
            )
        })
        .collect();
    let expected_links: Vec<(&str, f64, &str)> = proposed
        .suggestions
        .iter()
        .map(|suggestion| {
            (
                suggestion.target_note_id.as_str(),
                suggestion.confidence,
                "applied",
            )
        })
        .collect();
    expect_equal(&label, "applied_links", &applied_links, &expected_links)?;
    Ok(reply)
}

/// Classifies the notes in batches and returns how many got each `primary_para`.
async fn classify_notes(client: &DaemonClient, notes: &[Note]) -> Result<BTreeMap<String, usize>> {
    let mut counts = BTreeMap::new();
    for (batch_index, batch) in notes.chunks(CLASSIFY_BATCH_SIZE).enumerate() {
        let label = format!("POST /organize/classify (batch {})", batch_index + 1);
        let request: Vec<Value> = batch
            .iter()
            .map(|note| json!({ "note_id": note.relative_path, "title": note.title }))
            .collect();
        let response: ClassifyResponse = client
            .post("/organize/classify", &json!({ "notes": request }), &label)
            .await?;
        ensure!(
            response.results.len() == batch.len(),
            "{label}: {} results for {} notes, expected one per note",
            response.results.len(),
            batch.len()
        );

        for (note, result) in batch.iter().zip(&response.results) {
            let note_label = format!("{label}, note {:?}", note.relative_path);
            expect_equal(
                &note_label,
                "note_id",
                &result.note_id.as_str(),
                &note.echoed_id(),
            )?;
            ensure!(
                matches!(
                    result.primary_para.as_str(),
                    "project" | "area" | "resource" | "archive"
                ),
                "{note_label}: primary_para is {:?}, expected project, area, resource or archive",
                result.primary_para
            );
            ensure!(
                result.secondary_para.is_empty(),
                "{note_label}: secondary_para is {:?}, expected []",
                result.secondary_para
            );
            ensure!(
                (0.0..=1.0).contains(&result.confidence),
                "{note_label}: confidence {} is outside [0, 1]",
                result.confidence
            );
            ensure!(
                matches!(result.action_mode.as_str(), "auto" | "suggest" | "manual"),
                "{note_label}: action_mode is {:?}, expected auto, suggest or manual",
                result.action_mode
            );
            *counts.entry(result.primary_para.clone()).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// Asks one question about the note and returns the reply and the gate's reasons.
async fn ask_note(client: &DaemonClient, note: &Note) -> Result<(IdempotentReply, Vec<String>)> {
    let query = format!("What is {} about?", note.title);
    let event_id = note.event_id("ask");
    let label = format!("POST /ask for note {:?}", note.relative_path);
    let body = json!({
        "query": query,
        "event_id": event_id,
        "frontmatter": note.front_matter.fields,
        "tags": note.tags,
        "path": note.relative_path,
        "content": note.body,
    });
    let reply = send_idempotent(client, "/ask", &body, &event_id, &label).await?;

    let asked: AskResponse = decode(reply.body.clone(), &label)?;
    let expected_text = format!("Draft answer for: {}", trim_whitespace(&query));
    expect_equal(&label, "answer.text", &asked.answer.text, &expected_text)?;
    ensure!(
        asked.sensitivity.allowed == asked.sensitivity.reasons.is_empty(),
        "{label}: sensitivity.allowed is {} with reasons {:?}, expected allowed exactly when \
         there is no reason",
        asked.sensitivity.allowed,
        asked.sensitivity.reasons
    );
    Ok((reply, asked.sensitivity.reasons))
}

// ---------------------------------------------------------------------------
// Run and summary
// ---------------------------------------------------------------------------

#[derive(Default)]
struct StepCounts {
    accepted: usize,
    replayed: usize,
}

impl StepCounts {
    fn to_json(&self) -> Value {
        json!({ "accepted": self.accepted, "replayed": self.replayed })
    }
}

struct RunSummary {
    run: RunReport,
    front_matter_parsed: usize,
    front_matter_absent: usize,
    front_matter_unparsable: Vec<String>,
    notes_decoded_lossily: Vec<String>,
    link_plan_one_way: bool,
    link_pairs: Vec<(String, String)>,
    link_sources: usize,
    links_applied: u64,
    para_counts: BTreeMap<String, usize>,
    notes_blocked: usize,
    /// Blocked notes by gate reason; a note blocked for two reasons is listed under both.
    blocked_by_reason: BTreeMap<String, Vec<String>>,
    writes: Vec<WriteRecord>,
}

impl RunSummary {
    fn step_counts(&self, step: &str) -> StepCounts {
        let mut counts = StepCounts::default();
        for write in self.writes.iter().filter(|write| write.step == step) {
            match write.outcome {
                WriteOutcome::Accepted => counts.accepted += 1,
                WriteOutcome::Replayed => counts.replayed += 1,
            }
        }
        counts
    }
}

fn print_summary(summary: &RunSummary, note_count: usize) {
    let run = &summary.run;
    println!(
        "profile: note_count {}, orphan_notes {}, link_density {}",
        run.profile.note_count, run.profile.orphan_notes, run.profile.link_density
    );
    println!(
        "run {}: {} proposals approved, {} applied as {}, rolled back",
        run.run_id, run.approved_count, run.applied_count, run.snapshot_id
    );
    println!(
        "front matter: {} parsed, {} absent, {} unparsable{}",
        summary.front_matter_parsed,
        summary.front_matter_absent,
        summary.front_matter_unparsable.len(),
        list_suffix(&summary.front_matter_unparsable)
    );
    if !summary.notes_decoded_lossily.is_empty() {
        println!(
            "notes decoded lossily: {}",
            summary.notes_decoded_lossily.join(", ")
        );
    }
    let one_way_note = if summary.link_plan_one_way {
        ", so one-way links were used"
    } else {
        ""
    };
    println!(
        "mutual link pairs: {}{one_way_note}; links proposed and applied for {} source notes, \
         {} links applied",
        summary.link_pairs.len(),
        summary.link_sources,
        summary.links_applied
    );
    let para: Vec<String> = summary
        .para_counts
        .iter()
        .map(|(para, count)| format!("{para} {count}"))
        .collect();
    println!("classified {note_count} notes: {}", para.join(", "));
    println!(
        "sensitivity gate: {} of {note_count} notes blocked",
        summary.notes_blocked
    );
    for (reason, notes) in &summary.blocked_by_reason {
        println!("  {reason}: {} ({})", notes.len(), notes.join(", "));
    }
    for step in ["ask", "links/apply"] {
        let counts = summary.step_counts(step);
        println!(
            "{step}: {} accepted, {} replayed",
            counts.accepted, counts.replayed
        );
    }

    let blocked: Map<String, Value> = summary
        .blocked_by_reason
        .iter()
        .map(|(reason, notes)| (reason.clone(), json!(notes.len())))
        .collect();
    let json_line = json!({
        "run_id": run.run_id,
        "profile": {
            "note_count": run.profile.note_count,
            "orphan_notes": run.profile.orphan_notes,
            "link_density": run.profile.link_density,
        },
        "front_matter": {
            "parsed": summary.front_matter_parsed,
            "absent": summary.front_matter_absent,
            "unparsable": summary.front_matter_unparsable.len(),
        },
        "link_pairs": summary.link_pairs.len(),
        "link_pairs_one_way": summary.link_plan_one_way,
        "links_applied": summary.links_applied,
        "classified": summary.para_counts,
        "notes_blocked": summary.notes_blocked,
        "blocked_by_reason": blocked,
        "ask": summary.step_counts("ask").to_json(),
        "links_apply": summary.step_counts("links/apply").to_json(),
    });
    println!("{json_line}");
}

fn list_suffix(items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!(" ({})", items.join(", "))
    }
}

/// Lists every way in which the run differs from `expectation`, naming the notes.
fn check_expectation(expectation: Expectation, summary: &RunSummary) -> Vec<String> {
    let mut failures = Vec::new();
    let (expected, expected_name) = match expectation {
        Expectation::Fresh => (WriteOutcome::Accepted, "accepted"),
        Expectation::Replay => (WriteOutcome::Replayed, "a replay (duplicate_event_id)"),
    };
    for write in &summary.writes {
        if write.outcome != expected {
            failures.push(format!(
                "POST /{} for note {:?} was {}, expected {expected_name}",
                write.step,
                write.note,
                write.outcome.as_str()
            ));
        }
    }

    if expectation == Expectation::Replay {
        match &summary.run.previous_run {
            None => failures.push(
                "GET /runs listed no run before this one, expected the run of the first pass"
                    .to_owned(),
            ),
            Some(previous) => {
                if previous.profile != summary.run.profile {
                    failures.push(format!(
                        "the previous run {} has profile {:?}, but this run over the same notes has {:?}",
                        previous.run_id, previous.profile, summary.run.profile
                    ));
                }
                if previous.state != "rolled_back" {
                    failures.push(format!(
                        "the previous run {} is in state {:?}, expected rolled_back",
                        previous.run_id, previous.state
                    ));
                }
            }
        }
    }
    failures
}

/// Runs every step and returns the failures: replies that differ from their
/// recomputation, and with `--expect`, the unmet expectations.
async fn run(args: Args) -> Result<Vec<String>> {
    let client = DaemonClient::new(&args.base_url)?;
    ensure!(
        args.folder.is_dir(),
        "notes folder {} does not exist or is not a folder; check --folder",
        args.folder.display()
    );
    let folder = fs::canonicalize(&args.folder)
        .with_context(|| format!("failed to resolve --folder {}", args.folder.display()))?;

    let mut notes = Vec::new();
    for (relative_path, path) in find_note_paths(&folder)? {
        notes.push(load_note(relative_path, &path)?);
    }
    ensure!(
        !notes.is_empty(),
        "no .md or .markdown notes found under {}; check --folder",
        folder.display()
    );
    for note in &notes {
        if let FrontMatterStatus::Unparsable(reason) = &note.front_matter.status {
            eprintln!(
                "warning: note {:?}: front matter is not used, {reason}; sending frontmatter {{}}",
                note.relative_path
            );
        }
        if note.decoded_lossily {
            eprintln!(
                "warning: note {:?} is not valid UTF-8; invalid bytes were replaced",
                note.relative_path
            );
        }
    }

    let run_report = run_onboarding(&client, &folder, &local_profile(&notes)).await?;
    let mut failures = Vec::new();
    let mut writes = Vec::new();

    let plan = plan_links(&notes);
    if plan.one_way {
        println!("no two notes link to each other, so links are proposed along one-way links");
    }
    for &(a, b) in &plan.pairs {
        println!(
            "mutual link: {} <-> {}",
            notes[a].relative_path, notes[b].relative_path
        );
    }
    let mut link_sources = 0;
    let mut links_applied = 0;
    for (source, targets) in notes.iter().zip(&plan.targets) {
        if targets.is_empty() {
            continue;
        }
        let targets: Vec<&Note> = targets.iter().map(|&index| &notes[index]).collect();
        let reply = link_note(&client, source, &targets).await?;
        link_sources += 1;
        links_applied += reply.body["applied_count"].as_u64().unwrap_or(0);
        if let Some(difference) = reply.difference {
            failures.push(format!(
                "POST /links/apply for note {:?} differs from the recomputation: {difference}",
                source.relative_path
            ));
        }
        writes.push(WriteRecord {
            note: source.relative_path.clone(),
            step: "links/apply",
            outcome: reply.outcome,
        });
    }

    let para_counts = classify_notes(&client, &notes).await?;

    let mut notes_blocked = 0;
    let mut blocked_by_reason: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for note in &notes {
        let (reply, reasons) = ask_note(&client, note).await?;
        let gate = if reasons.is_empty() {
            "allowed".to_owned()
        } else {
            format!("blocked ({})", reasons.join(", "))
        };
        println!(
            "{}: title {:?}, tags {:?}, gate {gate}, ask {}",
            note.relative_path,
            note.title,
            note.tags,
            reply.outcome.as_str()
        );
        if !reasons.is_empty() {
            notes_blocked += 1;
        }
        for reason in reasons {
            blocked_by_reason
                .entry(reason)
                .or_default()
                .push(note.relative_path.clone());
        }
        if let Some(difference) = reply.difference {
            failures.push(format!(
                "POST /ask for note {:?} differs from the recomputation: {difference}",
                note.relative_path
            ));
        }
        writes.push(WriteRecord {
            note: note.relative_path.clone(),
            step: "ask",
            outcome: reply.outcome,
        });
    }

    let summary = RunSummary {
        run: run_report,
        front_matter_parsed: notes
            .iter()
            .filter(|note| note.front_matter.status == FrontMatterStatus::Parsed)
            .count(),
        front_matter_absent: notes
            .iter()
            .filter(|note| note.front_matter.status == FrontMatterStatus::Absent)
            .count(),
        front_matter_unparsable: notes
            .iter()
            .filter(|note| matches!(note.front_matter.status, FrontMatterStatus::Unparsable(_)))
            .map(|note| note.relative_path.clone())
            .collect(),
        notes_decoded_lossily: notes
            .iter()
            .filter(|note| note.decoded_lossily)
            .map(|note| note.relative_path.clone())
            .collect(),
        link_plan_one_way: plan.one_way,
        link_pairs: plan
            .pairs
            .iter()
            .map(|&(a, b)| {
                (
                    notes[a].relative_path.clone(),
                    notes[b].relative_path.clone(),
                )
            })
            .collect(),
        link_sources,
        links_applied,
        para_counts,
        notes_blocked,
        blocked_by_reason,
        writes,
    };
    print_summary(&summary, notes.len());

    if let Some(expectation) = args.expect {
        failures.extend(check_expectation(expectation, &summary));
    }
    Ok(failures)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let expectation = args.expect;

    // Printed by hand so that the message shows its whole context chain on one line,
    // without the backtrace that anyhow adds when RUST_BACKTRACE is set.
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
        eprintln!("check failed: {failure}");
    }
    eprintln!(
        "{} checks failed; see the lines above and the daemon log",
        failures.len()
    );
    ExitCode::FAILURE
}

// Run with `cargo test --example onboard_notes`.
#[cfg(test)]
mod tests {
    use super::*;

    fn front_matter_of(text: &str) -> FrontMatter {
        parse_front_matter(split_front_matter(text).0)
    }

    #[test]
    fn front_matter_parses_mapping() {
        let text = "---\ntype: feature\ntags: [hello, bonjour]\nprivate: false\n---\n# Note\n";
        let front_matter = front_matter_of(text);
        assert_eq!(
            front_matter.status,
            FrontMatterStatus::Parsed,
            "a YAML mapping should parse"
        );
        assert_eq!(
            Value::Object(front_matter.fields),
            json!({ "type": "feature", "tags": ["hello", "bonjour"], "private": false }),
            "the mapping should become the same JSON object"
        );
    }

    #[test]
    fn front_matter_split_keeps_body() {
        let text = "\u{feff}---\r\nlayout: page\r\n...\r\n\r\n# Math\r\n";
        let (block, body) = split_front_matter(text);
        assert_eq!(
            block,
            Some("layout: page\r\n"),
            "the block excludes its delimiters"
        );
        assert_eq!(
            body, "\r\n# Math\r\n",
            "the body starts after the closing line"
        );
    }

    #[test]
    fn front_matter_absent_or_unclosed() {
        let absent = front_matter_of("# Title\n---\nkey: value\n---\n");
        assert_eq!(
            absent.status,
            FrontMatterStatus::Absent,
            "front matter must be at the top"
        );
        let unclosed = split_front_matter("---\n# Heading\n");
        assert_eq!(
            unclosed,
            (None, "---\n# Heading\n"),
            "an unclosed --- is a thematic break"
        );
    }

    #[test]
    fn front_matter_empty_block_is_empty_object() {
        let front_matter = front_matter_of("---\n# only a comment\n---\nbody\n");
        assert_eq!(
            front_matter.status,
            FrontMatterStatus::Parsed,
            "an empty block is valid"
        );
        assert!(front_matter.fields.is_empty(), "an empty block gives {{}}");
    }

    #[test]
    fn front_matter_invalid_yaml_unparsable() {
        let invalid = front_matter_of("---\ntitle: [unclosed\n---\nbody\n");
        assert!(
            matches!(invalid.status, FrontMatterStatus::Unparsable(_)),
            "invalid YAML should be unparsable, got {:?}",
            invalid.status
        );
        assert!(
            invalid.fields.is_empty(),
            "unparsable front matter is sent as {{}}"
        );

        let list = front_matter_of("---\n- a\n- b\n---\nbody\n");
        assert!(
            matches!(list.status, FrontMatterStatus::Unparsable(_)),
            "a YAML list is not a mapping, got {:?}",
            list.status
        );
    }

    #[test]
    fn tags_from_front_matter_list() {
        let front_matter = front_matter_of("---\ntags: [Private, '#work', 2024]\n---\n").fields;
        assert_eq!(
            note_tags(&front_matter, ""),
            ["Private", "work", "2024"],
            "list items become tags without a leading #"
        );
    }

    #[test]
    fn tags_from_front_matter_string() {
        let front_matter = front_matter_of("---\ntags: alpha, beta gamma\n---\n").fields;
        assert_eq!(
            note_tags(&front_matter, ""),
            ["alpha", "beta", "gamma"],
            "a string splits on commas and whitespace"
        );
    }

    #[test]
    fn tags_inline_skip_code_and_headings() {
        let body = "# Heading\n#idea and #idea again, see #1\n`#not-a-tag` text #area/sub-topic/\n\
                    ```css\n#fff { }\n```\nurl http://x/#anchor (#paren)\n";
        assert_eq!(
            note_tags(&Map::new(), body),
            ["idea", "area/sub-topic"],
            "only prose tags count, once each"
        );
    }

    #[test]
    fn tags_merge_front_matter_first() {
        let front_matter = front_matter_of("---\ntags: [secret]\n---\n").fields;
        assert_eq!(
            note_tags(&front_matter, "text #secret #other\n"),
            ["secret", "other"],
            "front-matter tags come first and duplicates are dropped"
        );
    }

    #[test]
    fn title_prefers_heading() {
        let front_matter = front_matter_of("---\ntitle: Front Title\n---\n").fields;
        assert_eq!(
            note_title(&front_matter, "\n# Real Heading #\n", "stem"),
            "Real Heading",
            "the first # heading wins over the front-matter title"
        );
    }

    #[test]
    fn title_falls_back_in_order() {
        let front_matter = front_matter_of("---\ntitle: ' Front Title '\n---\n").fields;
        assert_eq!(
            note_title(&front_matter, "## Second level\n", "stem"),
            "Front Title",
            "without a # heading the front-matter title is used, trimmed"
        );
        assert_eq!(
            note_title(&Map::new(), "#hashtag\n    # indented code\n", "my-note"),
            "my-note",
            "without a heading or title the stem is used"
        );
    }

    #[test]
    fn title_skips_fenced_code() {
        let body = "````md\n```\n# inside\n```\n````\n# Outside\n";
        assert_eq!(
            first_heading(body).as_deref(),
            Some("Outside"),
            "a heading inside a longer fence is code"
        );
    }

    #[test]
    fn link_targets_reduce_to_stems() {
        let text = "[[Note-A]] ![[img/Pic.MD]] [[b#^block|alias]] [[#local]] [[c\\|x]] [[]]";
        let stems: Vec<Option<String>> =
            wiki_links(text).into_iter().map(link_target_stem).collect();
        assert_eq!(
            stems,
            [
                Some("note-a".to_owned()),
                Some("pic".to_owned()),
                Some("b".to_owned()),
                None,
                Some("c".to_owned()),
            ],
            "targets lose folder, extension, section and alias"
        );
    }

    #[test]
    fn wiki_links_match_daemon_pattern() {
        assert_eq!(
            wiki_links("[[a\nb]] [[x]]]"),
            ["a\nb", "x"],
            "links may span lines"
        );
        assert!(
            wiki_links("[[]] [ [x]]").is_empty(),
            "empty and split brackets do not count"
        );
    }

    #[test]
    fn mutual_links_case_insensitive() {
        let stems = ["Alpha", "beta", "gamma", "index", "index"].map(String::from);
        let targets = [
            vec!["beta".to_owned(), "alpha".to_owned()],
            vec!["ALPHA".to_owned(), "gamma".to_owned()],
            vec!["missing".to_owned(), "index".to_owned()],
            vec!["gamma".to_owned()],
            vec![],
        ];
        let graph = link_graph(&stems, &targets);
        assert_eq!(graph[0], BTreeSet::from([1]), "a self-link is dropped");
        assert_eq!(
            graph[2],
            BTreeSet::from([3, 4]),
            "a shared stem links to every note with it"
        );
        assert_eq!(
            mutual_pairs(&graph),
            [(0, 1), (2, 3)],
            "pairs link both ways"
        );
    }

    #[test]
    fn mutual_links_none_one_way() {
        let stems = ["a", "b"].map(String::from);
        let graph = link_graph(&stems, &[vec!["b".to_owned()], vec![]]);
        assert!(mutual_pairs(&graph).is_empty(), "a one-way link is no pair");
    }

    #[test]
    fn note_extension_case_insensitive() {
        assert_eq!(
            strip_note_extension("A.MD"),
            Some("A"),
            "the extension ignores case"
        );
        assert_eq!(
            strip_note_extension("x.markdown"),
            Some("x"),
            ".markdown counts"
        );
        assert_eq!(
            strip_note_extension("x.md.bak"),
            None,
            "only the final extension counts"
        );
        assert_eq!(
            strip_note_extension(".md"),
            None,
            "a bare .md has no extension"
        );
    }

    #[test]
    fn next_run_id_follows_newest() {
        let run = |run_id: &str| RunRecord {
            run_id: run_id.to_owned(),
            state: "rolled_back".to_owned(),
            profile: Profile {
                note_count: 0,
                orphan_notes: 0,
                link_density: 0.0,
            },
            snapshot_id: None,
            rolled_back_snapshot_id: None,
        };
        assert_eq!(
            next_run_id(&[]).unwrap(),
            "run_0001",
            "a fresh daemon starts at 1"
        );
        assert_eq!(
            next_run_id(&[run("run_0001"), run("run_9999")]).unwrap(),
            "run_10000",
            "the width grows after 9999"
        );
        assert!(
            next_run_id(&[run("bad")]).is_err(),
            "a malformed id is an error"
        );
    }

    #[test]
    fn difference_names_changed_key() {
        let written = json!({ "a": 1, "b": [1, 2] });
        assert_eq!(
            describe_difference(&written, &written.clone()),
            None,
            "equal bodies"
        );
        let changed = json!({ "a": 1, "b": [1, 3] });
        assert!(
            describe_difference(&written, &changed).is_some_and(|text| text.starts_with("b ")),
            "the differing key is named"
        );
        let reordered = json!({ "b": [1, 2], "a": 1 });
        assert!(
            describe_difference(&written, &reordered).is_some(),
            "key order is part of the body"
        );
    }

    #[test]
    fn base_url_must_be_loopback() {
        assert!(
            DaemonClient::new("http://127.0.0.1:8000").is_ok(),
            "IPv4 loopback"
        );
        assert!(
            DaemonClient::new("http://[::1]:8000").is_ok(),
            "IPv6 loopback"
        );
        assert!(
            DaemonClient::new("http://10.0.0.1:8000").is_err(),
            "private address"
        );
        assert!(
            DaemonClient::new("https://127.0.0.1:8000").is_err(),
            "https"
        );
    }
}
