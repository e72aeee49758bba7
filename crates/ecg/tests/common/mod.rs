//! Where the shared ECG corpus is; tests that need it skip with a message
//! when it is absent.

use std::path::PathBuf;

pub fn corpus() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/ecg");
    if root.is_dir() {
        return Some(root);
    }
    eprintln!("skipping: ../shared/corpus/ecg is absent ({})", root.display());
    None
}
