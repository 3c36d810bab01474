//! qtask-backtest: Qlib's daily backtest, with Qlib's numbers.
//!
//! [`backtest`] runs a prediction table (a `score` per `(datetime, instrument)`) through a
//! strategy ([`config::StrategyConfig`]: Qlib's `TopkDropoutStrategy`, or an equal-weight
//! top-k), a daily `SimulatorExecutor` and an [`exchange::Exchange`] with Qlib's rules (deal
//! prices, costs and minimum cost, price limits, suspensions, trade-unit rounding through
//! `$factor`), and returns Qlib's daily report (`report_normal`: account, return, turnover,
//! cost, value, cash, bench), the positions, the trade indicators and the risk analysis of
//! the excess return ([`BacktestResult`]). Every step follows `qlib/backtest` and
//! `qlib/contrib/strategy/signal_strategy.py` operation for operation, float32 market data
//! included, so results agree with pyqlib's to the last few bits (tested against fixtures
//! produced by pyqlib 0.9.7).
//!
//! [`analysis::SignalAnalysis`] adds the signal diagnostics researchers read next to a
//! backtest (score quantile returns, monthly IC, rank autocorrelation), and
//! [`report::section`] turns both into the charts of `qtask-report`.
#![warn(missing_docs)]

pub mod account;
pub mod analysis;
pub mod bench;
pub mod config;
pub mod engine;
pub mod error;
pub mod exchange;
pub mod numeric;
pub mod order;
pub mod position;
pub mod quote;
pub mod report;
pub mod result;
pub mod risk;
pub mod rng;
pub mod signal;
pub mod strategy;

pub use config::{
    BacktestConfig, Benchmark, DealPrice, ExchangeConfig, LimitThreshold, StrategyConfig,
};
pub use engine::{backtest, backtest_with_progress, check_universe};
pub use error::{BacktestError, Result};
pub use result::BacktestResult;
