//! SQLite connection setup, migrations and the two connection pools.
//!
//! Writes go through a pool of exactly one connection so that write transactions
//! queue inside the process instead of failing with `SQLITE_BUSY`. Reads use a
//! separate pool and, in WAL mode, see the last committed state.

use std::{str::FromStr, time::Duration};

use anyhow::Context;

use crate::error::is_contention;
use sqlx::{
    SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

/// How long a statement waits for a lock held by another process before it
/// fails with `SQLITE_BUSY` (the request then gets 503).
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long counting a replay waits for such a lock. The replay is returned
/// whether or not it is counted, so the count gives up sooner than a write.
pub(crate) const COUNT_BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// How long a request waits for a pooled connection before it gets 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

const READ_CONNECTIONS: u32 = 4;

/// The writer and reader pools over one SQLite database.
#[derive(Clone, Debug)]
pub struct Database {
    /// One connection: every write transaction runs here, one at a time.
    pub writer: SqlitePool,
    /// Several read-only connections for listings, metrics and readiness.
    pub reader: SqlitePool,
    /// The database location as configured, for logs.
    pub url: String,
}

/// How often startup tries to open the database or apply migrations before
/// giving up.
const STARTUP_ATTEMPTS: u32 = 5;

/// Runs one startup step, retrying it while `retryable` accepts its error.
///
/// Two daemons that first start on a new file at the same moment collide
/// twice. Switching the file to WAL needs an exclusive lock, and SQLite can
/// report `database is locked` for it at once instead of waiting. sqlx's
/// SQLite migrator takes no lock, so one of them also fails with "table
/// already exists". A later attempt finds the file switched and migrated.
async fn retry_startup_step<T, E, F, Fut>(
    step: &str,
    retryable: impl Fn(&E) -> bool,
    mut run: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match run().await {
            Ok(value) => return Ok(value),
            Err(error) if attempt < STARTUP_ATTEMPTS && retryable(&error) => {
                tracing::warn!(step, attempt, %error, "startup step failed, retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Opens a pool, retrying while another process holds a lock on the file.
async fn open_pool(
    step: &str,
    pool_options: SqlitePoolOptions,
    options: SqliteConnectOptions,
) -> Result<SqlitePool, sqlx::Error> {
    retry_startup_step(step, is_contention, || {
        pool_options.clone().connect_with(options.clone())
    })
    .await
}

/// Applies pending migrations, retrying after any failure (see
/// [`retry_startup_step`]).
async fn migrate(writer: &SqlitePool) -> Result<(), sqlx::migrate::MigrateError> {
    retry_startup_step(
        "migrate",
        |_| true,
        || sqlx::migrate!("./migrations").run(writer),
    )
    .await
}

impl Database {
    /// Opens (creating if needed) the database at `url` and runs pending
    /// migrations.
    ///
    /// WAL mode with `synchronous = FULL` makes every committed transaction
    /// durable: it survives `kill -9` and, because the WAL is synced on each
    /// commit, a power loss.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        if url.trim().is_empty() {
            anyhow::bail!("the database URL is empty; set DATABASE_URL or --database-url");
        }
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("invalid database URL {url:?}"))?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);

        let writer_options = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT);
        let writer = open_pool("open the writer", writer_options, options.clone())
            .await
            .with_context(|| format!("failed to open database {url}"))?;

        migrate(&writer)
            .await
            .with_context(|| format!("failed to migrate database {url}"))?;

        let reader_options = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT);
        let reader = open_pool("open the readers", reader_options, options.read_only(true))
            .await
            .with_context(|| format!("failed to open database {url} for reading"))?;

        Ok(Self {
            writer,
            reader,
            url: url.to_owned(),
        })
    }

    /// Returns the version of the newest applied migration, or 0 for none.
    pub async fn schema_version(&self) -> Result<i64, sqlx::Error> {
        let version = sqlx::query_scalar!(
            r#"select max(version) as "version: i64" from _sqlx_migrations where success = true"#
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(version.unwrap_or(0))
    }

    /// Closes both pools, waiting for connections in use to be returned.
    /// The write-ahead log is first copied into the database file, so that
    /// after a clean stop the one file holds every committed write.
    pub async fn close(&self) {
        self.reader.close().await;
        // The first column is 1 when another connection kept the checkpoint
        // from finishing; SQLite reports that as a result, not an error.
        let checkpoint: Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&self.writer)
                .await;
        match checkpoint {
            Ok((0, _, _)) => {}
            Ok((_, wal_frames, copied_frames)) => tracing::warn!(
                wal_frames,
                copied_frames,
                "WAL checkpoint at shutdown was blocked by another connection; the -wal file keeps the newest writes"
            ),
            Err(error) => tracing::warn!(
                %error,
                "WAL checkpoint at shutdown failed; the -wal file keeps the newest writes"
            ),
        }
        self.writer.close().await;
    }
}
