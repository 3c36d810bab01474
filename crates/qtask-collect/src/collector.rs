//! Collectors: where collected maps come from (Qlib's `Collector`, `MergeCollector`).

use crate::group::{Process, process_collect};
use crate::{CollectMap, Key, Result};

/// Something that collects a map and then post-processes it (Qlib's `Collector`).
pub trait Collector {
    /// Collects the raw map, e.g. `{artifact: {run key: table}}`.
    fn collect(&self) -> Result<CollectMap>;

    /// The steps applied to each top-level value after collecting.
    fn processes(&self) -> Vec<&dyn Process> {
        Vec::new()
    }

    /// Collects, then runs [`process_collect`] with [`Collector::processes`] (Qlib's `__call__`).
    fn run(&self) -> Result<CollectMap> {
        process_collect(self.collect()?, &self.processes())
    }
}

/// How [`MergeCollector`] names merged keys: `(collector name, inner key) -> key`.
pub type MergeFn = dyn Fn(&Key, &Key) -> Key + Send + Sync;

/// Qlib's `MergeCollector`: runs several named collectors and merges what they return
/// under keys `(name, inner_key)`, or under `merge_fn(name, inner_key)` when given.
#[derive(Default)]
pub struct MergeCollector<'a> {
    collectors: Vec<(Key, Box<dyn Collector + 'a>)>,
    merge_fn: Option<Box<MergeFn>>,
    processes: Vec<Box<dyn Process + 'a>>,
}

impl<'a> MergeCollector<'a> {
    /// An empty merge collector.
    pub fn new() -> Self {
        MergeCollector {
            collectors: Vec::new(),
            merge_fn: None,
            processes: Vec::new(),
        }
    }

    /// Adds a named collector (names are merged in the order added).
    pub fn with(mut self, name: impl Into<Key>, collector: impl Collector + 'a) -> Self {
        self.collectors.push((name.into(), Box::new(collector)));
        self
    }

    /// Names merged keys with `f(name, inner_key)` instead of the tuple `(name, inner_key)`.
    pub fn merge_fn(mut self, f: impl Fn(&Key, &Key) -> Key + Send + Sync + 'static) -> Self {
        self.merge_fn = Some(Box::new(f));
        self
    }

    /// Adds a processing step for the merged map.
    pub fn process(mut self, p: impl Process + 'a) -> Self {
        self.processes.push(Box::new(p));
        self
    }
}

impl Collector for MergeCollector<'_> {
    fn collect(&self) -> Result<CollectMap> {
        let mut out = CollectMap::new();
        for (name, collector) in &self.collectors {
            for (key, value) in collector.run()? {
                let merged = match &self.merge_fn {
                    Some(f) => f(name, &key),
                    None => Key::tuple([name.clone(), key]),
                };
                out.insert(merged, value);
            }
        }
        Ok(out)
    }

    fn processes(&self) -> Vec<&dyn Process> {
        self.processes
            .iter()
            .map(|p| p.as_ref() as &dyn Process)
            .collect()
    }
}

/// A collector over a map already in hand (Qlib users pass dicts around the same way).
pub struct MapCollector<'a> {
    map: CollectMap,
    processes: Vec<Box<dyn Process + 'a>>,
}

impl<'a> MapCollector<'a> {
    /// Collects `map` as it is.
    pub fn new(map: CollectMap) -> Self {
        MapCollector {
            map,
            processes: Vec::new(),
        }
    }

    /// Adds a processing step.
    pub fn process(mut self, p: impl Process + 'a) -> Self {
        self.processes.push(Box::new(p));
        self
    }
}

impl Collector for MapCollector<'_> {
    fn collect(&self) -> Result<CollectMap> {
        Ok(self.map.clone())
    }

    fn processes(&self) -> Vec<&dyn Process> {
        self.processes
            .iter()
            .map(|p| p.as_ref() as &dyn Process)
            .collect()
    }
}
