//! Binary readers: Qlib's `.bin` feature files, PIT `.data`/`.index` pairs and Parquet tables.
//! Any bytes must be read or refused with an error naming the file; never a crash.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use qtask_data::pit::{Interval, PitFile};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    match kind % 3 {
        0 => {
            let _ = qtask_data::binfile::parse_bin(Path::new("x.day.bin"), rest);
        }
        1 => {
            // The first byte of the rest splits it into a data and an index file.
            let Some((&cut, body)) = rest.split_first() else {
                return;
            };
            let at = (cut as usize * body.len()) / 255;
            let (d, i) = body.split_at(at.min(body.len()));
            for interval in [Interval::Quarterly, Interval::Annual] {
                if let Ok(f) = PitFile::parse(interval, d, i, Path::new("x.data"), Path::new("x.index")) {
                    let _ = f.records.len();
                }
            }
        }
        _ => {
            let _ = qtask_table::PredTable::from_parquet_bytes(rest);
        }
    }
});
