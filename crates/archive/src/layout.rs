//! Object keys: where each kind of object lives in the store.
//!
//! Originals are keyed by study, series and instance so an operator can find a
//! file by hand: `originals/<study>/<series>/<sop>.dcm`. A later version of
//! the same SOP instance (different bytes under the same UID) is kept beside
//! it as `<sop>.v2.dcm`, `<sop>.v3.dcm`, …; nothing is overwritten.

use crate::store::{ObjectKey, StoreError};
use crate::uid::{SeriesUid, SopInstanceUid, StudyUid};

/// Where originals live.
const ORIGINALS: &str = "originals/";

/// The key of version `version` (1-based) of an original object.
pub fn original_key(study: &StudyUid, series: &SeriesUid, sop: &SopInstanceUid, version: i64) -> Result<ObjectKey, StoreError> {
    let name = if version <= 1 { format!("{sop}.dcm") } else { format!("{sop}.v{version}.dcm") };
    ObjectKey::new(format!("{ORIGINALS}{study}/{series}/{name}"))
}

/// `<study>/<series>` of an original's key, or `None` for any other key.
pub(crate) fn series_path_of(original: &ObjectKey) -> Option<&str> {
    let (series_path, _name) = original.as_str().strip_prefix(ORIGINALS)?.rsplit_once('/')?;
    Some(series_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_hierarchy_and_number_versions() {
        let study = StudyUid::parse("1.2.3").unwrap();
        let series = SeriesUid::parse("1.2.3.4").unwrap();
        let sop = SopInstanceUid::parse("1.2.3.4.5").unwrap();
        assert_eq!(original_key(&study, &series, &sop, 1).unwrap().as_str(), "originals/1.2.3/1.2.3.4/1.2.3.4.5.dcm");
        assert_eq!(original_key(&study, &series, &sop, 3).unwrap().as_str(), "originals/1.2.3/1.2.3.4/1.2.3.4.5.v3.dcm");
        assert_eq!(series_path_of(&original_key(&study, &series, &sop, 3).unwrap()), Some("1.2.3/1.2.3.4"));
        assert_eq!(series_path_of(&ObjectKey::new("reports/1.2.3/report.pdf").unwrap()), None);
    }
}
