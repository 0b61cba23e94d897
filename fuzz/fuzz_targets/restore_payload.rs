//! RESTORE's DUMP payload decoder. Checks live in `damselfly::fuzzing::restore_payload`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| damselfly::fuzzing::restore_payload(data));
