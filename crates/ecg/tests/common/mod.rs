//! Where the shared ECG corpus is; tests that need it skip with a message
//! when it is absent, and fail when CI=true (CI always has it).

use std::path::PathBuf;

pub fn corpus() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/ecg");
    if root.is_dir() {
        return Some(root);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but the ECG corpus is missing at {}", root.display());
    }
    eprintln!("skipping: ../shared/corpus/ecg is absent ({})", root.display());
    None
}
