//! The RESP request parser (multibulk, inline commands, limits). Checks live in `damselfly::fuzzing::resp_parser`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| damselfly::fuzzing::resp_parser(data));
