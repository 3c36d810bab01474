//! Templates: any bytes as a YAML or JSON template must parse or be refused, never crash.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for name in ["t.yaml", "t.json"] {
        let path = Path::new(name);
        if let Ok(doc) = qtask_core::template::parse_document(text, path)
            && let Ok(t) = qtask_core::template::template_from_value(doc, path)
        {
            for task in &t.tasks {
                let _ = qtask_core::task_hash(task);
                let _ = qtask_core::path::flatten(task);
            }
        }
    }
});
