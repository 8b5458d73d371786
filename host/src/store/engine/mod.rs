//! The two engines the store runs on — SQLite in the data folder, PostgreSQL for a large hub —
//! behind one small interface, so every query of the store is written once.
//!
//! Queries are written in the SQL both engines speak (`INSERT … ON CONFLICT`, `RETURNING`,
//! `IS NOT DISTINCT FROM`), with `?N` placeholders; the PostgreSQL engine spells them `$N`.
//! The few places the dialects truly differ ask [`Sql::engine`]. Values cross as [`Value`]s
//! (what SQLite has: null, integer, real, text, bytes) and rows come back as [`Row`]s, so
//! a caller never sees an engine's own types. Calls are synchronous, as the store's are: the
//! PostgreSQL connection is driven on a thread of its own (see `postgres`).

use anyhow::Result;

pub(crate) mod postgres;
pub(crate) mod sqlite;

/// Which engine runs a query, for the few places the dialects differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    Sqlite,
    Postgres,
}

/// A value bound to a query or read from a row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

/// What can be bound to a query (see [`args!`](crate::store::engine::args)).
pub(crate) trait IntoValue {
    /// The value bound.
    fn value(&self) -> Value;
}

impl<T: IntoValue + ?Sized> IntoValue for &T {
    fn value(&self) -> Value {
        (**self).value()
    }
}

impl<T: IntoValue> IntoValue for Option<T> {
    fn value(&self) -> Value {
        self.as_ref().map_or(Value::Null, IntoValue::value)
    }
}

