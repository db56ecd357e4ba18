use clap::Parser;
use mind_lite::{
    Server,
    config::{Cli, Command},
    db::Database,
    http, telemetry,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A missing .env is normal, but a malformed one would silently drop the
    // settings the user wrote there, so it stops startup.
    if let Err(error) = dotenvy::dotenv()
        && !error.not_found()
    {
        anyhow::bail!("failed to load .env: {error}; fix the line or remove the file");
    }
    let cli = Cli::parse();

    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => {
            // The spec does not depend on stored data, so an in-memory
            // database is enough.
            let db = Database::connect("sqlite::memory:").await?;
            println!("{}", http::spec_json(&db));
            Ok(())
        }
        Command::Serve => {
            telemetry::init(cli.settings.log_format);
            let server = Server::bind(cli.settings).await?;
            server.run_until(shutdown_signal()).await
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the daemon");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => tracing::info!("received SIGINT, shutting down"),
            _ = terminate.recv() => tracing::info!("received SIGTERM, shutting down"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
        tracing::info!("received Ctrl-C, shutting down");
    }
}
