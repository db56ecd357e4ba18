//! Logging setup: `tracing` with an `EnvFilter` from `RUST_LOG` (default
//! `info`, with poem's server lines at `warn`), as text or JSON lines on
//! standard error.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Call once, at startup.
pub fn init(format: LogFormat) {
    // poem's own lifecycle lines repeat the daemon's startup and shutdown
    // lines, so they are hidden unless RUST_LOG enables them.
    let default_filter = "info,poem::server=warn";
    let (filter, invalid_filter) = match std::env::var("RUST_LOG") {
        Err(_) => (EnvFilter::new(default_filter), None),
        Ok(value) => match EnvFilter::try_new(&value) {
            Ok(filter) => (filter, None),
            Err(error) => (EnvFilter::new(default_filter), Some((value, error))),
        },
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only help on a terminal; in a log file they are noise.
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    if let Some((value, error)) = invalid_filter {
        tracing::warn!(rust_log = value, %error, "invalid RUST_LOG, logging at info instead");
    }
}
