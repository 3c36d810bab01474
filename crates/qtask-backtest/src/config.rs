//! What a backtest needs to know: the exchange's rules, the strategy, the account and the
//! benchmark, with Qlib's defaults, read from Qlib's `PortAnaRecord` config as the benchmark
//! YAML files write it.

use chrono::NaiveDate;
use qtask_data::Instruments;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{BacktestError, Result};

/// Periods per year Qlib's `risk_analysis` uses for daily data (`freq="day"`: 238, not 252).
pub const DAY_ANN_SCALER: f64 = 238.0;

/// Where the exchange takes the price of a deal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DealPrice {
    /// Price expression for buying (`$close`, `$open`, `$vwap`, any expression).
    pub buy: String,
    /// Price expression for selling.
    pub sell: String,
}

impl DealPrice {
    /// One price for both directions; a bare name gets Qlib's `$` (`close` -> `$close`).
    pub fn same(price: &str) -> DealPrice {
        let p = dollar(price);
        DealPrice {
            buy: p.clone(),
            sell: p,
        }
    }
}

fn dollar(p: &str) -> String {
    let p = p.trim();
    if p.starts_with('$') {
        p.to_string()
    } else {
        format!("${p}")
    }
}

/// When a stock counts as hitting its price limit (so it cannot be bought or sold).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitThreshold {
    /// No limit (suspended stocks are still untradable).
    None,
    /// `$change >= t` blocks buying, `$change <= -t` blocks selling (compared in float32, as
    /// Qlib's float32 data are).
    Change(f64),
    /// Two expressions: non-zero (or NaN) blocks buying / selling.
    Exprs {
        /// Buy-limit expression.
        buy: String,
        /// Sell-limit expression.
        sell: String,
    },
}

/// Qlib's `Exchange` arguments (daily).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExchangeConfig {
    /// The tradable universe (`codes`, default the market `all`).
    pub codes: Instruments,
    /// Deal prices.
    pub deal_price: DealPrice,
    /// Price limits.
    pub limit_threshold: LimitThreshold,
    /// Cost rate of buying.
    pub open_cost: f64,
    /// Cost rate of selling.
    pub close_cost: f64,
    /// Smallest cost of a deal.
    pub min_cost: f64,
    /// Market impact rate (times the squared share of the day's traded value).
    pub impact_cost: f64,
    /// Shares per lot, applied to the adjusted amount through `$factor`; `None` disables it.
    pub trade_unit: Option<f64>,
    /// First day of market data loaded (default: the backtest's start).
    pub start: Option<NaiveDate>,
    /// Last day of market data loaded (default: the backtest's end).
    pub end: Option<NaiveDate>,
}

impl Default for ExchangeConfig {
    /// `PortAnaRecord`'s default `exchange_kwargs` (close price, limit 0.095, costs
    /// 0.0005/0.0015, min cost 5) with China's trade unit of 100 shares.
    fn default() -> Self {
        ExchangeConfig {
            codes: Instruments::Market("all".into()),
            deal_price: DealPrice::same("close"),
            limit_threshold: LimitThreshold::Change(0.095),
            open_cost: 0.0005,
            close_cost: 0.0015,
            min_cost: 5.0,
            impact_cost: 0.0,
            trade_unit: Some(100.0),
            start: None,
            end: None,
        }
    }
}

/// Which holdings TopkDropoutStrategy sells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodSell {
    /// The lowest-scored holdings.
    Bottom,
    /// Random holdings (NumPy's legacy generator, seeded).
    Random,
}

/// Which candidates TopkDropoutStrategy buys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodBuy {
    /// The highest-scored candidates.
    Top,
    /// Random candidates among the top k (NumPy's legacy generator, seeded).
    Random,
}

/// Qlib's `TopkDropoutStrategy`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopkDropout {
    /// Stocks held.
    pub topk: usize,
    /// Stocks replaced each day.
    pub n_drop: usize,
    /// How to choose what to sell.
    pub method_sell: MethodSell,
    /// How to choose what to buy.
    pub method_buy: MethodBuy,
    /// Days a stock is held before it may be sold.
    pub hold_thresh: f64,
    /// Decide with the day's tradability (skip suspended and limit-hit stocks).
    pub only_tradable: bool,
    /// Trade nothing at a price limit (neither sell at limit-up nor buy at limit-down).
    pub forbid_all_trade_at_limit: bool,
    /// Share of the cash spent on buying.
    pub risk_degree: f64,
}

impl Default for TopkDropout {
    fn default() -> Self {
        TopkDropout {
            topk: 50,
            n_drop: 5,
            method_sell: MethodSell::Bottom,
            method_buy: MethodBuy::Top,
            hold_thresh: 1.0,
            only_tradable: false,
            forbid_all_trade_at_limit: true,
            risk_degree: 0.95,
        }
    }
}

