//! Qlib's `RollingStrategy` (qlib/workflow/online/strategy.py): the latest rolling windows
//! are the online models; a routine adds the windows that have come due.

use chrono::NaiveDate;
use qtask_core::{
    GenSettings, RollStep, RollType, RollingGen, TaskGen, TimeAdjuster, task_generator,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, StudyError};

/// The rolling generator of a strategy, as saved with the manager (Qlib's `RollingGen`
/// arguments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollingSpec {
    /// Window step: trading days (`20`) or a calendar unit (`1M`).
    pub step: String,
    /// `expanding` (Qlib's default) or `sliding`.
    pub rtype: String,
    /// Trading days cut between every non-test segment and the test start (first window).
    pub trunc_days: Option<i64>,
    /// Extend the handler's `end_time` to each test end (Qlib's `ds_extra_mod_func=handler_mod`).
    pub handler_mod: bool,
    /// Name of the test segment.
    pub test_key: String,
    /// Name of the segment that expands; `None`: every segment slides.
    pub train_key: Option<String>,
}

impl RollingSpec {
    /// Qlib's `RollingGen` defaults with this step: expanding, handler_mod on.
    pub fn new(step: RollStep) -> Self {
        RollingSpec {
            step: step_text(step),
            rtype: "expanding".into(),
            trunc_days: None,
            handler_mod: true,
            test_key: "test".into(),
            train_key: Some("train".into()),
        }
    }

    /// Sets the rolling type.
    pub fn with_rtype(mut self, rtype: RollType) -> Self {
        self.rtype = match rtype {
            RollType::Expanding => "expanding",
            RollType::Sliding => "sliding",
        }
        .into();
        self
    }

    /// The generator on a calendar.
    pub fn generator<'a>(&self, ta: &'a TimeAdjuster) -> Result<RollingGen<'a>> {
        let mut g = RollingGen::new(ta);
        g.step = self.step.parse()?;
        g.rtype = self.rtype.parse()?;
        g.trunc_days = self.trunc_days;
        g.handler_mod = self.handler_mod;
        g.test_key = self.test_key.clone();
        g.train_key = self.train_key.clone();
        Ok(g)
    }
}

/// `RollStep` as the text `RollStep::from_str` reads back.
pub fn step_text(step: RollStep) -> String {
    step.to_string()
}

/// Qlib's `RollingStrategy`: task templates rolled by a `RollingGen`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollingStrategy {
    /// The task templates (one rolling series each).
    pub templates: Vec<Value>,
    /// The rolling generator.
    pub rolling: RollingSpec,
}

/// A test segment `[start, end]` as dates (`None`: open).
pub type TestSegment = (Option<NaiveDate>, Option<NaiveDate>);

fn date_of(v: &Value, what: &str) -> Result<Option<NaiveDate>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.len() >= 10 => NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d")
            .map(Some)
            .map_err(|_| StudyError::Invalid(format!("{what}: `{s}` is not a date"))),
        other => Err(StudyError::Invalid(format!(
            "{what}: `{other}` is not a date"
        ))),
    }
}

impl RollingStrategy {
    /// A strategy over `templates`; a template without the test segment is refused here,
    /// naming it, before anything is trained.
    pub fn new(templates: Vec<Value>, rolling: RollingSpec) -> Result<Self> {
        if templates.is_empty() {
            return Err(StudyError::Invalid("the template holds no task".into()));
        }
        let s = RollingStrategy { templates, rolling };
        for (i, t) in s.templates.iter().enumerate() {
            let seg = s
                .test_segment(t)
                .map_err(|e| StudyError::Invalid(format!("template task {}: {e}", i + 1)))?;
            if seg.0.is_none() {
                return Err(StudyError::Invalid(format!(
                    "template task {}: `dataset.kwargs.segments.{}` needs a start date for \
                     rolling",
                    i + 1,
                    s.rolling.test_key
                )));
            }
        }
        s.rolling.step.parse::<RollStep>()?;
        s.rolling.rtype.parse::<RollType>()?;
        Ok(s)
    }

