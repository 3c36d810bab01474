//! The stores behind the pages: task-pool handles opened once and kept, and the runs store.
//!
//! Handles are opened lazily and dropped when their store fails, so the next request opens
//! them again: that is how the dashboard recovers when a server comes back. A SQLite store
//! whose file does not exist is reported as missing, never created.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use qtask_pool::{StoreUrl, TaskPool};
use qtask_record::RecordStore;

use crate::error::Fail;

/// The pool name of the handle used to list the store's pools (any name would do; it never
/// holds tasks, so it is never listed).
const CATALOG: &str = "qtask-ui";

/// Pool handles kept open at most.
const MAX_HANDLES: usize = 32;

/// The task store: one kept handle per pool.
pub(crate) struct Pools {
    url: String,
    handles: Mutex<HashMap<String, Arc<dyn TaskPool>>>,
}

impl Pools {
    pub(crate) fn new(url: &str) -> Pools {
        Pools {
            url: url.to_string(),
            handles: Mutex::new(HashMap::new()),
        }
    }

    /// The store URL with any password hidden.
    pub(crate) fn shown(&self) -> String {
        StoreUrl::redacted(&self.url)
    }

    fn handle(&self, pool: &str) -> Result<Arc<dyn TaskPool>, Fail> {
        if let Some(h) = self.lock().get(pool) {
            return Ok(h.clone());
        }
        if let Ok(StoreUrl::Sqlite(path)) = StoreUrl::parse(&self.url)
            && !path.exists()
        {
            return Err(Fail::Unreachable(format!(
                "the task store is unreachable: {} does not exist",
                path.display()
            )));
        }
        let h: Arc<dyn TaskPool> = qtask_pool::open(&self.url, pool)
            .map_err(Fail::pool)?
            .into();
        let mut handles = self.lock();
        // Each handle holds a connection (PostgreSQL counts them against max_connections):
        // a store with many pools gets its handles reopened rather than one each kept.
        if handles.len() >= MAX_HANDLES {
            handles.retain(|name, _| name == CATALOG);
        }
        handles.insert(pool.to_string(), h.clone());
        Ok(h)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<dyn TaskPool>>> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on a handle, dropping every kept handle when the store failed.
    fn with<T>(
        &self,
        pool: &str,
        f: impl FnOnce(&dyn TaskPool) -> qtask_pool::Result<T>,
    ) -> Result<T, Fail> {
        let h = self.handle(pool)?;
        f(&*h).map_err(|e| {
            let fail = Fail::pool(e);
            if matches!(fail, Fail::Unreachable(_)) {
                self.lock().clear();
            }
            fail
        })
    }

    /// The pools of the store, by name.
    pub(crate) fn list(&self) -> Result<Vec<String>, Fail> {
        self.with(CATALOG, |p| p.list())
    }

    /// Runs `f` on pool `pool`, a 404 when the store has no such pool.
    pub(crate) fn on<T>(
        &self,
        pool: &str,
        f: impl FnOnce(&dyn TaskPool) -> qtask_pool::Result<T>,
    ) -> Result<T, Fail> {
        if !self.list()?.iter().any(|p| p == pool) {
            return Err(Fail::NotFound(format!(
                "no pool {pool:?} in {}",
                self.shown()
            )));
        }
        self.with(pool, f)
    }

    /// Runs `f` on pool `pool` without checking that it exists (for callers that just
    /// listed it).
    pub(crate) fn on_listed<T>(
        &self,
        pool: &str,
        f: impl FnOnce(&dyn TaskPool) -> qtask_pool::Result<T>,
    ) -> Result<T, Fail> {
        self.with(pool, f)
    }
}

/// The runs store, opened on first use and kept once it opened.
pub(crate) struct Runs {
    uri: Option<String>,
    store: Mutex<Option<RecordStore>>,
}

impl Runs {
    pub(crate) fn new(uri: Option<&str>) -> Runs {
        Runs {
            uri: uri.map(str::to_string),
            store: Mutex::new(None),
        }
    }

    /// The store (a missing file store is an error, never created).
    pub(crate) fn get(&self) -> Result<RecordStore, Fail> {
        let mut slot = self.store.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = &*slot {
            return Ok(s.clone());
        }
        let s = RecordStore::from_env(self.uri.as_deref(), false)
            .map_err(|e| Fail::Unreachable(format!("the runs store is unreachable: {e}")))?;
        *slot = Some(s.clone());
        Ok(s)
    }
}
