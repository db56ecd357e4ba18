//! Command-line interface and configuration. Every flag falls back to an
//! environment variable, then to `.env`, then to its default.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};

/// Local HTTP daemon for a personal knowledge base: a publish queue with
/// idempotent replay, stored in SQLite.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "mind-lite",
    version,
    about,
    after_help = "Logging: RUST_LOG sets the log filter (default info), for example \
                  RUST_LOG=mind_lite=debug. Settings are also read from a .env file \
                  in the working directory."
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Serve the HTTP API (the default when no subcommand is given).
    Serve,
    /// Print the OpenAPI spec as JSON to standard output and exit.
    Openapi,
}

/// Settings of the daemon.
#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    /// SQLite database URL; `mode=rwc` creates the file on first start.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://mind-lite.db?mode=rwc",
        global = true
    )]
    pub database_url: String,

    /// Address to listen on; port 0 picks a free port (the startup log line
    /// shows the bound address).
    #[arg(
        long,
        env = "MIND_LITE_BIND",
        default_value = "127.0.0.1:8000",
        global = true
    )]
    pub bind: SocketAddr,

    /// Largest accepted request body, in bytes.
    #[arg(
        long,
        env = "MIND_LITE_MAX_BODY_BYTES",
        default_value_t = 1_048_576,
        value_parser = parse_positive_usize,
        global = true
    )]
    pub max_body_bytes: usize,

    /// Extra host names accepted in the Host header, comma-separated, besides
    /// localhost, 127.0.0.1 and [::1].
    #[arg(
        long,
        env = "MIND_LITE_ALLOWED_HOSTS",
        value_delimiter = ',',
        global = true
    )]
    pub allowed_hosts: Vec<String>,

    /// Seconds an idle keep-alive connection stays open.
    #[arg(
        long,
        env = "MIND_LITE_IDLE_TIMEOUT_SECS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub idle_timeout_secs: u64,

    /// Seconds allowed for receiving a whole request body.
    #[arg(
        long,
        env = "MIND_LITE_BODY_TIMEOUT_SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub body_timeout_secs: u64,

    /// Seconds that shutdown waits for requests in flight before closing them.
    #[arg(
        long,
        env = "MIND_LITE_SHUTDOWN_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub shutdown_timeout_secs: u64,

    /// Folder that every analysed folder must be inside; unset allows any
    /// folder the daemon can read.
    #[arg(long, env = "MIND_LITE_VAULT_ROOT", global = true)]
    pub vault_root: Option<PathBuf>,

    /// Log line format.
    #[arg(long, env = "MIND_LITE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// Format of log lines on standard error.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Settings {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    /// Settings for tests and embedding: the given database and a free
    /// loopback port. Everything else comes from the environment or, where it
    /// sets nothing, from the defaults.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        let mut settings = Cli::parse_from(["mind-lite"]).settings;
        settings.database_url = database_url.into();
        settings.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        settings
    }
}

/// Parses a byte count that must be at least 1.
fn parse_positive_usize(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(value) => Ok(value),
        Err(error) => Err(format!("not a byte count: {error}")),
    }
}
