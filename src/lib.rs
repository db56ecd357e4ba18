//! mind-lite: a local HTTP daemon for a personal knowledge base.
//!
//! The binary is a thin wrapper around [`Server`]; tests start the same server
//! on a free loopback port over a temporary database.

pub mod config;
pub mod db;
pub mod error;
pub mod fields;
pub mod http;
pub mod idempotency;
pub mod publish;
pub mod rules;
pub mod runs;
pub mod telemetry;
pub mod time;
pub mod v1_json;

use std::{future::Future, net::SocketAddr};

use anyhow::Context;
use poem::{
    Server as PoemServer,
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
};

pub use config::Settings;
pub use db::Database;

/// A daemon whose database is open and migrated and whose socket is bound.
pub struct Server {
    acceptor: TcpAcceptor,
    local_addr: SocketAddr,
    db: Database,
    settings: Settings,
}

impl Server {
    /// Binds the listening socket, then opens and migrates the database. The
    /// socket comes first so that a port in use creates no database file.
    pub async fn bind(mut settings: Settings) -> anyhow::Result<Self> {
        settings.vault_root = resolve_vault_root(settings.vault_root.take())?;
        let acceptor = TcpListener::bind(settings.bind.to_string())
            .into_acceptor()
            .await
            .with_context(|| format!("failed to listen on {}", settings.bind))?;
        let local_addr = acceptor
            .local_addr()
            .first()
            .and_then(|address| address.as_socket_addr().copied())
            .context("listener has no socket address")?;
        let db = Database::connect(&settings.database_url).await?;
        Ok(Self {
            acceptor,
            local_addr,
            db,
            settings,
        })
    }

    /// Returns the address actually bound, which differs from the setting for
    /// port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Serves until `shutdown` completes, then stops accepting connections,
    /// lets requests in flight finish (up to the shutdown timeout) and closes
    /// the database.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let schema_version = self.db.schema_version().await?;
        if let Some(vault_root) = &self.settings.vault_root {
            tracing::info!(vault_root = %vault_root.display(), "folder analysis is limited to the vault root");
        }
        tracing::info!(
            address = %self.local_addr,
            database = %self.db.url,
            schema_version,
            "mind-lite listening on http://{} (database {}, schema version {schema_version})",
            self.local_addr,
            self.db.url,
        );

        let app = http::app(&self.db, &self.settings);
        let result = PoemServer::new_with_acceptor(self.acceptor)
            .idle_timeout(self.settings.idle_timeout())
            .run_with_graceful_shutdown(app, shutdown, Some(self.settings.shutdown_timeout()))
            .await;

        self.db.close().await;
        tracing::info!("mind-lite stopped");
        result.context("HTTP server failed")
    }
}

/// Checks `MIND_LITE_VAULT_ROOT` at startup and returns it canonical, so
/// that a typo stops startup instead of refusing every analysis. An empty path
/// (possible through [`Settings`] built in code) means no root.
fn resolve_vault_root(
    vault_root: Option<std::path::PathBuf>,
) -> anyhow::Result<Option<std::path::PathBuf>> {
    let Some(vault_root) = vault_root.filter(|path| !path.as_os_str().is_empty()) else {
        return Ok(None);
    };
    let canonical = std::fs::canonicalize(&vault_root).with_context(|| {
        format!(
            "MIND_LITE_VAULT_ROOT {} cannot be resolved; set it to an existing folder or unset it",
            vault_root.display()
        )
    })?;
    anyhow::ensure!(
        canonical.is_dir(),
        "MIND_LITE_VAULT_ROOT {} is not a folder; set it to an existing folder or unset it",
        vault_root.display()
    );
    Ok(Some(canonical))
}
