//! The exchange's market data (Qlib's `quote_df`): for every instrument of the universe and
//! every day of the exchange's range, the close, the deal prices, `$factor`, `$volume` and the
//! buy/sell limit flags, kept as the float32 values Qlib reads.

use std::collections::HashMap;

use qtask_data::{Instruments, Program, Provider, Query};

use crate::config::{ExchangeConfig, LimitThreshold};
use crate::error::{BacktestError, Result};

/// Interned instrument codes, sorted, so an id order is the code order (the order Qlib's
/// sorted indexes and groupbys give).
#[derive(Debug, Clone, Default)]
pub struct Codes {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Codes {
    /// Interns every code of `all` (upper-cased), sorted and deduplicated.
    pub fn new<'a>(all: impl IntoIterator<Item = &'a str>) -> Codes {
        let mut names: Vec<String> = all.into_iter().map(|s| s.trim().to_uppercase()).collect();
        names.sort();
        names.dedup();
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        Codes { names, index }
    }

    /// The id of a code.
    pub fn id(&self, code: &str) -> Option<u32> {
        self.index.get(code).copied()
    }

    /// The code of an id.
    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// Number of codes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no codes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

const LIMIT_BUY: u8 = 1;
const LIMIT_SELL: u8 = 2;

/// The exchange's data, instrument-major: cell `row * days + d` is instrument row `row` on
/// the `d`-th day of the range. Missing rows (outside the instrument's data or listing) are
/// NaN, which Qlib treats exactly like a suspended day.
#[derive(Debug, Clone)]
pub struct Quote {
    /// Calendar index of the first day of the range.
    pub first: usize,
    /// Days in the range.
    pub days: usize,
    /// Quote row of each code id (`None`: not in the exchange's universe).
    rows: Vec<Option<u32>>,
    close: Vec<f32>,
    buy: Vec<f32>,
    /// `None` when selling uses the buying price.
    sell: Option<Vec<f32>>,
    factor: Vec<f32>,
    volume: Vec<f32>,
    flags: Vec<u8>,
    /// Whether some traded day has a close but no factor: Qlib then trades adjusted amounts
    /// without the trade unit (`trade_w_adj_price`).
    pub adj_mode: bool,
}

fn is_plain_field(expr: &str) -> Option<&str> {
    let name = expr.trim().strip_prefix('$')?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(name)
}

/// One instrument's values of one expression over the range (NaN where it has no row).
type Column = Vec<f32>;

struct Loader<'a> {
    provider: &'a Provider,
    symbols: Vec<String>,
    /// Per symbol: per day of the range, whether the instrument is listed.
    listed: Vec<Vec<bool>>,
    first: usize,
    days: usize,
}

impl Loader<'_> {
    /// Reads a plain `$field` straight from the `.bin` files; `None` when no instrument has it.
    fn plain(&self, field: &str) -> Result<Option<Vec<Column>>> {
        let mut any = false;
        let mut out = Vec::with_capacity(self.symbols.len());
        for (sym, listed) in self.symbols.iter().zip(&self.listed) {
            let mut col = vec![f32::NAN; self.days];
            if let Some(b) = self.provider.read_field(sym, field)? {
                any = true;
                for (d, v) in col.iter_mut().enumerate() {
                    let t = self.first + d;
                    if listed[d] && t >= b.start && t < b.end() {
                        *v = b.values[t - b.start];
                    }
                }
            }
            out.push(col);
        }
        Ok(any.then_some(out))
    }

    /// Evaluates an expression with qtask's expression engine (float32 results, as Qlib's).
    fn expr(&self, expr: &str) -> Result<Vec<Column>> {
        let program = Program::compile(&[("v".to_string(), expr.to_string())])?;
        let cal = self.provider.calendar();
        let q = Query {
            instruments: Instruments::List(self.symbols.clone()),
            start: Some(cal[self.first]),
            end: Some(cal[self.first + self.days - 1]),
        };
        let frame = qtask_data::compute(self.provider, &program, &q, &|| {})?;
        let by_symbol: HashMap<&str, usize> = self
            .symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect();
        let mut out = vec![vec![f32::NAN; self.days]; self.symbols.len()];
        for r in 0..frame.len() {
            let Some(&i) = by_symbol.get(frame.symbol(r)) else {
                continue;
            };
            let t = cal.partition_point(|c| *c < frame.datetime[r]);
            if t >= self.first && t < self.first + self.days {
                let d = t - self.first;
                if self.listed[i][d] {
                    out[i][d] = frame.data[0][r];
                }
            }
        }
        Ok(out)
    }

    /// A price or field: read plainly when it is one `$field`, else evaluated.
    fn column(&self, expr: &str, what: &str) -> Result<Vec<Column>> {
        match is_plain_field(expr) {
            Some(f) => self.plain(f)?.ok_or_else(|| {
                BacktestError::Input(format!(
                    "{what} `{expr}`: no instrument of the exchange has features/<code>/{f}.day.bin \
                     in {}",
                    self.provider.root().display()
                ))
            }),
            None => self.expr(expr),
        }
    }
}