    /// The strategy of a template and generator settings (what `qtask online` flags give): the
    /// template's tasks through the other generators (horizons, grid) are the templates, and
    /// the rolling settings make the `RollingGen` (step: Qlib's default 40 trading days when
    /// none is given).
    pub fn from_settings(
        tasks: &[Value],
        settings: &GenSettings,
        ta: &TimeAdjuster,
    ) -> Result<RollingStrategy> {
        let others = GenSettings {
            rolling_step: None,
            ..settings.clone()
        };
        let templates = others.generate(tasks, Some(ta), &|| {})?;
        let rolling = RollingSpec {
            step: step_text(settings.rolling_step.unwrap_or(RollStep::Days(40))),
            trunc_days: settings.trunc_days,
            handler_mod: settings.handler_mod,
            test_key: settings.test_key.clone(),
            train_key: settings.train_key.clone(),
            ..RollingSpec::new(RollStep::Days(40))
        }
        .with_rtype(settings.rtype);
        RollingStrategy::new(templates, rolling)
    }

    /// The test segment of a task (Qlib's `task["dataset"]["kwargs"]["segments"]["test"]`).
    pub fn test_segment(&self, task: &Value) -> Result<TestSegment> {
        let path = format!("/dataset/kwargs/segments/{}", self.rolling.test_key);
        let seg = task
            .pointer(&path)
            .and_then(Value::as_array)
            .filter(|a| a.len() == 2)
            .ok_or_else(|| {
                StudyError::Invalid(format!(
                    "the task has no test segment `dataset.kwargs.segments.{}` (a [start, end] \
                     pair)",
                    self.rolling.test_key
                ))
            })?;
        let what = format!("dataset.kwargs.segments.{}", self.rolling.test_key);
        Ok((date_of(&seg[0], &what)?, date_of(&seg[1], &what)?))
    }

    /// Qlib's `first_tasks`: the rolling tasks of every template (template-major), up to each
    /// template's test end.
    pub fn first_tasks(&self, ta: &TimeAdjuster) -> Result<Vec<Value>> {
        let g = self.rolling.generator(ta)?;
        Ok(task_generator(&self.templates, &[&g as &dyn TaskGen])?)
    }

    /// Qlib's `prepare_tasks`: of the online models' tasks (in the order listed), those with
    /// the latest test segment (`_list_latest`) are rolled on to every window whose test
    /// start is on or before `cur_time` (`gen_following_tasks`).
    pub fn prepare_tasks(
        &self,
        ta: &TimeAdjuster,
        online_tasks: &[Value],
        cur_time: NaiveDate,
    ) -> Result<Vec<Value>> {
        let Some(latest) = self.latest(online_tasks)? else {
            return Ok(Vec::new());
        };
        let g = self.rolling.generator(ta)?;
        let mut out = Vec::new();
        for t in online_tasks {
            if self.test_segment(t)? == latest {
                out.extend(g.gen_following_tasks(t, cur_time)?);
            }
        }
        Ok(out)
    }

    /// The largest test segment of `tasks` (`max` over `(start, end)` pairs, an open end
    /// after every date), `None` without tasks.
    pub fn latest(&self, tasks: &[Value]) -> Result<Option<TestSegment>> {
        let mut best: Option<TestSegment> = None;
        for t in tasks {
            let s = self.test_segment(t)?;
            if best.is_none_or(|b| seg_key(s) > seg_key(b)) {
                best = Some(s);
            }
        }
        Ok(best)
    }
}

/// Orders test segments as Qlib compares its tuples, an open end after every date.
pub fn seg_key(s: TestSegment) -> (Option<NaiveDate>, (bool, Option<NaiveDate>)) {
    (s.0, (s.1.is_none(), s.1))
}
