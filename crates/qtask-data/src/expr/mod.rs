//! Qlib's expression language: parsing, the operator kernels and shared evaluation.

pub mod ast;
pub mod eval;
pub mod npmath;
pub mod parse;
pub mod rolling;

pub use ast::Expr;
pub use eval::{Inputs, PitQuery, Program};
pub use parse::parse;
