//! Note loading and parsing: front matter, title, tags, wiki-links and the link graph.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use anyhow::{Context, Result};
use regex::Regex;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use walkdir::WalkDir;

use crate::support::{strip_closing_hashes, trim_whitespace};

/// Number of hex digits of the content hash that go into each event id.
const EVENT_HASH_HEX_LEN: usize = 16;

/// The folder-analysis wiki-link pattern: `[[`, one or more characters other than `]`
/// (newlines included), `]]`.
static WIKI_LINK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[\[[^\]]+\]\]").expect("the wiki-link pattern is valid"));

/// An inline tag: `#` at the start of a line or after whitespace, then letters, digits,
/// `_`, `-` or `/`. A heading (`# Title`) has a space after the `#` and does not match.
static INLINE_TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|\s)#([\p{L}\p{N}_][\p{L}\p{N}_/-]*)").expect("the tag pattern is valid")
});

/// Outcome of reading a note's front matter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FrontMatterStatus {
    /// The note does not start with a `---` line closed by `---` or `...`.
    Absent,
    /// The block is a YAML mapping, or empty.
    Parsed,
    /// The block is not valid YAML, or not a mapping. The text gives the reason.
    Unparsable(String),
}

/// Front matter as sent to `/ask`: the parsed YAML mapping, or an empty object.
#[derive(Clone, Debug)]
pub(crate) struct FrontMatter {
    pub(crate) fields: Map<String, Value>,
    pub(crate) status: FrontMatterStatus,
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
pub(crate) fn link_graph(stems: &[String], link_targets: &[Vec<String>]) -> Vec<BTreeSet<usize>> {
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
pub(crate) fn mutual_pairs(graph: &[BTreeSet<usize>]) -> Vec<(usize, usize)> {
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
pub(crate) struct Note {
    /// Path relative to the notes folder with `/` separators: the note id and the path
    /// sent to the sensitivity gate.
    pub(crate) relative_path: String,
    /// File name without its extension.
    pub(crate) stem: String,
    pub(crate) title: String,
    pub(crate) front_matter: FrontMatter,
    pub(crate) tags: Vec<String>,
    /// The text after the front matter.
    pub(crate) body: String,
    /// Number of wiki-link matches in the whole file, front matter included.
    pub(crate) wiki_link_count: usize,
    /// Lower-cased stems that the wiki-links point to.
    pub(crate) link_targets: Vec<String>,
    pub(crate) sha256_hex: String,
    /// True when the file is not valid UTF-8 and was decoded lossily.
    pub(crate) decoded_lossily: bool,
}

impl Note {
    pub(crate) fn event_id(&self, step: &str) -> String {
        format!(
            "{step}:{}:{}",
            self.relative_path,
            &self.sha256_hex[..EVENT_HASH_HEX_LEN]
        )
    }

    /// Returns the note id trimmed as the daemon trims it before echoing it.
    pub(crate) fn echoed_id(&self) -> &str {
        trim_whitespace(&self.relative_path)
    }
}

/// Lists the notes under `root` as sorted `(relative path, path to read)` pairs.
///
/// This follows the daemon's folder analysis: hidden entries (names starting with `.`)
/// are skipped with everything inside them, symbolic links to folders are not descended,
/// and a symbolic link to a file counts only when its target lies inside `root`.
pub(crate) fn find_note_paths(root: &Path) -> Result<Vec<(String, PathBuf)>> {
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

pub(crate) fn load_note(relative_path: String, path: &Path) -> Result<Note> {
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

// Run with `cargo test --example onboard_notes`.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
