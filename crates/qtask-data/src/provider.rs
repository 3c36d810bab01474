//! Qlib's binary data layout: `calendars/day.txt`, `instruments/<market>.txt`,
//! `features/<symbol>/<field>.day.bin`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use qtask_core::{Calendar, CoreError};
use serde::{Deserialize, Serialize};

use qtask_core::name::check_name;

use crate::binfile::{BinSeries, read_bin};
use crate::error::{DataError, Result};

/// Which instruments to load: a market file name (`csi300`, `all`) or explicit symbols.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Instruments {
    /// `instruments/<name>.txt`.
    Market(String),
    /// Explicit symbols (any case); limited to their ranges in `instruments/all.txt` when it
    /// lists them.
    List(Vec<String>),
    /// A market narrowed by Qlib's dynamic filters (`D.instruments(market, filter_pipe)`).
    Filtered {
        /// `instruments/<market>.txt`.
        market: String,
        /// The filters, applied in order (see [`crate::filter`]).
        filter_pipe: Vec<crate::filter::DFilter>,
    },
}

impl Instruments {
    /// A market or a list of symbols, as a command line names them: the list wins, then the
    /// market, else the whole market `all`.
    pub fn select(market: Option<String>, list: Option<Vec<String>>) -> Instruments {
        match (market, list) {
            (_, Some(l)) => Instruments::List(l),
            (Some(m), None) => Instruments::Market(m),
            (None, None) => Instruments::Market("all".into()),
        }
    }
}

/// An instrument selected for a query, with the date ranges it is listed for.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// Upper-case symbol, as Qlib names it in outputs.
    pub symbol: String,
    /// Inclusive listed ranges inside the query; empty means unrestricted.
    pub spans: Vec<(NaiveDate, NaiveDate)>,
}

/// A Qlib provider folder (`provider_uri`), with its calendar loaded.
#[derive(Debug, Clone)]
pub struct Provider {
    root: PathBuf,
    calendar: Vec<NaiveDate>,
}

/// Parses `YYYY-MM-DD` (a trailing time, as some Qlib files have, is ignored).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let d = s.get(..10).unwrap_or(s);
    NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()
}

