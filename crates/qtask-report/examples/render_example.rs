//! Writes the realistic test report to a file: `cargo run -p qtask-report --example
//! render_example -- /tmp/qtask-report-example.html`.

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/qtask-report-example.html".to_string());
    let html = qtask_report::render(&common::realistic_data());
    std::fs::write(&path, &html).expect("cannot write report");
    println!("wrote {path} ({} bytes)", html.len());
}
