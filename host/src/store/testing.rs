//! Fresh stores on each engine, for the tests that must hold on both: SQLite always, and
//! PostgreSQL when `VIGILO_TEST_POSTGRES` names a server the tests may create databases on
//! (`scripts/test.sh` starts a throwaway one with `scripts/postgres.sh`).

use super::Store;

/// Where a test's stores are made.
pub(crate) enum TestEngine {
    /// SQLite files in a temporary folder.
    Sqlite(tempfile::TempDir),
    /// Databases on a PostgreSQL server: its address, and this engine's prefix for names.
    Postgres { admin: String, prefix: String },
}

/// The engines a test runs on.
pub(crate) fn engines() -> Vec<TestEngine> {
    let mut engines = vec![TestEngine::Sqlite(tempfile::tempdir().expect("tempdir"))];
    match std::env::var("VIGILO_TEST_POSTGRES") {
        Ok(admin) if !admin.is_empty() => {
            let mut id = [0u8; 6];
            getrandom::fill(&mut id).expect("random");
            engines.push(TestEngine::Postgres {
                admin,
                prefix: format!("t{}", crate::hex::encode(&id)),
            });
        }
        _ => eprintln!("VIGILO_TEST_POSTGRES is not set: this test ran on SQLite only"),
    }
    engines
}

impl TestEngine {
    /// The store called `name`: made on first use, the same one after (a reopen).
    pub(crate) fn open(&self, name: &str) -> Store {
        match self {
            TestEngine::Sqlite(dir) => Store::open(&dir.path().join(name)).expect("open"),
            TestEngine::Postgres { admin, prefix } => {
                let url = self.url(name).expect("a PostgreSQL engine");
                let server = super::engine::postgres::Pg::connect(admin).expect("the server");
                let db = format!("{prefix}_{name}");
                if let Err(e) = server.batch(&format!("CREATE DATABASE \"{db}\"")) {
                    assert!(format!("{e:#}").contains("already exists"), "{e:#}");
                }
                Store::open_postgres(&url).expect("open")
            }
        }
    }

    /// The PostgreSQL address of store `name` (none on SQLite).
    pub(crate) fn url(&self, name: &str) -> Option<String> {
        match self {
            TestEngine::Sqlite(_) => None,
            TestEngine::Postgres { admin, prefix } => {
                let mut url = url::Url::parse(admin).expect("VIGILO_TEST_POSTGRES: a URL");
                url.set_path(&format!("/{prefix}_{name}"));
                Some(url.to_string())
            }
        }
    }
}
