//! One module per subcommand.

pub mod backtest;
pub mod bench;
pub mod collect;
pub mod data;
pub mod ensemble;
pub mod example;
pub mod exp;
pub mod generate;
pub mod manage;
pub mod online;
pub mod predict;
pub mod qrun;
pub mod report;
pub mod rolling;
pub mod train;
pub mod ui;
pub mod worker;
