//! Qlib's `Order`: a stock, an adjusted amount, a direction, and what was dealt.

use serde::Serialize;

/// Trading direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    /// Sell (Qlib's `OrderDir.SELL`, 0).
    Sell,
    /// Buy (Qlib's `OrderDir.BUY`, 1).
    Buy,
}

impl Dir {
    /// `+1` for buying, `-1` for selling (Qlib's `Order.sign`).
    pub fn sign(self) -> f64 {
        match self {
            Dir::Buy => 1.0,
            Dir::Sell => -1.0,
        }
    }
}

/// An order and, once executed, its dealt amount.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// Instrument id.
    pub inst: u32,
    /// Adjusted amount asked (non-negative).
    pub amount: f64,
    /// Direction.
    pub dir: Dir,
    /// Adjusted amount dealt.
    pub deal_amount: f64,
}

impl Order {
    /// A new order, nothing dealt yet.
    pub fn new(inst: u32, amount: f64, dir: Dir) -> Order {
        Order {
            inst,
            amount,
            dir,
            deal_amount: 0.0,
        }
    }
}