impl Provider {
    /// Opens a provider folder; the calendar `calendars/day.txt` must exist and be ascending.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        if !root.is_dir() {
            return Err(DataError::Invalid(format!(
                "provider folder {} does not exist",
                root.display()
            )));
        }
        let cal_path = root.join("calendars").join("day.txt");
        if !cal_path.exists() {
            return Err(DataError::format(&cal_path, "calendar file is missing"));
        }
        // The one calendar reader (and its date rules) is qtask-core's.
        let calendar = Calendar::from_file(&cal_path)
            .map_err(|e| match e {
                CoreError::Calendar { path, message } => DataError::format(path, message),
                other => DataError::format(&cal_path, other.to_string()),
            })?
            .days()
            .to_vec();
        Ok(Provider { root, calendar })
    }

    /// The provider folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The trading calendar.
    pub fn calendar(&self) -> &[NaiveDate] {
        &self.calendar
    }

    /// Index of the first trading day >= `d` (may be the calendar length).
    pub fn align_start(&self, d: NaiveDate) -> usize {
        self.calendar.partition_point(|&c| c < d)
    }

    /// Index one past the last trading day <= `d` (0 when `d` precedes the calendar).
    pub fn align_end_excl(&self, d: NaiveDate) -> usize {
        self.calendar.partition_point(|&c| c <= d)
    }

    /// The folder holding a symbol's feature files (Qlib lower-cases symbols on disk); a
    /// symbol that is not a plain file name is refused.
    pub fn symbol_dir(&self, symbol: &str) -> Result<PathBuf> {
        check_name("instrument", symbol)?;
        Ok(self.root.join("features").join(symbol.to_lowercase()))
    }

    /// Reads one field of one symbol; `Ok(None)` when the symbol has no such field file.
    pub fn read_field(&self, symbol: &str, field: &str) -> Result<Option<BinSeries>> {
        check_name("field", field)?;
        let path = self.symbol_dir(symbol)?.join(format!("{field}.day.bin"));
        if !path.exists() {
            return Ok(None);
        }
        let s = read_bin(&path)?;
        if s.start > self.calendar.len() {
            return Err(DataError::format(
                &path,
                format!(
                    "starts at calendar index {} but the calendar has {} days",
                    s.start,
                    self.calendar.len()
                ),
            ));
        }
        Ok(Some(s))
    }

    /// Reads `instruments/<market>.txt` into symbol -> listed ranges (file order kept per symbol).
    pub fn market(&self, market: &str) -> Result<BTreeMap<String, Vec<(NaiveDate, NaiveDate)>>> {
        check_name("market", market)?;
        let path = self
            .root
            .join("instruments")
            .join(format!("{}.txt", market.to_lowercase()));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                DataError::Invalid(format!(
                    "unknown market `{market}`: {} does not exist",
                    path.display()
                ))
            } else {
                DataError::io(&path, e)
            }
        })?;
        let mut out: BTreeMap<String, Vec<(NaiveDate, NaiveDate)>> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let parts: Vec<&str> = line.split('\t').collect();
            let bad = || {
                DataError::format(
                    &path,
                    format!(
                        "line {}: expected SYMBOL<TAB>start<TAB>end, got `{line}`",
                        i + 1
                    ),
                )
            };
            if parts.len() < 3 {
                return Err(bad());
            }
            let (s, e) = (
                parse_date(parts[1]).ok_or_else(bad)?,
                parse_date(parts[2]).ok_or_else(bad)?,
            );
            let symbol = parts[0].trim().to_uppercase();
            // Read as strictly as the importer writes: a symbol is a folder name.
            check_name("instrument", &symbol)
                .map_err(|e| DataError::format(&path, format!("line {}: {e}", i + 1)))?;
            if e < s {
                return Err(DataError::format(
                    &path,
                    format!(
                        "line {}: instrument {symbol} ends ({e}) before it starts ({s})",
                        i + 1
                    ),
                ));
            }
            out.entry(symbol).or_default().push((s, e));
        }
        Ok(out)
    }

    /// The instruments of a selection that are listed inside `[start, end]`, sorted by symbol,
    /// each with its listed ranges clipped to the query. Every selected symbol must have a
    /// feature folder.
    pub fn list_instruments(
        &self,
        sel: &Instruments,
        start: NaiveDate,
        end: NaiveDate,
    ) -> Result<Vec<Listed>> {
        let clip = |spans: &[(NaiveDate, NaiveDate)]| -> Vec<(NaiveDate, NaiveDate)> {
            spans
                .iter()
                .filter_map(|&(s, e)| {
                    let (s, e) = (s.max(start), e.min(end));
                    (s <= e).then_some((s, e))
                })
                .collect()
        };
        let mut out = Vec::new();
        match sel {
            Instruments::Market(m) => {
                for (symbol, spans) in self.market(m)? {
                    let spans = clip(&spans);
                    if !spans.is_empty() {
                        out.push(Listed { symbol, spans });
                    }
                }
            }
            Instruments::Filtered {
                market,
                filter_pipe,
            } => {
                // Qlib filters over the whole calendar, then the query keeps its own days.
                let (first, last) = (self.calendar[0], self.calendar[self.calendar.len() - 1]);
                let all =
                    self.list_instruments(&Instruments::Market(market.clone()), first, last)?;
                for l in crate::filter::apply_filters(self, all, filter_pipe)? {
                    let spans = clip(&l.spans);
                    if !spans.is_empty() {
                        out.push(Listed {
                            symbol: l.symbol,
                            spans,
                        });
                    }
                }
            }
            Instruments::List(list) => {
                let all = if self.root.join("instruments").join("all.txt").exists() {
                    self.market("all")?
                } else {
                    BTreeMap::new()
                };
                let mut seen = std::collections::BTreeSet::new();
                for s in list {
                    let symbol = s.trim().to_uppercase();
                    check_name("instrument", &symbol)?;
                    if !seen.insert(symbol.clone()) {
                        continue;
                    }
                    match all.get(&symbol) {
                        Some(spans) => {
                            let spans = clip(spans);
                            if !spans.is_empty() {
                                out.push(Listed { symbol, spans });
                            }
                        }
                        None => out.push(Listed {
                            symbol,
                            spans: Vec::new(),
                        }),
                    }
                }
                out.sort_by(|a, b| a.symbol.cmp(&b.symbol));
            }
        }
        for l in &out {
            let dir = self.symbol_dir(&l.symbol)?;
            // An instrument with only point-in-time data has just a financial/ folder.
            let pit_dir = self.root.join("financial").join(l.symbol.to_lowercase());
            if !dir.is_dir() && !pit_dir.is_dir() {
                let listed_in = match sel {
                    Instruments::Market(m) | Instruments::Filtered { market: m, .. } => format!(
                        " (listed in {})",
                        self.root
                            .join("instruments")
                            .join(format!("{}.txt", m.to_lowercase()))
                            .display()
                    ),
                    Instruments::List(_) => String::new(),
                };
                return Err(DataError::Invalid(format!(
                    "instrument {}{listed_in} has no data: {} does not exist",
                    l.symbol,
                    dir.display()
                )));
            }
        }
        Ok(out)
    }
}
