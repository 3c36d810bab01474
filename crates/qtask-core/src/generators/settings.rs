//! The generator settings of a study (what `qtask gen` flags describe): which generators apply
//! to a template, in the order horizons -> rolling -> grid, through [`task_generator`].

use serde_json::Value;

use super::task_generator;
use super::{GridAxis, GridGen, MultiHorizonGen, RollStep, RollType, RollingGen, TaskGen};
use crate::calendar::TimeAdjuster;
use crate::error::{CoreError, Result};

/// Which generators turn a template into tasks, and with what parameters. The default applies
/// none: the template's own tasks come out unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct GenSettings {
    /// Roll the test window by this step (Qlib's `RollingGen`); `None`: no rolling.
    pub rolling_step: Option<RollStep>,
    /// Expanding or sliding windows.
    pub rtype: RollType,
    /// Trading days cut between every non-test segment and the test start.
    pub trunc_days: Option<i64>,
    /// Extend the handler's `end_time` to each test end (Qlib's `handler_mod`).
    pub handler_mod: bool,
    /// Name of the test segment.
    pub test_key: String,
    /// Name of the segment that expands; `None`: every segment slides.
    pub train_key: Option<String>,
    /// One task per label horizon (Qlib's `MultiHorizonGenBase`); `None`: no horizons.
    pub horizons: Option<Vec<i64>>,
    /// Days of label leakage cut on top of the horizon.
    pub label_leak: i64,
    /// Parameter grid axes (their product).
    pub grids: Vec<GridAxis>,
}

impl Default for GenSettings {
    fn default() -> Self {
        GenSettings {
            rolling_step: None,
            rtype: RollType::Expanding,
            trunc_days: None,
            handler_mod: true,
            test_key: "test".into(),
            train_key: Some("train".into()),
            horizons: None,
            label_leak: 2,
            grids: Vec::new(),
        }
    }
}

impl GenSettings {
    /// Whether a generator needs the trading calendar.
    pub fn needs_calendar(&self) -> bool {
        self.rolling_step.is_some() || self.horizons.is_some()
    }

    /// The generators, in the order they apply. `ta` is required when
    /// [`Self::needs_calendar`]; bad settings are refused here, before any task is made.
    pub fn generators<'a>(
        &self,
        ta: Option<&'a TimeAdjuster>,
    ) -> Result<Vec<Box<dyn TaskGen + 'a>>> {
        if let Some(days) = self.trunc_days
            && days < 0
        {
            return Err(CoreError::Generator(format!(
                "trunc_days must not be negative (got {days})"
            )));
        }
        let calendar = || {
            ta.ok_or_else(|| {
                CoreError::Generator("rolling windows and horizons need a trading calendar".into())
            })
        };
        let mut gens: Vec<Box<dyn TaskGen + 'a>> = Vec::new();
        if let Some(horizons) = &self.horizons {
            let mut g = MultiHorizonGen::new(calendar()?);
            g.horizons = horizons.clone();
            g.label_leak_n = self.label_leak;
            g.test_key = self.test_key.clone();
            gens.push(Box::new(g));
        }
        if let Some(step) = self.rolling_step {
            let mut g = RollingGen::new(calendar()?);
            g.step = step;
            g.rtype = self.rtype;
            g.trunc_days = self.trunc_days;
            g.test_key = self.test_key.clone();
            g.train_key = self.train_key.clone();
            g.handler_mod = self.handler_mod;
            gens.push(Box::new(g));
        }
        if !self.grids.is_empty() {
            gens.push(Box::new(GridGen {
                axes: self.grids.clone(),
            }));
        }
        Ok(gens)
    }

    /// The tasks of `templates` ([`task_generator`] over [`Self::generators`]); `on_template`
    /// is called after each template (for progress).
    pub fn generate(
        &self,
        templates: &[Value],
        ta: Option<&TimeAdjuster>,
        on_template: &dyn Fn(),
    ) -> Result<Vec<Value>> {
        let gens = self.generators(ta)?;
        let gens: Vec<&dyn TaskGen> = gens.iter().map(|g| g.as_ref()).collect();
        let mut tasks = Vec::new();
        for t in templates {
            tasks.extend(task_generator(std::slice::from_ref(t), &gens)?);
            on_template();
        }
        Ok(tasks)
    }
}