/// Equal weights over the top k scores, traded as Qlib's `WeightStrategyBase` with
/// `OrderGenWOInteract` trades a target weight position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopkWeight {
    /// Stocks held, each with weight `1/topk`.
    pub topk: usize,
    /// Share of the account value invested.
    pub risk_degree: f64,
}

/// The strategy.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "class")]
pub enum StrategyConfig {
    /// `TopkDropoutStrategy`.
    TopkDropoutStrategy(TopkDropout),
    /// `TopkWeightStrategy` (qtask's equal-weight `WeightStrategyBase`).
    TopkWeightStrategy(TopkWeight),
}

/// The module of Qlib's pre-0.8 strategies.
const LEGACY_STRATEGY_MODULE: &str = "qlib.contrib.strategy.strategy";

/// A pre-0.8 portfolio analysis config rewritten as Qlib 0.9 writes it: the strategy gets
/// `signal: <PRED>` (the prediction it was fed) and its 0.9 module; the exchange settings of
/// `backtest` (`limit_threshold`, `deal_price`, costs, `trade_unit`) move into
/// `exchange_kwargs`; `verbose` (printing only) is dropped.
fn modernize(config: &Value) -> Result<Value> {
    let mut c = config.clone();
    let strategy = c
        .get_mut("strategy")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| cfg("portfolio analysis config: `strategy` must be a map"))?;
    strategy.insert("module_path".into(), Value::from("qlib.contrib.strategy"));
    let kwargs = strategy
        .entry("kwargs")
        .or_insert_with(|| Value::Object(Default::default()));
    if let Some(kw) = kwargs.as_object_mut()
        && !["signal", "model", "dataset"]
            .iter()
            .any(|k| kw.contains_key(*k))
    {
        kw.insert("signal".into(), Value::from("<PRED>"));
    }
    if let Some(bt) = c.get_mut("backtest").and_then(Value::as_object_mut) {
        bt.remove("verbose");
        let mut exchange = bt
            .remove("exchange_kwargs")
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        for k in [
            "limit_threshold",
            "deal_price",
            "open_cost",
            "close_cost",
            "min_cost",
            "impact_cost",
            "trade_unit",
        ] {
            if let Some(v) = bt.remove(k) {
                exchange.insert(k.into(), v);
            }
        }
        if !exchange.is_empty() {
            bt.insert("exchange_kwargs".into(), Value::Object(exchange));
        }
    }
    Ok(c)
}

impl StrategyConfig {
    /// The number of stocks the strategy holds.
    pub fn topk(&self) -> usize {
        match self {
            StrategyConfig::TopkDropoutStrategy(s) => s.topk,
            StrategyConfig::TopkWeightStrategy(s) => s.topk,
        }
    }
}

/// The daily return the portfolio is compared with.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Benchmark {
    /// No benchmark: `bench` is 0.
    None,
    /// One instrument's daily change (`$close / Ref($close, 1) - 1`).
    Code(String),
    /// The equal-weighted mean daily change of these instruments.
    Codes(Vec<String>),
}

/// The starting account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountConfig {
    /// Cash.
    pub cash: f64,
    /// Stocks held at the start: code, adjusted amount and price (the last close before the
    /// start within 30 days when `None`).
    pub stocks: Vec<(String, f64, Option<f64>)>,
}

/// How the executor orders a day's orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TradeType {
    /// In the strategy's order (sells first): Qlib's default.
    Serial,
    /// Buys before sells (sale proceeds cannot pay for the day's buys).
    Parallel,
}

/// How a day's trade indicators average over orders (Qlib's `weight_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightMethod {
    /// Plain mean over orders.
    Mean,
    /// Weighted by the dealt amount.
    AmountWeighted,
    /// Weighted by the traded value.
    ValueWeighted,
}

impl WeightMethod {
    /// Reads `mean`, `amount_weighted` or `value_weighted`.
    pub fn parse(what: &str, v: &Value) -> Result<WeightMethod> {
        match v.as_str() {
            Some("mean") => Ok(WeightMethod::Mean),
            Some("amount_weighted") => Ok(WeightMethod::AmountWeighted),
            Some("value_weighted") => Ok(WeightMethod::ValueWeighted),
            _ => Err(cfg(format!(
                "{what}: `{v}` is not one of mean, amount_weighted, value_weighted"
            ))),
        }
    }
}

