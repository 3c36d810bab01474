//! qtask-core: task documents, the trading calendar and its alignment rules, task generators
//! (rolling, multi-horizon, grid), placeholders and canonical task hashing.
//!
//! Tasks are plain JSON values ([`serde_json::Value`]) shaped like Qlib's task dicts.

#![warn(missing_docs)]

pub mod calendar;
pub mod canonical;
pub mod date;
pub mod error;
pub mod fsutil;
pub mod generators;
pub mod json;
pub mod name;
pub mod path;
pub mod placeholder;
pub mod template;
pub mod workflow;
pub mod yaml;

pub use calendar::{Calendar, Segment, ShiftKind, Side, TimeAdjuster};
pub use canonical::{canonical_json, task_hash};
pub use error::{CoreError, Result};
pub use generators::{
    GenSettings, GridAxis, GridGen, MultiHorizonGen, RollStep, RollType, RollingGen, TaskGen,
    task_generator,
};
pub use placeholder::fill_placeholder;
pub use template::{Template, load_template, resolve_provider_uri};
