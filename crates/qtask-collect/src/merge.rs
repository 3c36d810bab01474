//! A k-way merge of several tables in `(datetime, instrument)` order, as if they were
//! concatenated in the given order and then stably sorted: equal keys come out in
//! concatenation order. Both ensembles are a linear pass over this stream, so no
//! concatenated copy of the inputs is ever built.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use qtask_table::PredTable;

/// Instruments of all pieces, sorted, with each piece's local ids mapped to global ones so
/// that comparing global ids compares instrument names.
pub(crate) struct Dictionary {
    pub names: Vec<String>,
    pub local_to_global: Vec<Vec<u32>>,
}

impl Dictionary {
    pub fn build(pieces: &[&PredTable]) -> Dictionary {
        let all: BTreeSet<&str> = pieces
            .iter()
            .flat_map(|t| t.instruments().iter().map(String::as_str))
            .collect();
        let global: HashMap<&str, u32> = all
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, i as u32))
            .collect();
        let local_to_global = pieces
            .iter()
            .map(|t| t.instruments().iter().map(|s| global[s.as_str()]).collect())
            .collect();
        Dictionary {
            names: all.into_iter().map(str::to_string).collect(),
            local_to_global,
        }
    }
}

/// One piece's rows in key order.
struct Cursor<'a> {
    datetimes: &'a [i64],
    gids: Vec<u32>,
    /// Row order (a stable sort of the piece); `None` when the piece is already sorted.
    order: Option<Vec<u32>>,
    next: usize,
}

impl Cursor<'_> {
    fn row(&self, i: usize) -> usize {
        self.order.as_ref().map_or(i, |o| o[i] as usize)
    }

    fn key(&self, i: usize) -> (i64, u32) {
        let r = self.row(i);
        (self.datetimes[r], self.gids[r])
    }
}

/// Calls `emit(datetime, global instrument id, piece index, row)` for every row of every
/// piece, in `(datetime, instrument, piece index, position in the piece)` order.
pub(crate) fn merge<E>(
    pieces: &[&PredTable],
    dict: &Dictionary,
    mut emit: E,
) -> Result<(), crate::CollectError>
where
    E: FnMut(i64, u32, usize, usize) -> Result<(), crate::CollectError>,
{
    let mut cursors: Vec<Cursor> = pieces
        .iter()
        .zip(&dict.local_to_global)
        .map(|(t, map)| {
            let gids: Vec<u32> = t
                .instrument_ids()
                .iter()
                .map(|&id| map[id as usize])
                .collect();
            let dts = t.datetimes_ns();
            let sorted = (1..dts.len()).all(|i| (dts[i - 1], gids[i - 1]) <= (dts[i], gids[i]));
            let order = (!sorted).then(|| {
                // The row index in the key makes an unstable sort stable.
                let mut keys: Vec<(i64, u32, u32)> = (0..dts.len())
                    .map(|i| (dts[i], gids[i], i as u32))
                    .collect();
                keys.sort_unstable();
                keys.into_iter().map(|k| k.2).collect()
            });
            Cursor {
                datetimes: dts,
                gids,
                order,
                next: 0,
            }
        })
        .collect();

    let mut heap: BinaryHeap<Reverse<(i64, u32, usize)>> = BinaryHeap::new();
    for (p, c) in cursors.iter().enumerate() {
        if !c.datetimes.is_empty() {
            let (dt, gid) = c.key(0);
            heap.push(Reverse((dt, gid, p)));
        }
    }
    while let Some(Reverse((_, _, p))) = heap.pop() {
        // Drain this piece while it stays ahead of every other piece: rolling windows
        // barely overlap, so most rows never touch the heap.
        let bound = heap.peek().map(|Reverse(top)| *top);
        let c = &mut cursors[p];
        loop {
            let (dt, gid) = c.key(c.next);
            emit(dt, gid, p, c.row(c.next))?;
            c.next += 1;
            if c.next == c.datetimes.len() {
                break;
            }
            let (ndt, ngid) = c.key(c.next);
            let ahead = match bound {
                None => true,
                Some(b) => (ndt, ngid, p) < b,
            };
            if !ahead {
                heap.push(Reverse((ndt, ngid, p)));
                break;
            }
        }
    }
    Ok(())
}