/// A complete backtest configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestConfig {
    /// First trading day (default: the prediction's first day).
    pub start: Option<NaiveDate>,
    /// Last trading day (default: the trading day after the prediction's last).
    pub end: Option<NaiveDate>,
    /// Starting account.
    pub account: AccountConfig,
    /// Benchmark.
    pub benchmark: Benchmark,
    /// Exchange rules.
    pub exchange: ExchangeConfig,
    /// Strategy.
    pub strategy: StrategyConfig,
    /// Executor order of a day's orders.
    pub trade_type: TradeType,
    /// How a day's fill rate averages over orders.
    pub ffr_weight: WeightMethod,
    /// How a day's price advantage averages over orders.
    pub pa_weight: WeightMethod,
    /// How the whole run's fill rate and price advantage average over days
    /// (`PortAnaRecord`'s `indicator_analysis_method`).
    pub indicator_method: WeightMethod,
    /// `np.random.seed` for random buying/selling (`None`: drawn from the clock and reported).
    pub seed: Option<u32>,
    /// Periods per year of `risk_analysis` (238 for daily data, as Qlib).
    pub ann_scaler: f64,
}

impl Default for BacktestConfig {
    /// `PortAnaRecord`'s default config: TopkDropoutStrategy(topk=50, n_drop=5), account
    /// 100,000,000, benchmark SH000300, the default exchange.
    fn default() -> Self {
        BacktestConfig {
            start: None,
            end: None,
            account: AccountConfig {
                cash: 100_000_000.0,
                stocks: Vec::new(),
            },
            benchmark: Benchmark::Code("SH000300".into()),
            exchange: ExchangeConfig::default(),
            strategy: StrategyConfig::TopkDropoutStrategy(TopkDropout::default()),
            trade_type: TradeType::Serial,
            ffr_weight: WeightMethod::Mean,
            pa_weight: WeightMethod::Mean,
            indicator_method: WeightMethod::Mean,
            seed: None,
            ann_scaler: DAY_ANN_SCALER,
        }
    }
}

fn cfg(msg: impl Into<String>) -> BacktestError {
    BacktestError::Config(msg.into())
}

/// Parses `YYYY-MM-DD` (a time after it is ignored; `null` is `None`).
pub fn parse_date_value(what: &str, v: Option<&Value>) -> Result<Option<NaiveDate>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => qtask_data::provider::parse_date(s)
            .map(Some)
            .ok_or_else(|| cfg(format!("{what}: `{s}` is not a date (YYYY-MM-DD)"))),
        Some(other) => Err(cfg(format!("{what}: `{other}` is not a date (YYYY-MM-DD)"))),
    }
}

fn num(what: &str, v: &Value) -> Result<f64> {
    v.as_f64()
        .filter(|x| x.is_finite())
        .ok_or_else(|| cfg(format!("{what}: `{v}` is not a number")))
}

fn non_negative(what: &str, v: &Value) -> Result<f64> {
    let x = num(what, v)?;
    if x < 0.0 {
        return Err(cfg(format!("{what}: {x} must not be negative")));
    }
    Ok(x)
}

fn count(what: &str, v: &Value) -> Result<usize> {
    v.as_u64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
        .map(|u| u as usize)
        .ok_or_else(|| cfg(format!("{what}: `{v}` is not a non-negative integer")))
}

fn boolean(what: &str, v: &Value) -> Result<bool> {
    v.as_bool()
        .ok_or_else(|| cfg(format!("{what}: `{v}` is not true or false")))
}

fn kwargs<'a>(what: &str, v: &'a Value) -> Result<Option<&'a Map<String, Value>>> {
    match v.get("kwargs") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(cfg(format!("{what}: `kwargs` must be a map, got {other}"))),
    }
}

fn class_of<'a>(what: &str, v: &'a Value) -> Result<&'a str> {
    v.get("class")
        .and_then(Value::as_str)
        .ok_or_else(|| cfg(format!("{what} needs a `class`, got {v}")))
}

/// Where the strategy's signal comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalSource {
    /// The task's own prediction (`<PRED>`, or `[<MODEL>, <DATASET>]` on the test segment).
    TaskPrediction,
}

fn parse_signal(v: &Value) -> Result<SignalSource> {
    let is = |x: &Value, s: &str| x.as_str().map(str::trim) == Some(s);
    match v {
        Value::String(_) if is(v, "<PRED>") => Ok(SignalSource::TaskPrediction),
        Value::Array(a) if a.len() == 2 && is(&a[0], "<MODEL>") && is(&a[1], "<DATASET>") => {
            Ok(SignalSource::TaskPrediction)
        }
        other => Err(cfg(format!(
            "strategy signal `{other}` is not supported: use <PRED> or [<MODEL>, <DATASET>] \
             (the task's prediction)"
        ))),
    }
}

