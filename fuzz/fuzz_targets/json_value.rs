//! The JSON text parser JSON.SET stores values with. Checks live in `damselfly::fuzzing::json_value`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| damselfly::fuzzing::json_value(data));
