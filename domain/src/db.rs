//! The database: SQLite in embedded mode, PostgreSQL in production, chosen by URL at runtime.
//! Queries use sqlx's `Any` driver with `$n` placeholders, which both backends accept, so one
//! query serves both; only the DDL differs (`migrations/sqlite`, `migrations/postgres`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

impl DatabaseKind {
    /// The backend a connection URL selects, or None for an unsupported scheme.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    kind: DatabaseKind,
}

impl Database {
    /// Connects and checks the connection works (so a wrong URL fails at start, not later).
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let kind = DatabaseKind::from_url(url).ok_or_else(|| {
            sqlx::Error::Configuration("expected a sqlite: or postgres:// URL".into())
        })?;
        install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(match kind {
                // One writer at a time anyway; a few readers beside it.
                DatabaseKind::Sqlite => 8,
                DatabaseKind::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if kind == DatabaseKind::Sqlite {
                        // Readers do not block the writer; waits instead of SQLITE_BUSY errors.
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        pool.acquire().await?;
        Ok(Self { pool, kind })
    }

    /// Applies the migrations of this backend that are not applied yet.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self.kind {
            DatabaseKind::Sqlite => sqlx::migrate!("../migrations/sqlite").run(&self.pool).await,
            DatabaseKind::Postgres => {
                sqlx::migrate!("../migrations/postgres")
                    .run(&self.pool)
                    .await
            }
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a transaction that writes. On SQLite it takes the write lock at once: a deferred
    /// transaction that reads first fails at once with `SQLITE_BUSY` when another writer
    /// commits before its first write, whatever the busy timeout, where this one waits.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.kind {
            DatabaseKind::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            DatabaseKind::Postgres => self.pool.begin().await,
        }
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
