//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) and the regression inputs
//! (`fuzz/regressions/<target>/`) through the same checks the fuzz targets run, on the stable toolchain,
//! so that every test run exercises what fuzzing found.

mod support;

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in [
        fuzz.join("corpus").join(target),
        fuzz.join("regressions").join(target),
    ] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            files.extend(
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_file()),
            );
        }
    }
    files.sort();
    files
}

fn replay(target: &str, check: fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no committed corpus for `{target}`");
    for path in files {
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // A failure names the input so that it can be rerun with `cargo fuzz run {target} <file>`.
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(
            outcome.is_ok(),
            "{target}: input {} fails its check",
            path.display()
        );
    }
}

#[test]
fn decode_corpus_passes_its_checks() {
    replay("decode", support::fuzz::check_decode);
}

#[test]
fn gso_split_corpus_passes_its_checks() {
    replay("gso_split", support::fuzz::check_gso_split);
}

#[test]
fn handle_gro_corpus_passes_its_checks() {
    replay("handle_gro", support::fuzz::check_handle_gro);
}
