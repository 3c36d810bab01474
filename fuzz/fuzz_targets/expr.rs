//! Expressions: any text must compile (and then evaluate) or be refused with an error; never a
//! crash or a stack overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qtask_data::Program;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = Program::compile(&[("f".into(), text.into())]) {
        let len = 8;
        let fields: Vec<Option<Vec<f64>>> = p
            .fields()
            .iter()
            .enumerate()
            .map(|(i, _)| Some((0..len).map(|k| (k * (i + 1)) as f64 - 3.0).collect()))
            .collect();
        let pits: Vec<Option<Vec<f64>>> = p.pit_queries().iter().map(|_| None).collect();
        let out = p.eval_with_pit(&fields, &pits, len);
        assert_eq!(out.len(), 1);
    }
});
