//! Measures request throughput and latency of a running daemon: marks with
//! fresh event ids (each a durable write), replays of those ids, and exports
//! without an event id.
//!
//! Usage: `cargo run --release --example bench_publish -- --base-url
//! http://127.0.0.1:8000 --requests 2000 --concurrency 16`. Point it only at a
//! throwaway database: it queues `--requests` drafts.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser, Debug)]
struct Args {
    /// Base URL of the daemon.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    base_url: String,
    /// Requests per phase.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

/// One measured phase, which decides the request sent for each index.
#[derive(Clone, Copy)]
enum Phase {
    FreshMarks,
    ReplayedMarks,
    Exports,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Self::FreshMarks => "mark, fresh event id",
            Self::ReplayedMarks => "mark, replayed event id",
            Self::Exports => "export, no event id",
        }
    }

    fn request(self, run: &str, index: usize) -> (&'static str, Value) {
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
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.requests == 0 || args.concurrency == 0 {
        bail!("--requests and --concurrency must be at least 1");
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    // A run id keeps event ids and draft ids apart from earlier runs.
    let run = format!("{}", std::process::id());

    println!(
        "{} requests per phase, {} in flight, against {}",
        args.requests, args.concurrency, args.base_url
    );
    for phase in [Phase::FreshMarks, Phase::ReplayedMarks, Phase::Exports] {
        let report = measure(&client, &args, &run, phase).await?;
        println!(
            "{:<26} {:>8.0} requests/s   p50 {:>6.2} ms   p99 {:>6.2} ms",
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
    run: &str,
    phase: Phase,
) -> anyhow::Result<Report> {
    let next_index = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let client = client.clone();
        let base_url = args.base_url.clone();
        let run = run.to_owned();
        let next_index = next_index.clone();
        let total = args.requests;
        workers.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let index = next_index.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= total {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let (path, body) = phase.request(&run, index);
                let sent = Instant::now();
                let response = client
                    .post(format!("{base_url}{path}"))
                    .json(&body)
                    .send()
                    .await
                    .with_context(|| format!("POST {path} failed"))?;
                let status = response.status();
                let text = response.text().await?;
                if !status.is_success() {
                    bail!("POST {path} returned {status}: {text}");
                }
                latencies.push(sent.elapsed());
            }
        });
    }

    let mut latencies = Vec::with_capacity(args.requests);
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
