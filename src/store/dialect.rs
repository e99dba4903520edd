//! The two SQL dialects the store speaks, and the few places their SQL differs.

use sqlx::AnyConnection;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite, one file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Dialect {
    /// The database behind `conn`.
    pub fn of(conn: &AnyConnection) -> Self {
        match conn.backend_name() {
            "SQLite" => Self::Sqlite,
            _ => Self::Postgres,
        }
    }

    /// `count` rows of placeholders for a multi-row INSERT; `columns` writes each column,
    /// `{}` standing for its placeholder: on PostgreSQL `row_placeholders(2, &["{}",
    /// "CAST({} AS JSON)"])` is `($1, CAST($2 AS JSON)), ($3, CAST($4 AS JSON))`. SQLite gets
    /// plain `?`s: numbered ones are looked up by name, which costs quadratic time in
    /// statements of thousands of values.
    pub fn row_placeholders(self, count: usize, columns: &[&str]) -> String {
        use std::fmt::Write;
        let columns: Vec<(&str, &str)> = columns
            .iter()
            .map(|template| template.split_once("{}").unwrap_or((template, "")))
            .collect();
        let mut sql = String::with_capacity(count * columns.len() * 8);
        let mut n = 0;
        for row in 0..count {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            for (column, (before, after)) in columns.iter().enumerate() {
                n += 1;
                if column > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(before);
                match self {
                    Self::Sqlite => sql.push('?'),
                    Self::Postgres => write!(sql, "${n}").expect("writing to a String"),
                }
                sql.push_str(after);
            }
            sql.push(')');
        }
        sql
    }

    /// A subquery of the strings of the JSON array bound at position `n`: a list of any
    /// length as one bound value, which the database plans once (a list of thousands of
    /// placeholders took PostgreSQL tens of milliseconds to plan, each time).
    pub fn elements_of(self, n: usize) -> String {
        match self {
            Self::Sqlite => format!("SELECT value FROM json_each(${n})"),
            Self::Postgres => format!("SELECT json_array_elements_text(CAST(${n} AS JSON))"),
        }
    }
}
