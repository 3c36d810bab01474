//! Replays the template inputs kept in `fuzz/regressions/template/` (see `scripts/fuzz.sh`):
//! each must parse or be refused with an error, on a 2 MiB thread, never crash.

use std::path::Path;

#[test]
fn template_regressions_parse_or_are_refused() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/template");
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
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            for f in files {
                let Ok(text) = std::fs::read_to_string(&f) else {
                    continue;
                };
                for name in ["t.yaml", "t.json"] {
                    let path = Path::new(name);
                    if let Ok(doc) = qtask_core::template::parse_document(&text, path)
                        && let Ok(t) = qtask_core::template::template_from_value(doc, path)
                    {
                        for task in &t.tasks {
                            let _ = qtask_core::task_hash(task);
                        }
                    }
                }
            }
        })
        .unwrap()
        .join()
        .unwrap();
}