impl Quote {
    /// Loads the exchange's data for calendar indexes `first..first + days`. `codes` interns
    /// every code the backtest may meet; universe members missing from it are added by the
    /// caller beforehand (see [`Quote::universe`]).
    pub fn load(
        provider: &Provider,
        cfg: &ExchangeConfig,
        universe: &[qtask_data::provider::Listed],
        codes: &Codes,
        first: usize,
        days: usize,
    ) -> Result<Quote> {
        let cal = provider.calendar();
        let listed: Vec<Vec<bool>> = universe
            .iter()
            .map(|l| {
                (0..days)
                    .map(|d| {
                        let day = cal[first + d];
                        l.spans.is_empty() || l.spans.iter().any(|&(a, b)| day >= a && day <= b)
                    })
                    .collect()
            })
            .collect();
        let loader = Loader {
            provider,
            symbols: universe.iter().map(|l| l.symbol.clone()).collect(),
            listed,
            first,
            days,
        };
        let close = loader.column("$close", "close price")?;
        // The usual deal price is the close itself: read it once.
        let price = |expr: &str| -> Result<Vec<Column>> {
            if expr.trim() == "$close" {
                Ok(close.clone())
            } else {
                loader.column(expr, "deal price")
            }
        };
        let buy = price(&cfg.deal_price.buy)?;
        let sell = (cfg.deal_price.sell != cfg.deal_price.buy)
            .then(|| price(&cfg.deal_price.sell))
            .transpose()?;
        let n = universe.len();
        let nan_cols = || vec![vec![f32::NAN; days]; n];
        // Qlib reads `$factor` and `$volume` whatever the settings; missing files give NaN.
        let factor = loader.plain("factor")?.unwrap_or_else(nan_cols);
        let volume = loader.plain("volume")?.unwrap_or_else(nan_cols);
        let (limit_buy, limit_sell): (Vec<Vec<bool>>, Vec<Vec<bool>>) = match &cfg.limit_threshold {
            LimitThreshold::None => (vec![vec![false; days]; n], vec![vec![false; days]; n]),
            LimitThreshold::Change(t) => {
                let change = loader.column("$change", "limit_threshold needs")?;
                // Qlib compares its float32 `$change` column with the threshold as float32.
                let (up, down) = (*t as f32, -*t as f32);
                (
                    change
                        .iter()
                        .map(|c| c.iter().map(|v| *v >= up).collect())
                        .collect(),
                    change
                        .iter()
                        .map(|c| c.iter().map(|v| *v <= down).collect())
                        .collect(),
                )
            }
            LimitThreshold::Exprs { buy, sell } => {
                // `astype(bool)`: non-zero and NaN are true.
                let flag = |cols: Vec<Column>| -> Vec<Vec<bool>> {
                    cols.iter()
                        .map(|c| c.iter().map(|v| *v != 0.0).collect())
                        .collect()
                };
                (flag(loader.expr(buy)?), flag(loader.expr(sell)?))
            }
        };
        let mut rows = vec![None; codes.len()];
        let mut q = Quote {
            first,
            days,
            rows: Vec::new(),
            close: Vec::with_capacity(n * days),
            buy: Vec::with_capacity(n * days),
            sell: sell.as_ref().map(|_| Vec::with_capacity(n * days)),
            factor: Vec::with_capacity(n * days),
            volume: Vec::with_capacity(n * days),
            flags: Vec::with_capacity(n * days),
            adj_mode: false,
        };
        for (row, l) in universe.iter().enumerate() {
            let id = codes.id(&l.symbol).ok_or_else(|| {
                BacktestError::Input(format!("internal: {} was not interned", l.symbol))
            })?;
            rows[id as usize] = Some(row as u32);
            for d in 0..days {
                let c = close[row][d];
                // Listing and data gaps are NaN closes: suspended, so never limited otherwise.
                let suspended = c.is_nan();
                let mut f = 0u8;
                if suspended || limit_buy[row][d] {
                    f |= LIMIT_BUY;
                }
                if suspended || limit_sell[row][d] {
                    f |= LIMIT_SELL;
                }
                q.close.push(c);
                q.buy.push(buy[row][d]);
                if let (Some(dst), Some(src)) = (q.sell.as_mut(), sell.as_ref()) {
                    dst.push(src[row][d]);
                }
                q.factor.push(factor[row][d]);
                q.volume.push(volume[row][d]);
                q.flags.push(f);
                if !suspended && factor[row][d].is_nan() {
                    q.adj_mode = true;
                }
            }
        }
        q.rows = rows;
        Ok(q)
    }

