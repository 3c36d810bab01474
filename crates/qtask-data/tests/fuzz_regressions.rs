//! Replays the inputs kept in `fuzz/regressions/{expr,readers}/` (see `scripts/fuzz.sh`): each
//! must be read (compiled, evaluated) or refused with an error, on a 2 MiB thread, never crash.

use std::path::{Path, PathBuf};

use qtask_data::Program;
use qtask_data::pit::{Interval, PitFile};

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no regression inputs in {}",
        dir.display()
    );
    files
}

fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn expression_regressions_compile_or_are_refused() {
    on_small_stack(|| {
        for f in inputs("expr") {
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            if let Ok(p) = Program::compile(&[("f".into(), text)]) {
                let fields: Vec<Option<Vec<f64>>> =
                    p.fields().iter().map(|_| Some(vec![1.0; 8])).collect();
                let pits: Vec<Option<Vec<f64>>> = p.pit_queries().iter().map(|_| None).collect();
                assert_eq!(p.eval_with_pit(&fields, &pits, 8).len(), 1);
            }
        }
    });
}

#[test]
fn binary_regressions_are_read_or_refused() {
    on_small_stack(|| {
        for f in inputs("readers") {
            let data = std::fs::read(&f).unwrap();
            let Some((&kind, rest)) = data.split_first() else {
                continue;
            };
            match kind % 3 {
                0 => {
                    let _ = qtask_data::binfile::parse_bin(Path::new("x.day.bin"), rest);
                }
                1 => {
                    let Some((&cut, body)) = rest.split_first() else {
                        continue;
                    };
                    let at = (cut as usize * body.len()) / 255;
                    let (d, i) = body.split_at(at.min(body.len()));
                    for interval in [Interval::Quarterly, Interval::Annual] {
                        let _ = PitFile::parse(interval, d, i, Path::new("d"), Path::new("i"));
                    }
                }
                // Parquet inputs are replayed by qtask-table's own regression test.
                _ => {}
            }
        }
    });
}
