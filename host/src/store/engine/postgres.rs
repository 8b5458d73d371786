//! The PostgreSQL engine: rust-postgres' async client, its connection driven on a thread of its
//! own, each call waited for where it is made.
//!
//! The store's calls are synchronous (SQLite's are), and some are made from inside the tokio
//! runtime that serves the console. rust-postgres' blocking wrapper runs a runtime of its own
//! and refuses to start inside another; the async client does not need one to be *called*: a
//! query is a message to the connection task and a reply on a channel, so it is waited for
//! with `futures_executor::block_on` anywhere, while only the connection task needs tokio.
//!
//! A connection that drops (the server restarted) is made again at the next call outside a
//! transaction; the call that found it gone fails, so its caller retries as after any error.
//!
//! TLS is rustls, as everywhere here, and always verifies the server's certificate: against
//! the CAs of `sslrootcert=FILE` in the address (libpq's name), or the system's. `sslmode` is
//! libpq's: `disable`, `prefer` (the default: TLS when the server offers it), `require`;
//! `verify-ca` and `verify-full` mean `require` (verification is never off).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::BytesMut;
use futures_executor::block_on;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Config, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{Row, Value};

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many prepared statements are kept per connection.
const STATEMENTS_KEPT: usize = 256;

/// An open PostgreSQL database.
pub(crate) struct Pg {
    config: Config,
    tls: MakeRustlsConnect,
    /// Where it is, for messages (the URL without its password).
    pub(crate) shown: String,
    client: RefCell<Client>,
    /// Prepared statements by their text (a statement belongs to its connection).
    statements: RefCell<HashMap<String, Statement>>,
}

/// A transaction on a [`Pg`]: `BEGIN` sent, `COMMIT` on [`PgTx::commit`], `ROLLBACK` if dropped.
pub(crate) struct PgTx<'a> {
    pg: &'a Pg,
    open: bool,
}

/// A client error with what the server said (rust-postgres shows only "db error").
fn said(e: tokio_postgres::Error) -> anyhow::Error {
    match e.as_db_error() {
        Some(db) => {
            let detail = db.detail().map(|d| format!(" ({d})")).unwrap_or_default();
            anyhow::anyhow!(
                "PostgreSQL: {}{detail} [{}]",
                db.message(),
                db.code().code()
            )
        }
        None => {
            // The cause says what went wrong ("error performing TLS handshake" does not).
            let mut text = format!("PostgreSQL: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            anyhow::anyhow!(text)
        }
    }
}

/// `url` without its password, for logs and messages.
pub(crate) fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

fn connect_client(config: &Config, tls: &MakeRustlsConnect, shown: &str) -> Result<Client> {
    let (sender, receiver) = std::sync::mpsc::channel();
    let (config, tls) = (config.clone(), tls.clone());
    let name = shown.to_string();
    std::thread::Builder::new()
        .name("postgres".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = sender.send(Err(anyhow::anyhow!("no runtime for PostgreSQL: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                match config.connect(tls).await {
                    Ok((client, connection)) => {
                        let _ = sender.send(Ok(client));
                        // Runs until the client is dropped or the server goes away.
                        if let Err(e) = connection.await {
                            tracing::warn!("the connection to PostgreSQL {name} ended: {e}");
                        }
                    }
                    Err(e) => {
                        let _ = sender.send(Err(said(e)));
                    }
                }
            });
        })
        .context("cannot start the PostgreSQL connection's thread")?;
    receiver
        .recv()
        .context("the PostgreSQL connection's thread ended")?
        .with_context(|| format!("cannot connect to PostgreSQL {shown}"))
}

