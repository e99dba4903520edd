//! Each dialect's schema migrations, the files of `migrations/` built into the binary.
//!
//! They are read as sqlx reads a migrations directory (`<version>_<description>.sql`, the
//! description's `_` as spaces, `-- no-transaction` on the first line), so a store migrated
//! by an earlier build, which embedded them with sqlx's `migrate!` macro, finds the same
//! versions and checksums. Doing it here spares the build that macro's crate, which compiled
//! sqlx's drivers, rustls and aws-lc a second time for the compiler's own use.

use std::borrow::Cow;

use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};

/// One dialect's migration files, each by its file name and text.
#[derive(Debug, Clone, Copy)]
pub(super) struct Migrations(&'static [(&'static str, &'static str)]);

/// The migration files, one list for both dialects: each migration is written in each.
macro_rules! migrations {
    ($($file:literal),+ $(,)?) => {
        pub(super) const SQLITE: Migrations = Migrations(&[$((
            $file,
            include_str!(concat!("../../migrations/sqlite/", $file)),
        )),+]);
        pub(super) const POSTGRES: Migrations = Migrations(&[$((
            $file,
            include_str!(concat!("../../migrations/postgres/", $file)),
        )),+]);
    };
}

migrations!(
    "0001_init.sql",
    "0002_account_documents.sql",
    "0003_lighter_read_tables.sql",
    "0004_badges_as_searched.sql",
    "0005_compact_badges.sql",
    "0006_organization_badges_as_read.sql",
    "0007_token_lifecycle.sql",
    "0008_departed.sql",
    "0009_events_queue.sql",
);

impl Migrations {
    pub(super) async fn migrator(self) -> Result<Migrator, MigrateError> {
        Migrator::new(self).await
    }
}

impl MigrationSource<'static> for Migrations {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            let mut migrations = self
                .0
                .iter()
                .map(|&(file, sql)| migration(file, sql))
                .collect::<Result<Vec<_>, _>>()?;
            migrations.sort_by_key(|m| m.version);
            Ok(migrations)
        })
    }
}

fn migration(file: &str, sql: &'static str) -> Result<Migration, BoxDynError> {
    let (version, rest) = file
        .split_once('_')
        .filter(|(_, rest)| rest.ends_with(".sql"))
        .ok_or_else(|| format!("migration {file}: not named <version>_<description>.sql"))?;
    let version = version
        .parse()
        .map_err(|_| format!("migration {file}: its version is not a number"))?;
    let kind = MigrationType::from_filename(rest);
    let description = rest.trim_end_matches(kind.suffix()).replace('_', " ");
    let no_tx = sql.starts_with("-- no-transaction");
    Ok(Migration::new(
        version,
        Cow::Owned(description),
        kind,
        Cow::Borrowed(sql),
        no_tx,
    ))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// What sqlx reads from the directory, as `migrate!` did at build time and as the stores
    /// migrated by earlier builds recorded it.
    async fn from_directory(dialect: &str) -> Vec<Migration> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dialect);
        Migrator::new(dir).await.unwrap().iter().cloned().collect()
    }

    #[tokio::test]
    async fn every_migration_file_is_built_in_as_sqlx_reads_it() {
        for (dialect, built_in) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let built_in: Vec<Migration> =
                built_in.migrator().await.unwrap().iter().cloned().collect();
            let read = from_directory(dialect).await;
            assert!(!read.is_empty(), "no migrations in migrations/{dialect}");
            let shape = |m: &Migration| {
                (
                    m.version,
                    m.description.to_string(),
                    m.migration_type,
                    m.checksum.to_vec(),
                    m.no_tx,
                )
            };
            assert_eq!(
                built_in.iter().map(shape).collect::<Vec<_>>(),
                read.iter().map(shape).collect::<Vec<_>>(),
                "{dialect}: migrations/{dialect} and the list in store/migrations.rs differ"
            );
        }
    }

    #[test]
    fn a_file_not_named_as_sqlx_names_migrations_is_an_error() {
        for file in ["init.sql", "x_init.sql", "0001_init.txt"] {
            assert!(migration(file, "").is_err(), "{file}");
        }
    }
}