    /// The instruments of the exchange's universe listed inside the range. An instrument of
    /// the instruments file without a features folder has no data, so it is left out (Qlib
    /// reads no row for it: it is never tradable either way).
    pub fn universe(
        provider: &Provider,
        cfg: &ExchangeConfig,
        first: usize,
        days: usize,
    ) -> Result<Vec<qtask_data::provider::Listed>> {
        let cal = provider.calendar();
        let (start, end) = (cal[first], cal[first + days - 1]);
        let clip = |spans: &[(chrono::NaiveDate, chrono::NaiveDate)]| {
            spans
                .iter()
                .filter_map(|&(s, e)| {
                    let (s, e) = (s.max(start), e.min(end));
                    (s <= e).then_some((s, e))
                })
                .collect::<Vec<_>>()
        };
        let listed: Vec<qtask_data::provider::Listed> = match &cfg.codes {
            Instruments::Market(m) => provider
                .market(m)?
                .into_iter()
                .map(|(symbol, spans)| qtask_data::provider::Listed {
                    spans: clip(&spans),
                    symbol,
                })
                .filter(|l| !l.spans.is_empty())
                .collect(),
            Instruments::List(codes) => {
                let known: Vec<String> = codes
                    .iter()
                    .filter(|c| provider.symbol_dir(c).is_ok_and(|d| d.is_dir()))
                    .cloned()
                    .collect();
                provider.list_instruments(&Instruments::List(known), start, end)?
            }
            filtered @ Instruments::Filtered { .. } => {
                provider.list_instruments(filtered, start, end)?
            }
        };
        Ok(listed
            .into_iter()
            .filter(|l| provider.symbol_dir(&l.symbol).is_ok_and(|d| d.is_dir()))
            .collect())
    }

    fn cell(&self, inst: u32, day: usize) -> Option<usize> {
        let row = (*self.rows.get(inst as usize)?)? as usize;
        if day < self.first || day >= self.first + self.days {
            return None;
        }
        Some(row * self.days + (day - self.first))
    }

    /// The close of `inst` on calendar day `day` (NaN: suspended or no data).
    pub fn close(&self, inst: u32, day: usize) -> f64 {
        self.cell(inst, day)
            .map_or(f64::NAN, |c| f64::from(self.close[c]))
    }

    /// The raw buy (`sell == false`) or sell deal price (NaN when missing).
    pub fn price(&self, inst: u32, day: usize, sell: bool) -> f64 {
        self.cell(inst, day).map_or(f64::NAN, |c| {
            let v = match (&self.sell, sell) {
                (Some(s), true) => s[c],
                _ => self.buy[c],
            };
            f64::from(v)
        })
    }

    /// `$factor` (NaN when missing).
    pub fn factor(&self, inst: u32, day: usize) -> f64 {
        self.cell(inst, day)
            .map_or(f64::NAN, |c| f64::from(self.factor[c]))
    }

    /// `$volume` (NaN when missing).
    pub fn volume(&self, inst: u32, day: usize) -> f64 {
        self.cell(inst, day)
            .map_or(f64::NAN, |c| f64::from(self.volume[c]))
    }

    /// Whether buying (`sell == false`) or selling is blocked by a limit or a suspension.
    pub fn limited(&self, inst: u32, day: usize, sell: bool) -> bool {
        // A stock without data is never "limited" in Qlib (`get_data` gives None); it is
        // suspended instead, which blocks trading all the same.
        self.cell(inst, day)
            .is_some_and(|c| self.flags[c] & if sell { LIMIT_SELL } else { LIMIT_BUY } != 0)
    }
}
