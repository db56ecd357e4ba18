//! Measures request throughput and latency of a running daemon, one phase per
//! kind of request:
//!
//! - `mark`: `POST /publish/mark-for-gom` with fresh event ids, each a durable
//!   write of a draft and a ledger record.
//! - `mark-replay`: the same requests again, served from the replay ledger.
//! - `export`: `POST /publish/export-for-gom` of those drafts, no event id.
//! - `ask`: `POST /ask` with fresh event ids, each a durable ledger write.
//! - `ask-replay`: the same ask requests again, served from the replay
//!   ledger.
//! - `ask-no-id`: `POST /ask` without an event id.
//! - `links-apply`: `POST /links/apply` of 3 links, no event id.
//! - `analyze-folder`: `POST /onboarding/analyze-folder` over `--folder`. Each
//!   request reads every note in the folder and creates a run, so this phase
//!   sends `--folder-requests` requests instead of `--requests`.
//!
//! Usage: `cargo run --release --example bench_publish -- --base-url
//! http://127.0.0.1:8000 --requests 2000 --concurrency 16`, and
//! `--phases ask,ask-replay` to run only some phases. Point it only at a
//! throwaway database: it queues `--requests` drafts, records up to
//! `--requests` ask event ids in the replay ledger and creates
//! `--folder-requests` runs.
//!
//! Event ids and draft ids contain the client's process id and start time, so
//! repeated invocations against one database do not collide. A replay phase or
//! `export` whose prerequisite phase (`mark` or `ask`) is not selected sends
//! the prerequisite's requests first, untimed.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};

#[derive(Parser, Debug)]
struct Args {
    /// Base URL of the daemon.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    base_url: String,
    /// Requests per phase, except `analyze-folder`.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Requests of the `analyze-folder` phase.
    #[arg(long, default_value_t = 100)]
    folder_requests: usize,
    /// Folder of Markdown notes for `analyze-folder`, relative to the working
    /// directory. The client sends its absolute path, so the daemon must be
    /// able to read it.
    #[arg(long, default_value = "../shared/data/foam-docs")]
    folder: PathBuf,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Comma-separated phases to measure. They always run in the order of
    /// the default list.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Phase::ALL)]
    phases: Vec<Phase>,
}

/// One measured phase, which decides the request sent for each index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Phase {
    #[value(name = "mark")]
    FreshMarks,
    #[value(name = "mark-replay")]
    ReplayedMarks,
    #[value(name = "export")]
    Exports,
    #[value(name = "ask")]
    FreshAsks,
    #[value(name = "ask-replay")]
    ReplayedAsks,
    #[value(name = "ask-no-id")]
    AsksWithoutId,
    #[value(name = "links-apply")]
    LinkApplies,
    #[value(name = "analyze-folder")]
    FolderAnalyses,
}

/// Values shared by every request of one invocation.
struct Target {
    /// Process id and start time, which keep ids apart from earlier runs.
    run: String,
    /// Absolute path of the folder for `analyze-folder`.
    folder: String,
}

