//! Test backends: every store test runs against SQLite (a temp file) and,
//! when `IVR_TEST_POSTGRES_URL` is set (by `scripts/with-test-services.sh`),
//! against a fresh PostgreSQL database. Under CI a missing URL is a failure.
#![allow(dead_code)] // reason: each test binary uses a subset
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::sync::atomic::{AtomicU32, Ordering};

use ivr_integrations::db::Db;
use sqlx::Connection;

/// A database for one test; the temp dir lives as long as this.
pub(crate) struct TestDb {
    /// `sqlite` or `postgres`.
    pub(crate) label: &'static str,
    /// URL to connect with.
    pub(crate) url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub(crate) async fn connect(&self) -> Db {
        Db::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("{}: connect: {e}", self.label))
    }
}

/// The PostgreSQL admin URL, or `None` (skip, printed) outside CI.
pub(crate) fn postgres_url() -> Option<String> {
    match std::env::var("IVR_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("IVR_TEST_POSTGRES_URL is not set under CI: run the suite through scripts/with-test-services.sh");
            }
            eprintln!("SKIP postgres backend: IVR_TEST_POSTGRES_URL not set (run through scripts/with-test-services.sh)");
            None
        }
    }
}

static N: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty PostgreSQL database named after the test.
pub(crate) async fn fresh_postgres(admin_url: &str, name: &str) -> String {
    let db = format!(
        "t_{}_{}_{}",
        name,
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(admin_url);
    format!("{base}/{db}")
}

/// SQLite always, PostgreSQL when available.
pub(crate) async fn backends(name: &str) -> Vec<TestDb> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("var").join("ivr.db").display());
    let mut v = vec![TestDb {
        label: "sqlite",
        url,
        _dir: Some(dir),
    }];
    if let Some(admin) = postgres_url() {
        v.push(TestDb {
            label: "postgres",
            url: fresh_postgres(&admin, name).await,
            _dir: None,
        });
    }
    v
}
