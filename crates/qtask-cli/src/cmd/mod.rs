//! One module per subcommand.

pub mod bench;
pub mod bench_ensemble;
pub mod bench_features;
pub mod bench_pit;
pub mod bench_pool;
pub mod bench_rolling;
pub mod bench_scale;
pub mod collect;
pub mod data;
pub mod ensemble;
pub mod example;
pub mod exp;
pub mod generate;
pub mod manage;
pub mod qrun;
pub mod report;
pub mod rolling;
pub mod study;
pub mod train;
pub mod worker;
