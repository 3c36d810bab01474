//! Store URLs: `sqlite:PATH`, `postgres://...`, `mongodb://...`.

use std::path::PathBuf;

use crate::error::{PoolError, Result};
use crate::pool::TaskPool;

/// The store used when none is given.
pub const DEFAULT_STORE: &str = "sqlite:qtask.db";

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://` or `postgresql://`).
    Postgres(String),
    /// A MongoDB connection URL (`mongodb://` or `mongodb+srv://`).
    Mongo(String),
}

impl StoreUrl {
    /// Parses a store URL; a bare path without a scheme is refused so typos do not create files.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |reason: &str| PoolError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(bad("no file path after sqlite:"));
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            url.parse::<postgres::Config>()
                .map_err(|e| bad(&e.to_string()))?;
            return Ok(StoreUrl::Postgres(url.to_string()));
        }
        if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") {
            let rest = url.split_once("://").map_or("", |(_, r)| r);
            if rest.is_empty() || rest.starts_with('/') {
                return Err(bad("no host after mongodb://"));
            }
            return Ok(StoreUrl::Mongo(url.to_string()));
        }
        Err(bad(
            "expected sqlite:PATH, postgres://USER@HOST/DB or mongodb://HOST/DB",
        ))
    }

    /// The URL with any password replaced by `***`, for messages.
    pub fn redacted(url: &str) -> String {
        match url.split_once("://") {
            Some((scheme, rest)) => match rest.split_once('@') {
                Some((auth, host)) if auth.contains(':') => {
                    let user = auth.split(':').next().unwrap_or_default();
                    format!("{scheme}://{user}:***@{host}")
                }
                _ => url.to_string(),
            },
            None => url.to_string(),
        }
    }
}

/// Opens pool `pool` in the store at `url`.
pub fn open(url: &str, pool: &str) -> Result<Box<dyn TaskPool>> {
    match StoreUrl::parse(url)? {
        StoreUrl::Sqlite(path) => Ok(Box::new(crate::sqlite::SqlitePool::open(&path, pool)?)),
        StoreUrl::Postgres(u) => Ok(Box::new(crate::postgres::PgPool::open(&u, pool)?)),
        #[cfg(feature = "mongodb")]
        StoreUrl::Mongo(u) => Ok(Box::new(crate::mongo::MongoPool::open(&u, pool)?)),
        #[cfg(not(feature = "mongodb"))]
        StoreUrl::Mongo(_) => Err(PoolError::BadUrl {
            url: url.to_string(),
            reason: "this qtask was built without MongoDB support (cargo feature `mongodb`)".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_parse_and_garbage_is_refused() {
        assert_eq!(
            StoreUrl::parse("sqlite:a/b.db").unwrap(),
            StoreUrl::Sqlite(PathBuf::from("a/b.db"))
        );
        assert!(matches!(
            StoreUrl::parse("postgres://u@localhost:5432/db").unwrap(),
            StoreUrl::Postgres(_)
        ));
        for bad in [
            "qtask.db",
            "sqlite:",
            "mysql://x",
            "postgres://u@h:notaport/db",
            "mongodb://",
        ] {
            assert!(
                matches!(StoreUrl::parse(bad), Err(PoolError::BadUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            StoreUrl::redacted("postgres://bob:secret@h/db"),
            "postgres://bob:***@h/db"
        );
    }
}
