//! What the reports tests share: the system's CJK font, read as the worklist
//! reads it (the crate itself reads no files).

use std::path::Path;

use telediag_reports::form::{FormError, ReportFont};

/// The first CJK font installed, or `None` (with a message) outside CI.
pub fn font() -> Option<ReportFont> {
    let loaded = ReportFont::locate(None, Path::exists).and_then(|path| {
        let bytes = std::fs::read(&path).map_err(|e| FormError::Font { path: path.clone(), reason: e.to_string() })?;
        ReportFont::from_bytes(bytes, &path)
    });
    match loaded {
        Ok(font) => Some(font),
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "CI installs a CJK font: {e}");
            eprintln!("skipping: {e}");
            None
        }
    }
}
