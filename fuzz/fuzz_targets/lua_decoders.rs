//! The script libraries' decoders: cjson.decode, cmsgpack.unpack, struct.unpack. Checks live in `damselfly::fuzzing::lua_decoders`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| damselfly::fuzzing::lua_decoders(data));
