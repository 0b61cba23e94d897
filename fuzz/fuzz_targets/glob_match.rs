//! The glob matcher behind KEYS, SCAN MATCH and CONFIG GET, against a reference matcher. Checks live in `damselfly::fuzzing::glob_match`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| damselfly::fuzzing::glob_match(data));