impl IntoValue for str {
    fn value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl IntoValue for String {
    fn value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl IntoValue for std::borrow::Cow<'_, str> {
    fn value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl IntoValue for [u8] {
    fn value(&self) -> Value {
        Value::Bytes(self.to_vec())
    }
}

impl IntoValue for Vec<u8> {
    fn value(&self) -> Value {
        Value::Bytes(self.clone())
    }
}

impl IntoValue for bool {
    fn value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

macro_rules! int_values {
    ($($t:ty),*) => {$(
        impl IntoValue for $t {
            fn value(&self) -> Value {
                // Beyond i64 (a u64 byte count near 2^64) saturates: such a value means
                // "more than anything", which is what i64::MAX says in a query.
                Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_values!(i64, i32, u8, u32, u64, usize);

/// The values of a query's `?1, ?2, …`, in order: `args![a, &b, c.len()]`.
macro_rules! args {
    ($($x:expr),* $(,)?) => {
        &[$($crate::store::engine::IntoValue::value(&$x)),*][..]
    };
}
pub(crate) use args;

/// What can be read from a column.
pub(crate) trait FromValue: Sized {
    /// The column's value as `Self`, or what it was instead.
    fn from_value(v: &Value) -> Result<Self, String>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Result<i64, String> {
        match v {
            Value::Int(i) => Ok(*i),
            other => Err(format!("an integer, not {other:?}")),
        }
    }
}

macro_rules! narrow_ints {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: &Value) -> Result<$t, String> {
                let i = i64::from_value(v)?;
                <$t>::try_from(i).map_err(|_| format!("{i}, out of range for {}", stringify!($t)))
            }
        }
    )*};
}
narrow_ints!(u8, u32, u64, usize);

impl FromValue for bool {
    fn from_value(v: &Value) -> Result<bool, String> {
        Ok(i64::from_value(v)? != 0)
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Result<String, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            other => Err(format!("text, not {other:?}")),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Result<Vec<u8>, String> {
        match v {
            Value::Bytes(b) => Ok(b.clone()),
            // SQLite keeps what it was given: bytes written as text read back as text.
            Value::Text(s) => Ok(s.as_bytes().to_vec()),
            other => Err(format!("bytes, not {other:?}")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Result<Option<T>, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One row of a query's result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row(pub(crate) Vec<Value>);

impl Row {
    /// Column `i` (from 0) as `T`.
    pub(crate) fn get<T: FromValue>(&self, i: usize) -> Result<T> {
        let v = self
            .0
            .get(i)
            .ok_or_else(|| anyhow::anyhow!("the query has no column {i}"))?;
        T::from_value(v).map_err(|e| anyhow::anyhow!("column {i}: expected {e}"))
    }
}

/// What runs queries: an open database or one of its transactions, on either engine.
pub(crate) trait Sql {
    /// The engine, for the few places the dialects differ.
    fn engine(&self) -> Engine;

    /// Runs a query; its rows.
    fn rows(&self, sql: &str, args: &[Value]) -> Result<Vec<Row>>;

    /// Runs a statement; how many rows it changed.
    fn exec(&self, sql: &str, args: &[Value]) -> Result<u64>;

    /// Runs statements separated by `;`, without values (a migration).
    fn batch(&self, sql: &str) -> Result<()>;

    /// The first row of a query, if there is one.
    fn opt(&self, sql: &str, args: &[Value]) -> Result<Option<Row>> {
        Ok(self.rows(sql, args)?.into_iter().next())
    }

    /// The first row of a query that always returns one (a `count(*)`).
    fn one(&self, sql: &str, args: &[Value]) -> Result<Row> {
        self.opt(sql, args)?
            .ok_or_else(|| anyhow::anyhow!("the query returned no row"))
    }
}

/// An open database.
pub(crate) enum Db {
    Sqlite(rusqlite::Connection),
    /// Boxed: a PostgreSQL connection's settings are large, and a store is opened rarely.
    Postgres(Box<postgres::Pg>),
}

/// A transaction: committed by [`Tx::commit`], rolled back when dropped without.
pub(crate) enum Tx<'a> {
    Sqlite(rusqlite::Transaction<'a>),
    Postgres(postgres::PgTx<'a>),
}

impl Db {
    /// Starts a transaction. On SQLite it takes the write lock at once (`IMMEDIATE`): a read
    /// that later wants to write would otherwise lose its snapshot to another connection's
    /// write, and that error is not retried.
    pub(crate) fn transaction(&mut self) -> Result<Tx<'_>> {
        Ok(match self {
            Db::Sqlite(conn) => Tx::Sqlite(
                conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?,
            ),
            Db::Postgres(pg) => Tx::Postgres(pg.transaction()?),
        })
    }
}

impl Tx<'_> {
    /// Commits.
    pub(crate) fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => Ok(tx.commit()?),
            Tx::Postgres(tx) => tx.commit(),
        }
    }
}

impl Sql for Db {
    fn engine(&self) -> Engine {
        match self {
            Db::Sqlite(_) => Engine::Sqlite,
            Db::Postgres(_) => Engine::Postgres,
        }
    }

    fn rows(&self, sql: &str, args: &[Value]) -> Result<Vec<Row>> {
        match self {
            Db::Sqlite(conn) => sqlite::rows(conn, sql, args),
            Db::Postgres(pg) => pg.rows(sql, args),
        }
    }

    fn exec(&self, sql: &str, args: &[Value]) -> Result<u64> {
        match self {
            Db::Sqlite(conn) => sqlite::exec(conn, sql, args),
            Db::Postgres(pg) => pg.exec(sql, args),
        }
    }

    fn batch(&self, sql: &str) -> Result<()> {
        match self {
            Db::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Db::Postgres(pg) => pg.batch(sql),
        }
    }
}

impl Sql for Tx<'_> {
    fn engine(&self) -> Engine {
        match self {
            Tx::Sqlite(_) => Engine::Sqlite,
            Tx::Postgres(_) => Engine::Postgres,
        }
    }

    fn rows(&self, sql: &str, args: &[Value]) -> Result<Vec<Row>> {
        match self {
            Tx::Sqlite(tx) => sqlite::rows(tx, sql, args),
            Tx::Postgres(tx) => tx.rows(sql, args),
        }
    }

    fn exec(&self, sql: &str, args: &[Value]) -> Result<u64> {
        match self {
            Tx::Sqlite(tx) => sqlite::exec(tx, sql, args),
            Tx::Postgres(tx) => tx.exec(sql, args),
        }
    }

    fn batch(&self, sql: &str) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => Ok(tx.execute_batch(sql)?),
            Tx::Postgres(tx) => tx.batch(sql),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_bind_and_read_back_as_their_rust_types() {
        let a = args![1u8, "x", None::<String>, Some(3i64), true, usize::MAX];
        assert_eq!(
            a,
            [
                Value::Int(1),
                Value::Text("x".into()),
                Value::Null,
                Value::Int(3),
                Value::Int(1),
                Value::Int(i64::MAX)
            ]
        );
        let row = Row(a.to_vec());
        assert_eq!(row.get::<u8>(0).expect("u8"), 1);
        assert_eq!(row.get::<Option<String>>(2).expect("null"), None);
        assert!(row.get::<bool>(4).expect("bool"));
        let wrong = row.get::<String>(0).expect_err("an integer is not text");
        assert_eq!(wrong.to_string(), "column 0: expected text, not Int(1)");
        assert!(row.get::<u8>(5).is_err(), "out of range");
        assert!(row.get::<i64>(9).is_err(), "no such column");
    }
}
