//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/*`)
//! through its target's entry function in `damselfly::fuzzing`, so the
//! inputs that once found bugs, and the seeds, are checked on stable Rust
//! in every test run without libFuzzer.

use std::path::Path;

#[test]
fn fuzz_corpora_replay_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut replayed = 0;
    for (name, run) in damselfly::fuzzing::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {} missing: {e}", dir.display()))
            .map(|e| e.expect("corpus entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "corpus {} is empty", dir.display());
        for f in files {
            let data = std::fs::read(&f).expect("corpus file readable");
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{name}: {} fails its checks", f.display());
            replayed += 1;
        }
    }
    assert!(replayed >= damselfly::fuzzing::TARGETS.len());
}

#[test]
fn every_corpus_directory_has_a_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for entry in std::fs::read_dir(&root).expect("fuzz/corpus exists") {
        let name = entry.expect("corpus dir").file_name().to_string_lossy().into_owned();
        assert!(damselfly::fuzzing::target(&name).is_some(), "fuzz/corpus/{name} has no entry function");
    }
}
