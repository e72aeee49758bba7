//! What the imaging tests share: the public corpus.

use std::path::{Path, PathBuf};

/// The pydicom + pydicom-data files fetched by sample-data/fetch-pydicom.sh;
/// `None` (with a note) outside CI when they are absent, a failure in CI.
pub fn corpus_root() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-data/pydicom");
    if root.join(".complete").exists() {
        return Some(root);
    }
    if std::env::var_os("CI").is_some() {
        panic!("pydicom corpus missing: .ci/run must run sample-data/fetch-pydicom.sh");
    }
    eprintln!("SKIP: pydicom corpus missing; run sample-data/fetch-pydicom.sh");
    None
}
