//! Processing steps applied to collected values: groups (Qlib's `Group`, `RollingGroup`)
//! and ensembles, piped by [`process_collect`].

use crate::ensemble::{AverageEnsemble, Ensemble, RollingEnsemble, SingleKeyEnsemble};
use crate::{CollectError, CollectMap, Collected, Key, Result};

/// One step of a collector's process list: takes the value collected under an artifact
/// and returns a new one.
pub trait Process: Send + Sync {
    /// Transforms a collected value.
    fn process(&self, value: Collected) -> Result<Collected>;
}

impl<F> Process for F
where
    F: Fn(Collected) -> Result<Collected> + Send + Sync,
{
    fn process(&self, value: Collected) -> Result<Collected> {
        self(value)
    }
}

/// Qlib's `Collector.process_collect`: pipes the value under each top-level key through
/// every process, in order; keys keep their order.
pub fn process_collect(collected: CollectMap, processes: &[&dyn Process]) -> Result<CollectMap> {
    collected
        .into_iter()
        .map(|(key, mut value)| {
            for p in processes {
                value = p.process(value)?;
            }
            Ok((key, value))
        })
        .collect()
}

fn expect_map(value: Collected, what: &str) -> Result<CollectMap> {
    match value {
        Collected::Map(m) => Ok(m),
        Collected::Table(_) => Err(CollectError::Shape(format!(
            "{what} needs a map of tables, got a single table"
        ))),
    }
}

macro_rules! ensemble_process {
    ($t:ty, $name:literal) => {
        impl Process for $t {
            fn process(&self, value: Collected) -> Result<Collected> {
                self.ensemble(expect_map(value, $name)?)
            }
        }
    };
}
ensemble_process!(RollingEnsemble, "RollingEnsemble");
ensemble_process!(AverageEnsemble, "AverageEnsemble");

impl Process for SingleKeyEnsemble {
    fn process(&self, value: Collected) -> Result<Collected> {
        Ok(self.apply(value))
    }
}

/// How a [`Group`] splits a map: `(group key, members)` in order of first appearance.
pub type GroupFn = dyn Fn(CollectMap) -> Result<Vec<(Key, CollectMap)>> + Send + Sync;

/// Qlib's `Group`: split a map into groups, then reduce each group with an ensemble; the
/// result maps each group key to its reduced value.
pub struct Group {
    group_fn: Box<GroupFn>,
    ensemble: Box<dyn Ensemble>,
}

impl Group {
    /// A group with this grouping function and reduce.
    pub fn new(
        group_fn: impl Fn(CollectMap) -> Result<Vec<(Key, CollectMap)>> + Send + Sync + 'static,
        ensemble: impl Ensemble + 'static,
    ) -> Self {
        Group {
            group_fn: Box::new(group_fn),
            ensemble: Box::new(ensemble),
        }
    }

    /// Splits `map` into groups.
    pub fn group(&self, map: CollectMap) -> Result<Vec<(Key, CollectMap)>> {
        (self.group_fn)(map)
    }

    /// Reduces one group.
    pub fn reduce(&self, members: CollectMap) -> Result<Collected> {
        self.ensemble.ensemble(members)
    }

    /// Groups, then reduces every group.
    pub fn apply(&self, map: CollectMap) -> Result<CollectMap> {
        self.group(map)?
            .into_iter()
            .map(|(k, members)| Ok((k, self.reduce(members)?)))
            .collect()
    }
}

impl Process for Group {
    fn process(&self, value: Collected) -> Result<Collected> {
        Ok(Collected::Map(self.apply(expect_map(value, "a group")?)?))
    }
}

/// Qlib's `RollingGroup`: keys must be tuples; `(a, b, segment)` goes to group `(a, b)` under
/// member key `segment`; each group is reduced with [`RollingEnsemble`] unless told otherwise.
pub struct RollingGroup;

impl RollingGroup {
    /// A rolling group reduced with [`RollingEnsemble`].
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> Group {
        Self::with_ensemble(RollingEnsemble)
    }

    /// A rolling group reduced with another ensemble.
    pub fn with_ensemble(ensemble: impl Ensemble + 'static) -> Group {
        Group::new(rolling_group, ensemble)
    }
}

/// The grouping of [`RollingGroup`]: by all but the last tuple element.
pub fn rolling_group(map: CollectMap) -> Result<Vec<(Key, CollectMap)>> {
    let mut groups: Vec<(Key, CollectMap)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (key, value) in map {
        let Key::Tuple(mut parts) = key else {
            return Err(CollectError::NotTuple(key.to_string()));
        };
        let Some(last) = parts.pop() else {
            return Err(CollectError::NotTuple("()".into()));
        };
        let group = Key::Tuple(parts);
        let i = *index.entry(group.clone()).or_insert_with(|| {
            groups.push((group, CollectMap::new()));
            groups.len() - 1
        });
        groups[i].1.insert(last, value);
    }
    Ok(groups)
}