impl Pg {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`, with
    /// `?sslmode=require&sslrootcert=FILE` for TLS under a private CA).
    pub(crate) fn connect(url: &str) -> Result<Pg> {
        let shown = shown(url);
        let (url, ca) = tls_settings(url).with_context(|| format!("{shown}: a bad address"))?;
        let mut config: Config = url
            .parse()
            .with_context(|| format!("{shown} is not a PostgreSQL address"))?;
        let tls = crate::tls::client_config(ca.as_deref())
            .map(MakeRustlsConnect::new)
            .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("vigilo");
        }
        let client = connect_client(&config, &tls, &shown)?;
        Ok(Pg {
            config,
            tls,
            shown,
            client: RefCell::new(client),
            statements: RefCell::new(HashMap::new()),
        })
    }

    /// Connects again if the connection was lost.
    fn revive(&self) -> Result<()> {
        if self.client.borrow().is_closed() {
            tracing::info!("connecting to PostgreSQL {} again", self.shown);
            let client = connect_client(&self.config, &self.tls, &self.shown)?;
            *self.client.borrow_mut() = client;
            self.statements.borrow_mut().clear();
        }
        Ok(())
    }

    fn statement(&self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let client = self.client.borrow();
        let statement = block_on(client.prepare(&dollars(sql))).map_err(said)?;
        let mut statements = self.statements.borrow_mut();
        // Listings are built from their filters: the texts are many, the cache is bounded.
        if statements.len() >= STATEMENTS_KEPT {
            statements.clear();
        }
        statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    fn run_rows(&self, sql: &str, args: &[Value]) -> Result<Vec<Row>> {
        let statement = self.statement(sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        let client = self.client.borrow();
        let rows = block_on(client.query(&statement, &params)).map_err(said)?;
        rows.iter().map(row).collect()
    }

    fn run_exec(&self, sql: &str, args: &[Value]) -> Result<u64> {
        let statement = self.statement(sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        let client = self.client.borrow();
        block_on(client.execute(&statement, &params)).map_err(said)
    }

    /// Runs statements separated by `;`, without values (a migration).
    pub(crate) fn batch(&self, sql: &str) -> Result<()> {
        let client = self.client.borrow();
        block_on(client.batch_execute(sql)).map_err(said)
    }

    pub(super) fn rows(&self, sql: &str, args: &[Value]) -> Result<Vec<Row>> {
        self.revive()?;
        self.run_rows(sql, args)
    }

    pub(super) fn exec(&self, sql: &str, args: &[Value]) -> Result<u64> {
        self.revive()?;
        self.run_exec(sql, args)
    }

    pub(crate) fn transaction(&mut self) -> Result<PgTx<'_>> {
        self.revive()?;
        self.batch("BEGIN")?;
        Ok(PgTx {
            pg: self,
            open: true,
        })
    }
}

impl PgTx<'_> {
    pub(super) fn rows(&self, sql: &str, args: &[Value]) -> Result<Vec<Row>> {
        self.pg.run_rows(sql, args)
    }

    pub(super) fn exec(&self, sql: &str, args: &[Value]) -> Result<u64> {
        self.pg.run_exec(sql, args)
    }

    /// Runs statements without values inside the transaction (a migration).
    pub(crate) fn batch(&self, sql: &str) -> Result<()> {
        self.pg.batch(sql)
    }

    pub(super) fn commit(mut self) -> Result<()> {
        self.open = false;
        self.pg.batch("COMMIT")
    }
}

impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        if self.open && !self.pg.client.borrow().is_closed() {
            // Nothing to tell anyone if this fails: the server ends a broken connection's
            // transaction itself.
            let _ = self.pg.batch("ROLLBACK");
        }
    }
}

/// `url` without what rust-postgres does not read, and the CA file it names: `sslrootcert`
/// taken out, libpq's `verify-ca` and `verify-full` said as `require`.
fn tls_settings(url: &str) -> Result<(String, Option<std::path::PathBuf>)> {
    let mut parsed = url::Url::parse(url)?;
    let mut ca = None;
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(k, v)| match (&*k, &*v) {
            ("sslrootcert", _) => {
                ca = Some(std::path::PathBuf::from(&*v));
                None
            }
            ("sslmode", "verify-ca" | "verify-full") => Some((k.into(), "require".into())),
            _ => Some((k.into(), v.into())),
        })
        .collect();
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok((parsed.to_string(), ca))
}

/// `sql` with SQLite's `?N` placeholders as PostgreSQL's `$N` (outside quoted text).
fn dollars(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => quoted = !quoted,
            '?' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('$');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// A row as [`Value`]s, by each column's type.
fn row(r: &tokio_postgres::Row) -> Result<Row> {
    let mut values = Vec::with_capacity(r.len());
    for (i, column) in r.columns().iter().enumerate() {
        let ty = column.type_();
        let value = match *ty {
            Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Value::Int),
            Type::INT4 => r
                .try_get::<_, Option<i32>>(i)?
                .map(|v| Value::Int(v.into())),
            Type::INT2 => r
                .try_get::<_, Option<i16>>(i)?
                .map(|v| Value::Int(v.into())),
            Type::BOOL => r
                .try_get::<_, Option<bool>>(i)?
                .map(|v| Value::Int(v.into())),
            Type::FLOAT8 => r.try_get::<_, Option<f64>>(i)?.map(Value::Real),
            Type::FLOAT4 => r
                .try_get::<_, Option<f32>>(i)?
                .map(|v| Value::Real(v.into())),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                r.try_get::<_, Option<String>>(i)?.map(Value::Text)
            }
            Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Bytes),
            _ => anyhow::bail!(
                "column {} has type {ty}, which the store does not read",
                column.name()
            ),
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(Row(values))
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for Value {
    /// Binds the value as the type the server expects there, when it fits.
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let narrow = |i: i64| -> BoxError { format!("{i} does not fit a {ty}").into() };
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Int(i), &Type::INT4) => {
                i32::try_from(*i).map_err(|_| narrow(*i))?.to_sql(ty, out)
            }
            (Value::Int(i), &Type::INT2) => {
                i16::try_from(*i).map_err(|_| narrow(*i))?.to_sql(ty, out)
            }
            (Value::Int(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Int(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Real(f), &Type::FLOAT8) => f.to_sql(ty, out),
            (Value::Text(s), _) => s.as_str().to_sql(ty, out),
            (Value::Bytes(b), _) => b.as_slice().to_sql(ty, out),
            (v, ty) => Err(format!("{v:?} cannot be bound as a {ty}").into()),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT8
                | Type::INT4
                | Type::INT2
                | Type::BOOL
                | Type::FLOAT8
                | Type::TEXT
                | Type::VARCHAR
                | Type::BPCHAR
                | Type::NAME
                | Type::BYTEA
        )
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_outside_quoted_text() {
        assert_eq!(
            dollars("SELECT ?1, '?2' FROM t WHERE a = ?12 AND b IS ?"),
            "SELECT $1, '?2' FROM t WHERE a = $12 AND b IS ?"
        );
    }

    #[test]
    fn libpq_tls_settings_are_read_and_the_rest_left_to_rust_postgres() {
        let (url, ca) = tls_settings(
            "postgres://hub@db/vigilo?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x",
        )
        .expect("parsed");
        assert_eq!(
            url,
            "postgres://hub@db/vigilo?sslmode=require&application_name=x"
        );
        assert_eq!(ca.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
        let (url, ca) = tls_settings("postgres://hub@db/vigilo").expect("parsed");
        assert_eq!((url.as_str(), ca), ("postgres://hub@db/vigilo", None));
    }

    #[test]
    fn a_password_is_not_shown() {
        assert_eq!(
            shown("postgres://hub:s3cret@db:5432/vigilo"),
            "postgres://hub:***@db:5432/vigilo"
        );
        assert_eq!(
            shown("postgres:///vigilo?host=/tmp"),
            "postgres:///vigilo?host=/tmp"
        );
    }
}
