//! The redis.conf-style config-file parser. Checks live in `damselfly::fuzzing::config_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| damselfly::fuzzing::config_file(data));
