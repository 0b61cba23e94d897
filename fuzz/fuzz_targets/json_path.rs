//! JSONPath and legacy JSON path parsing and evaluation. Checks live in `damselfly::fuzzing::json_path`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| damselfly::fuzzing::json_path(data));