impl StrategyConfig {
    /// Reads `{class, module_path (ignored), kwargs}` of a strategy. The signal must be the
    /// task's prediction; `seed` (a qtask extension) seeds random buying/selling.
    pub fn from_qlib(v: &Value) -> Result<(StrategyConfig, Option<u32>)> {
        let class = class_of("the strategy", v)?;
        let kw = kwargs(class, v)?;
        let mut seed = None;
        let mut signal_seen = false;
        let strategy = match class {
            "TopkDropoutStrategy" => {
                let mut s = TopkDropout::default();
                let (mut topk, mut n_drop) = (None, None);
                for (k, val) in kw.into_iter().flatten() {
                    let what = format!("TopkDropoutStrategy `{k}`");
                    match k.as_str() {
                        "signal" => {
                            parse_signal(val)?;
                            signal_seen = true;
                        }
                        "model" | "dataset" => signal_seen = true,
                        "topk" => topk = Some(count(&what, val)?),
                        "n_drop" => n_drop = Some(count(&what, val)?),
                        "method_sell" => {
                            s.method_sell = match val.as_str() {
                                Some("bottom") => MethodSell::Bottom,
                                Some("random") => MethodSell::Random,
                                _ => {
                                    return Err(cfg(format!(
                                        "{what}: `{val}` is not bottom or random"
                                    )));
                                }
                            }
                        }
                        "method_buy" => {
                            s.method_buy = match val.as_str() {
                                Some("top") => MethodBuy::Top,
                                Some("random") => MethodBuy::Random,
                                _ => {
                                    return Err(cfg(format!(
                                        "{what}: `{val}` is not top or random"
                                    )));
                                }
                            }
                        }
                        "hold_thresh" => s.hold_thresh = num(&what, val)?,
                        "only_tradable" => s.only_tradable = boolean(&what, val)?,
                        "forbid_all_trade_at_limit" => {
                            s.forbid_all_trade_at_limit = boolean(&what, val)?
                        }
                        "risk_degree" => s.risk_degree = non_negative(&what, val)?,
                        "seed" => seed = Some(parse_seed(val)?),
                        "trade_exchange" | "level_infra" | "common_infra" if val.is_null() => {}
                        other => {
                            return Err(cfg(format!(
                                "TopkDropoutStrategy: unknown argument `{other}`"
                            )));
                        }
                    }
                }
                s.topk = topk.ok_or_else(|| cfg("TopkDropoutStrategy needs `topk`"))?;
                s.n_drop = n_drop.ok_or_else(|| cfg("TopkDropoutStrategy needs `n_drop`"))?;
                StrategyConfig::TopkDropoutStrategy(s)
            }
            "TopkWeightStrategy" => {
                let mut s = TopkWeight {
                    topk: 0,
                    risk_degree: 0.95,
                };
                let mut topk = None;
                for (k, val) in kw.into_iter().flatten() {
                    let what = format!("TopkWeightStrategy `{k}`");
                    match k.as_str() {
                        "signal" => {
                            parse_signal(val)?;
                            signal_seen = true;
                        }
                        "model" | "dataset" => signal_seen = true,
                        "topk" => topk = Some(count(&what, val)?),
                        "risk_degree" => s.risk_degree = non_negative(&what, val)?,
                        "order_generator_cls_or_obj"
                            if val
                                .as_str()
                                .is_some_and(|c| c.ends_with("OrderGenWOInteract")) => {}
                        other => {
                            return Err(cfg(format!(
                                "TopkWeightStrategy: unknown argument `{other}`"
                            )));
                        }
                    }
                }
                s.topk = topk.ok_or_else(|| cfg("TopkWeightStrategy needs `topk`"))?;
                StrategyConfig::TopkWeightStrategy(s)
            }
            other => {
                return Err(cfg(format!(
                    "unknown strategy class `{other}` (supported: TopkDropoutStrategy, \
                     TopkWeightStrategy)"
                )));
            }
        };
        if !signal_seen {
            return Err(cfg(format!(
                "{class} needs `signal: <PRED>` (or [<MODEL>, <DATASET>])"
            )));
        }
        if strategy.topk() == 0 {
            return Err(cfg(format!("{class}: `topk` must be at least 1")));
        }
        Ok((strategy, seed))
    }
}

fn parse_seed(v: &Value) -> Result<u32> {
    v.as_u64()
        .filter(|s| *s <= u64::from(u32::MAX))
        .map(|s| s as u32)
        .ok_or_else(|| {
            cfg(format!(
                "strategy `seed`: `{v}` is not an integer in 0..=4294967295"
            ))
        })
}

/// The executor settings qtask honours (only Qlib's daily `SimulatorExecutor` exists here).
struct ExecutorSettings {
    trade_type: TradeType,
    ffr_weight: WeightMethod,
    pa_weight: WeightMethod,
}