impl Phase {
    const ALL: [Phase; 8] = [
        Self::FreshMarks,
        Self::ReplayedMarks,
        Self::Exports,
        Self::FreshAsks,
        Self::ReplayedAsks,
        Self::AsksWithoutId,
        Self::LinkApplies,
        Self::FolderAnalyses,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::FreshMarks => "mark, fresh event id",
            Self::ReplayedMarks => "mark, replayed event id",
            Self::Exports => "export, no event id",
            Self::FreshAsks => "ask, fresh event id",
            Self::ReplayedAsks => "ask, replayed event id",
            Self::AsksWithoutId => "ask, no event id",
            Self::LinkApplies => "links/apply, no event id",
            Self::FolderAnalyses => "analyze-folder",
        }
    }

    /// The phase whose requests must have been sent before this one: replays
    /// need recorded event ids, and exports need queued drafts.
    fn prerequisite(self) -> Option<Phase> {
        match self {
            Self::ReplayedMarks | Self::Exports => Some(Self::FreshMarks),
            Self::ReplayedAsks => Some(Self::FreshAsks),
            _ => None,
        }
    }

    /// The `idempotency.reason` that every response of this phase must carry,
    /// or `None` when the response has no `idempotency` object. A fresh phase
    /// that gets `duplicate_event_id` shows that its ids collided with an
    /// earlier run.
    fn expected_reason(self) -> Option<&'static str> {
        match self {
            Self::FreshMarks | Self::FreshAsks => Some("accepted"),
            Self::ReplayedMarks | Self::ReplayedAsks => Some("duplicate_event_id"),
            Self::Exports | Self::AsksWithoutId | Self::LinkApplies => Some("not_provided"),
            Self::FolderAnalyses => None,
        }
    }

    fn request_count(self, args: &Args) -> usize {
        match self {
            Self::FolderAnalyses => args.folder_requests,
            _ => args.requests,
        }
    }

    fn request(self, target: &Target, index: usize) -> (&'static str, Value) {
        let run = &target.run;
        let draft_id = format!("bench-{run}-{index}");
        match self {
            Self::FreshMarks | Self::ReplayedMarks => (
                "/publish/mark-for-gom",
                json!({
                    "event_id": format!("bench-mark-{run}-{index}"),
                    "draft_id": draft_id,
                    "title": "Benchmark draft",
                    "prepared_content": "A short paragraph that stands in for a real note.",
                }),
            ),
            Self::Exports => (
                "/publish/export-for-gom",
                json!({"draft_id": draft_id, "format": "html"}),
            ),
            Self::FreshAsks | Self::ReplayedAsks => (
                "/ask",
                json!({
                    "event_id": format!("bench-ask-{run}-{index}"),
                    "query": format!("How do backlinks work? ({index})"),
                }),
            ),
            Self::AsksWithoutId => (
                "/ask",
                json!({"query": format!("How do backlinks work? ({index})")}),
            ),
            Self::LinkApplies => (
                "/links/apply",
                json!({
                    "source_note_id": format!("bench-note-{index}"),
                    "links": [
                        {"target_note_id": "bench-target-a", "confidence": 0.88},
                        {"target_note_id": "bench-target-b", "confidence": 0.82},
                        {"target_note_id": "bench-target-c", "confidence": 0.61},
                    ],
                }),
            ),
            Self::FolderAnalyses => (
                "/onboarding/analyze-folder",
                json!({"folder_path": target.folder}),
            ),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.requests == 0 || args.folder_requests == 0 || args.concurrency == 0 {
        bail!("--requests, --folder-requests and --concurrency must be at least 1");
    }
    let phases: Vec<Phase> = Phase::ALL
        .into_iter()
        .filter(|phase| args.phases.contains(phase))
        .collect();
    let folder = if phases.contains(&Phase::FolderAnalyses) {
        let absolute = std::fs::canonicalize(&args.folder).with_context(|| {
            format!(
                "--folder {} not found; pass a folder of Markdown notes",
                args.folder.display()
            )
        })?;
        absolute
            .to_str()
            .with_context(|| format!("--folder {} is not valid UTF-8", absolute.display()))?
            .to_owned()
    } else {
        String::new()
    };
    let started_at = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let target = Arc::new(Target {
        run: format!("{}-{started_at}", std::process::id()),
        folder,
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;

    println!(
        "{} requests per phase ({} for analyze-folder), {} in flight, against {}",
        args.requests, args.folder_requests, args.concurrency, args.base_url
    );
    let mut sent = Vec::new();
    for phase in phases {
        if let Some(prerequisite) = phase.prerequisite()
            && !sent.contains(&prerequisite)
        {
            println!("{:<28} sent first, untimed", prerequisite.name());
            measure(&client, &args, &target, prerequisite).await?;
            sent.push(prerequisite);
        }
        let report = measure(&client, &args, &target, phase).await?;
        sent.push(phase);
        println!(
            "{:<28} {:>8.0} requests/s   p50 {:>6.2} ms   p99 {:>6.2} ms",
            phase.name(),
            report.throughput,
            report.p50_ms,
            report.p99_ms
        );
    }
    Ok(())
}

struct Report {
    throughput: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn measure(
    client: &reqwest::Client,
    args: &Args,
    target: &Arc<Target>,
    phase: Phase,
) -> anyhow::Result<Report> {
    let total = phase.request_count(args);
    let next_index = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let client = client.clone();
        let base_url = args.base_url.clone();
        let target = target.clone();
        let next_index = next_index.clone();
        workers.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let index = next_index.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= total {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let (path, body) = phase.request(&target, index);
                let sent = Instant::now();
                let response = client
                    .post(format!("{base_url}{path}"))
                    .json(&body)
                    .send()
                    .await
                    .with_context(|| format!("POST {path} failed"))?;
                let status = response.status();
                let text = response.text().await?;
                let elapsed = sent.elapsed();
                if !status.is_success() {
                    bail!("POST {path} returned {status}: {text}");
                }
                check_reason(phase, path, &text)?;
                latencies.push(elapsed);
            }
        });
    }

    let mut latencies = Vec::with_capacity(total);
    while let Some(result) = workers.join_next().await {
        latencies.extend(result.context("benchmark worker panicked")??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let percentile = |fraction: f64| {
        let index = ((latencies.len() as f64 - 1.0) * fraction).round() as usize;
        latencies[index].as_secs_f64() * 1000.0
    };
    Ok(Report {
        throughput: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
    })
}

/// Fails when a response's `idempotency.reason` is not the one the phase
/// measures, for example a fresh request that the ledger served as a replay.
fn check_reason(phase: Phase, path: &str, text: &str) -> anyhow::Result<()> {
    let Some(expected) = phase.expected_reason() else {
        return Ok(());
    };
    let body: Value = serde_json::from_str(text)
        .with_context(|| format!("POST {path} returned invalid JSON: {text}"))?;
    let reason = body.pointer("/idempotency/reason").and_then(Value::as_str);
    if reason != Some(expected) {
        bail!("POST {path} returned idempotency reason {reason:?}, expected {expected:?}: {text}");
    }
    Ok(())
}
