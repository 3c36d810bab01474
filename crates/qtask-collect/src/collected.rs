//! What collectors return: maps (insertion-ordered, like Python dicts) whose leaves are tables.

use std::collections::HashMap;

use qtask_table::PredTable;

use crate::Key;

/// A collected value: a table, or a map of further values.
#[derive(Debug, Clone)]
pub enum Collected {
    /// A leaf: a prediction (or label, ...) table.
    Table(PredTable),
    /// A map, e.g. `{artifact: {run key: table}}`.
    Map(CollectMap),
}

impl Collected {
    /// The table, if this is a leaf.
    pub fn as_table(&self) -> Option<&PredTable> {
        match self {
            Collected::Table(t) => Some(t),
            Collected::Map(_) => None,
        }
    }

    /// The map, if this is not a leaf.
    pub fn as_map(&self) -> Option<&CollectMap> {
        match self {
            Collected::Map(m) => Some(m),
            Collected::Table(_) => None,
        }
    }
}

impl From<PredTable> for Collected {
    fn from(t: PredTable) -> Collected {
        Collected::Table(t)
    }
}

impl From<CollectMap> for Collected {
    fn from(m: CollectMap) -> Collected {
        Collected::Map(m)
    }
}

/// A map that keeps insertion order; re-inserting a key replaces its value in place, as a
/// Python dict does (this is what makes "the later run wins" keep the earlier position).
#[derive(Debug, Clone, Default)]
pub struct CollectMap {
    entries: Vec<(Key, Collected)>,
    index: HashMap<Key, usize>,
}

impl CollectMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts or replaces; returns the replaced value.
    pub fn insert(&mut self, key: Key, value: impl Into<Collected>) -> Option<Collected> {
        let value = value.into();
        match self.index.get(&key) {
            Some(&i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
                None
            }
        }
    }

    /// The value under `key`.
    pub fn get(&self, key: &Key) -> Option<&Collected> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    /// The value under `key`, mutably.
    pub fn get_mut(&mut self, key: &Key) -> Option<&mut Collected> {
        self.index.get(key).map(|&i| &mut self.entries[i].1)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keys in insertion order.
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// Entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Collected)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Flattens nested maps into `(key path, table)` leaves, depth first in insertion order
    /// (Qlib's `flatten_dict`); the path of a leaf lists the keys leading to it.
    pub fn flatten(self) -> Vec<(Vec<Key>, PredTable)> {
        let mut out = Vec::new();
        flatten_into(self, &mut Vec::new(), &mut out);
        out
    }
}

fn flatten_into(map: CollectMap, path: &mut Vec<Key>, out: &mut Vec<(Vec<Key>, PredTable)>) {
    for (k, v) in map.entries {
        path.push(k);
        match v {
            Collected::Table(t) => out.push((path.clone(), t)),
            Collected::Map(m) => flatten_into(m, path, out),
        }
        path.pop();
    }
}

impl IntoIterator for CollectMap {
    type Item = (Key, Collected);
    type IntoIter = std::vec::IntoIter<(Key, Collected)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl FromIterator<(Key, Collected)> for CollectMap {
    fn from_iter<I: IntoIterator<Item = (Key, Collected)>>(iter: I) -> Self {
        let mut m = CollectMap::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}