fn parse_executor(v: Option<&Value>) -> Result<ExecutorSettings> {
    let mut out = ExecutorSettings {
        trade_type: TradeType::Serial,
        ffr_weight: WeightMethod::Mean,
        pa_weight: WeightMethod::Mean,
    };
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(out);
    };
    let class = class_of("the executor", v)?;
    if class != "SimulatorExecutor" {
        return Err(cfg(format!(
            "unknown executor class `{class}` (supported: SimulatorExecutor with \
             time_per_step: day)"
        )));
    }
    let mut metrics = false;
    let mut step = None;
    for (k, val) in kwargs(class, v)?.into_iter().flatten() {
        let what = format!("SimulatorExecutor `{k}`");
        match k.as_str() {
            "time_per_step" => step = val.as_str().map(str::to_string),
            "generate_portfolio_metrics" => metrics = boolean(&what, val)?,
            "verbose" | "track_data" => {
                boolean(&what, val)?;
            }
            "trade_type" => {
                out.trade_type = match val.as_str() {
                    Some("serial") => TradeType::Serial,
                    Some("parallel") => TradeType::Parallel,
                    _ => return Err(cfg(format!("{what}: `{val}` is not serial or parallel"))),
                }
            }
            "settle_type" if val.is_null() || val.as_str() == Some("None") => {}
            "indicator_config" => {
                for (ik, iv) in val.as_object().into_iter().flatten() {
                    match ik.as_str() {
                        "show_indicator" => {}
                        "ffr_config" | "pa_config" => {
                            for (ck, cv) in iv.as_object().into_iter().flatten() {
                                match ck.as_str() {
                                    "weight_method" => {
                                        let m = WeightMethod::parse(&format!("{ik}.{ck}"), cv)?;
                                        if ik == "ffr_config" {
                                            out.ffr_weight = m;
                                        } else {
                                            out.pa_weight = m;
                                        }
                                    }
                                    "agg" | "price" => {}
                                    other => {
                                        return Err(cfg(format!(
                                            "SimulatorExecutor indicator_config.{ik}: unknown key `{other}`"
                                        )));
                                    }
                                }
                            }
                        }
                        other => {
                            return Err(cfg(format!(
                                "SimulatorExecutor indicator_config: unknown key `{other}`"
                            )));
                        }
                    }
                }
            }
            "inner_executor" | "inner_strategy" => {
                return Err(cfg(
                    "nested executors are not supported (SimulatorExecutor, day only)",
                ));
            }
            other => {
                return Err(cfg(format!(
                    "SimulatorExecutor: unknown argument `{other}`"
                )));
            }
        }
    }
    match step.as_deref() {
        Some("day") | Some("1day") | Some("1d") | Some("d") => {}
        Some(other) => {
            return Err(cfg(format!(
                "SimulatorExecutor time_per_step `{other}` is not supported (day only)"
            )));
        }
        None => return Err(cfg("SimulatorExecutor needs `time_per_step: day`")),
    }
    if !metrics {
        return Err(cfg(
            "SimulatorExecutor needs `generate_portfolio_metrics: true` for a portfolio analysis",
        ));
    }
    Ok(out)
}

fn parse_codes(v: &Value) -> Result<Instruments> {
    match v {
        Value::String(s) => Ok(Instruments::Market(s.clone())),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| cfg(format!("exchange `codes`: `{x}` is not a code")))
            })
            .collect::<Result<_>>()
            .map(Instruments::List),
        other => Err(cfg(format!(
            "exchange `codes`: `{other}` is not a market name or a list of codes"
        ))),
    }
}

