//! Task generators: one template in, many task documents out (Qlib's `TaskGen`).

mod grid;
mod horizon;
mod rolling;
mod segments;
mod settings;

pub use grid::{GridAxis, GridGen};
pub use horizon::MultiHorizonGen;
pub use rolling::{RollStep, RollType, RollingGen};
pub use segments::{SEGMENTS_PATH, read_segments, write_segments};
pub use settings::GenSettings;

use serde_json::Value;

use crate::error::Result;

/// Turns one task into a list of tasks.
pub trait TaskGen {
    /// Generates the tasks derived from `task` (which is left untouched).
    fn generate(&self, task: &Value) -> Result<Vec<Value>>;
}

/// Applies generators in order, template-major: `[g2(t) for t in g1(template)]` for each template.
pub fn task_generator(templates: &[Value], gens: &[&dyn TaskGen]) -> Result<Vec<Value>> {
    let mut tasks = templates.to_vec();
    for g in gens {
        let mut next = Vec::with_capacity(tasks.len());
        for t in &tasks {
            next.extend(g.generate(t)?);
        }
        tasks = next;
    }
    Ok(tasks)
}