impl ExchangeConfig {
    /// Reads Qlib's `exchange_kwargs`: missing keys take `Exchange`'s own defaults (open cost
    /// 0.0015, close cost 0.0025, min cost 5, close price, limit 0.095, trade unit 100).
    pub fn from_qlib(v: Option<&Value>) -> Result<ExchangeConfig> {
        let mut e = ExchangeConfig {
            open_cost: 0.0015,
            close_cost: 0.0025,
            ..ExchangeConfig::default()
        };
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return Ok(e);
        };
        let m = v
            .as_object()
            .ok_or_else(|| cfg(format!("`exchange_kwargs` must be a map, got {v}")))?;
        for (k, val) in m {
            let what = format!("exchange `{k}`");
            match k.as_str() {
                "freq" => {
                    if !matches!(val.as_str(), Some("day") | Some("1day") | Some("1d")) {
                        return Err(cfg(format!("{what}: `{val}` is not supported (day only)")));
                    }
                }
                "codes" => e.codes = parse_codes(val)?,
                "deal_price" => {
                    e.deal_price = match val {
                        Value::Null => DealPrice::same("close"),
                        Value::String(s) => DealPrice::same(s),
                        Value::Array(a) if a.len() == 2 && a.iter().all(Value::is_string) => {
                            DealPrice {
                                buy: dollar(a[0].as_str().unwrap_or_default()),
                                sell: dollar(a[1].as_str().unwrap_or_default()),
                            }
                        }
                        other => {
                            return Err(cfg(format!(
                                "{what}: `{other}` is not a price or a [buy, sell] pair"
                            )));
                        }
                    }
                }
                "limit_threshold" => {
                    e.limit_threshold = match val {
                        // Qlib's region default (cn: 0.095) replaces None.
                        Value::Null => LimitThreshold::Change(0.095),
                        Value::Number(_) => LimitThreshold::Change(num(&what, val)?),
                        Value::Array(a) if a.len() == 2 && a.iter().all(Value::is_string) => {
                            LimitThreshold::Exprs {
                                buy: a[0].as_str().unwrap_or_default().to_string(),
                                sell: a[1].as_str().unwrap_or_default().to_string(),
                            }
                        }
                        other => {
                            return Err(cfg(format!(
                                "{what}: `{other}` is not a number or a [buy, sell] pair of \
                                 expressions"
                            )));
                        }
                    }
                }
                "volume_threshold" => {
                    if !val.is_null() {
                        return Err(cfg(
                            "exchange `volume_threshold` is not supported yet (remove it to \
                             trade without volume limits)",
                        ));
                    }
                }
                "extra_quote" | "quote_cls" => {
                    if !val.is_null() {
                        return Err(cfg(format!("{what} is not supported")));
                    }
                }
                "subscribe_fields" => {}
                "open_cost" => e.open_cost = non_negative(&what, val)?,
                "close_cost" => e.close_cost = non_negative(&what, val)?,
                "min_cost" => e.min_cost = non_negative(&what, val)?,
                "impact_cost" => e.impact_cost = non_negative(&what, val)?,
                "trade_unit" => {
                    e.trade_unit = match val {
                        Value::Null => None,
                        _ => {
                            let u = num(&what, val)?;
                            if u <= 0.0 {
                                return Err(cfg(format!("{what}: {u} must be positive")));
                            }
                            Some(u)
                        }
                    }
                }
                "start_time" => e.start = parse_date_value(&what, Some(val))?,
                "end_time" => e.end = parse_date_value(&what, Some(val))?,
                other => {
                    return Err(cfg(format!("exchange_kwargs: unknown argument `{other}`")));
                }
            }
        }
        Ok(e)
    }
}

fn parse_benchmark(v: Option<&Value>) -> Result<Benchmark> {
    match v {
        // Qlib's backtest() defaults to SH000300 when the key is missing; null means none.
        None => Ok(Benchmark::Code("SH000300".into())),
        Some(Value::Null) => Ok(Benchmark::None),
        Some(Value::String(s)) => Ok(Benchmark::Code(s.trim().to_uppercase())),
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(|s| s.trim().to_uppercase())
                    .ok_or_else(|| cfg(format!("benchmark: `{x}` is not an instrument code")))
            })
            .collect::<Result<_>>()
            .map(Benchmark::Codes),
        Some(other) => Err(cfg(format!(
            "benchmark: `{other}` is not an instrument code or a list of them"
        ))),
    }
}

fn parse_account(v: Option<&Value>) -> Result<AccountConfig> {
    match v {
        None => Ok(AccountConfig {
            cash: 1e9,
            stocks: Vec::new(),
        }),
        Some(Value::Number(_)) => Ok(AccountConfig {
            cash: non_negative("account", v.unwrap_or(&Value::Null))?,
            stocks: Vec::new(),
        }),
        Some(Value::Object(m)) => {
            let cash = m
                .get("cash")
                .ok_or_else(|| cfg("account: a map account needs `cash`"))?;
            let mut a = AccountConfig {
                cash: non_negative("account cash", cash)?,
                stocks: Vec::new(),
            };
            for (code, s) in m.iter().filter(|(k, _)| k.as_str() != "cash") {
                let what = format!("account `{code}`");
                let (amount, price) = match s {
                    Value::Number(_) => (non_negative(&what, s)?, None),
                    Value::Object(sm) => (
                        non_negative(
                            &what,
                            sm.get("amount")
                                .ok_or_else(|| cfg(format!("{what} needs `amount`")))?,
                        )?,
                        sm.get("price")
                            .filter(|p| !p.is_null())
                            .map(|p| non_negative(&what, p))
                            .transpose()?,
                    ),
                    other => {
                        return Err(cfg(format!(
                            "{what}: `{other}` is not an amount or {{amount, price}}"
                        )));
                    }
                };
                a.stocks.push((code.trim().to_uppercase(), amount, price));
            }
            Ok(a)
        }
        Some(other) => Err(cfg(format!(
            "account: `{other}` is not a cash amount or a map with `cash`"
        ))),
    }
}

impl BacktestConfig {
    /// Reads Qlib's `PortAnaRecord` config: `strategy`, optional `executor` (daily
    /// `SimulatorExecutor` only) and `backtest` (`start_time`, `end_time`, `account`,
    /// `benchmark`, `exchange_kwargs`, `pos_type`).
    pub fn from_port_analysis(config: &Value) -> Result<BacktestConfig> {
        let m = config.as_object().ok_or_else(|| {
            cfg(format!(
                "the portfolio analysis config must be a map, got {config}"
            ))
        })?;
        for k in m.keys() {
            if !["strategy", "executor", "backtest"].contains(&k.as_str()) {
                return Err(cfg(format!(
                    "portfolio analysis config: unknown key `{k}` (expected strategy, executor, backtest)"
                )));
            }
        }
        let strategy_v = m
            .get("strategy")
            .ok_or_else(|| cfg("portfolio analysis config needs `strategy`"))?;
        // Some configs in Qlib's repository still use the pre-0.8 backtest (a strategy from
        // `qlib.contrib.strategy.strategy` fed the prediction implicitly, exchange settings
        // flat in `backtest`): read them as the 0.9 config they mean.
        if strategy_v.get("module_path").and_then(Value::as_str) == Some(LEGACY_STRATEGY_MODULE) {
            return BacktestConfig::from_port_analysis(&modernize(config)?);
        }
        let (strategy, seed) = StrategyConfig::from_qlib(strategy_v)?;
        let exec = parse_executor(m.get("executor"))?;
        let bt = m
            .get("backtest")
            .ok_or_else(|| cfg("portfolio analysis config needs `backtest`"))?;
        let bm = bt
            .as_object()
            .ok_or_else(|| cfg(format!("`backtest` must be a map, got {bt}")))?;
        for (k, v) in bm {
            match k.as_str() {
                "start_time" | "end_time" | "account" | "benchmark" | "exchange_kwargs" => {}
                "pos_type" if v.as_str() == Some("Position") => {}
                "pos_type" => {
                    return Err(cfg(format!(
                        "backtest pos_type `{v}` is not supported (Position only)"
                    )));
                }
                other => return Err(cfg(format!("backtest: unknown argument `{other}`"))),
            }
        }
        Ok(BacktestConfig {
            start: parse_date_value("backtest start_time", bm.get("start_time"))?,
            end: parse_date_value("backtest end_time", bm.get("end_time"))?,
            account: parse_account(bm.get("account"))?,
            benchmark: parse_benchmark(bm.get("benchmark"))?,
            exchange: ExchangeConfig::from_qlib(bm.get("exchange_kwargs"))?,
            strategy,
            trade_type: exec.trade_type,
            ffr_weight: exec.ffr_weight,
            pa_weight: exec.pa_weight,
            indicator_method: WeightMethod::Mean,
            seed,
            ann_scaler: DAY_ANN_SCALER,
        })
    }

    /// Checks what can be checked before any work: the benchmark instruments and the
    /// exchange's market exist in `provider`'s data.
    pub fn check_data(&self, provider: &qtask_data::Provider) -> Result<()> {
        let codes: Vec<&String> = match &self.benchmark {
            Benchmark::None => Vec::new(),
            Benchmark::Code(c) => vec![c],
            Benchmark::Codes(cs) => cs.iter().collect(),
        };
        for code in codes {
            let path = provider.symbol_dir(code)?.join("close.day.bin");
            if !path.is_file() {
                return Err(BacktestError::Input(format!(
                    "benchmark {code} is not in the data: {} does not exist",
                    path.display()
                )));
            }
        }
        if let Instruments::Market(m) = &self.exchange.codes {
            provider.market(m)?;
        }
        Ok(())
    }

    /// The default config of `PortAnaRecord` when a record gives none.
    pub fn port_analysis_default() -> BacktestConfig {
        BacktestConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_pre_0_8_format_reads_as_its_0_9_equivalent() {
        let legacy = json!({
            "strategy": {"class": "TopkDropoutStrategy",
                         "module_path": "qlib.contrib.strategy.strategy",
                         "kwargs": {"topk": 50, "n_drop": 5}},
            "backtest": {"verbose": false, "limit_threshold": 0.095, "account": 100000000,
                         "benchmark": "SH000300", "deal_price": "close", "open_cost": 0.0005,
                         "close_cost": 0.0015, "min_cost": 5}
        });
        let modern = json!({
            "strategy": {"class": "TopkDropoutStrategy", "module_path": "qlib.contrib.strategy",
                         "kwargs": {"signal": "<PRED>", "topk": 50, "n_drop": 5}},
            "backtest": {"account": 100000000, "benchmark": "SH000300",
                         "exchange_kwargs": {"limit_threshold": 0.095, "deal_price": "close",
                                             "open_cost": 0.0005, "close_cost": 0.0015,
                                             "min_cost": 5}}
        });
        assert_eq!(
            BacktestConfig::from_port_analysis(&legacy).unwrap(),
            BacktestConfig::from_port_analysis(&modern).unwrap()
        );
        // An unknown key is still refused.
        let mut bad = legacy.clone();
        bad["backtest"]["leverage"] = json!(2);
        let err = BacktestConfig::from_port_analysis(&bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("leverage"), "{err}");
    }

    fn benchmark_yaml_config() -> Value {
        json!({
            "strategy": {"class": "TopkDropoutStrategy", "module_path": "qlib.contrib.strategy",
                         "kwargs": {"signal": ["<MODEL>", "<DATASET>"], "topk": 50, "n_drop": 5}},
            "backtest": {"start_time": "2017-01-01", "end_time": "2020-08-01", "account": 100000000,
                         "benchmark": "SH000300",
                         "exchange_kwargs": {"limit_threshold": 0.095, "deal_price": "close",
                                             "open_cost": 0.0005, "close_cost": 0.0015, "min_cost": 5}}
        })
    }

    #[test]
    fn reads_the_benchmark_yaml_config() {
        let c = BacktestConfig::from_port_analysis(&benchmark_yaml_config()).unwrap();
        assert_eq!(c.start, NaiveDate::from_ymd_opt(2017, 1, 1));
        assert_eq!(c.account.cash, 1e8);
        assert_eq!(c.benchmark, Benchmark::Code("SH000300".into()));
        assert_eq!(c.exchange.deal_price, DealPrice::same("$close"));
        assert_eq!(c.exchange.limit_threshold, LimitThreshold::Change(0.095));
        assert_eq!(c.exchange.trade_unit, Some(100.0));
        assert_eq!(c.exchange.impact_cost, 0.0);
        let StrategyConfig::TopkDropoutStrategy(s) = &c.strategy else {
            panic!("not topk dropout")
        };
        assert_eq!((s.topk, s.n_drop, s.risk_degree), (50, 5, 0.95));
    }

    #[test]
    fn missing_exchange_costs_take_the_exchange_defaults() {
        let mut v = benchmark_yaml_config();
        v["backtest"]["exchange_kwargs"] = json!({});
        let c = BacktestConfig::from_port_analysis(&v).unwrap();
        assert_eq!(
            (c.exchange.open_cost, c.exchange.close_cost),
            (0.0015, 0.0025)
        );
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        let err = |patch: &dyn Fn(&mut Value)| {
            let mut v = benchmark_yaml_config();
            patch(&mut v);
            BacktestConfig::from_port_analysis(&v)
                .unwrap_err()
                .to_string()
        };
        assert!(
            err(&|v| v["strategy"]["class"] = json!("SoftTopkStrategy"))
                .contains("unknown strategy class `SoftTopkStrategy`")
        );
        assert!(
            err(&|v| v["executor"] = json!({"class": "NestedExecutor", "kwargs": {}}))
                .contains("unknown executor class `NestedExecutor`")
        );
        assert!(
            err(&|v| v["executor"] = json!({"class": "SimulatorExecutor",
            "kwargs": {"time_per_step": "30min", "generate_portfolio_metrics": true}}))
            .contains("day only")
        );
        assert!(
            err(&|v| v["backtest"]["exchange_kwargs"]["volume_threshold"] =
                json!(["cum", "0.2 * $volume"]))
            .contains("`volume_threshold` is not supported")
        );
        assert!(err(&|v| v["strategy"]["kwargs"]["signal"] = json!("pred.pkl")).contains("signal"));
        assert!(err(&|v| v["strategy"]["kwargs"]["topkk"] = json!(3)).contains("`topkk`"));
    }

    #[test]
    fn reads_pairs_lists_and_account_maps() {
        let mut v = benchmark_yaml_config();
        v["backtest"]["exchange_kwargs"]["deal_price"] = json!(["open", "$close"]);
        v["backtest"]["exchange_kwargs"]["limit_threshold"] =
            json!(["$change > 0.1", "$change < -0.1"]);
        v["backtest"]["benchmark"] = json!(["sh600000", "SH600001"]);
        v["backtest"]["account"] =
            json!({"cash": 1000, "SH600000": {"amount": 100, "price": 3.5}, "SH600001": 200});
        let c = BacktestConfig::from_port_analysis(&v).unwrap();
        assert_eq!(c.exchange.deal_price.buy, "$open");
        assert_eq!(c.exchange.deal_price.sell, "$close");
        assert!(matches!(
            c.exchange.limit_threshold,
            LimitThreshold::Exprs { .. }
        ));
        assert_eq!(
            c.benchmark,
            Benchmark::Codes(vec!["SH600000".into(), "SH600001".into()])
        );
        assert_eq!(c.account.cash, 1000.0);
        assert_eq!(c.account.stocks.len(), 2);
    }
}
