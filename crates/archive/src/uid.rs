//! DICOM unique identifiers as types.
//!
//! A UID that reaches the index or names an object key has been checked once,
//! here: at most 64 characters, digits and dots only, no empty component. The
//! trailing NUL or space padding that DICOM allows on the wire is removed, so
//! `"1.2.3\0"` and `"1.2.3"` are the same study.

use std::fmt;

/// Why a string is not a DICOM UID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UidError {
    #[error("expected a {kind} UID, found an empty value")]
    Empty { kind: &'static str },
    #[error("expected a {kind} UID of at most 64 characters, found {len} characters")]
    TooLong { kind: &'static str, len: usize },
    #[error("expected a {kind} UID of digits and dots, found {found:?}")]
    BadCharacters { kind: &'static str, found: String },
    #[error("expected a {kind} UID without empty components, found {found:?}")]
    EmptyComponent { kind: &'static str, found: String },
}

fn check(kind: &'static str, raw: &str) -> Result<String, UidError> {
    let trimmed = raw.trim_end_matches(['\0', ' ']).trim_start_matches(' ');
    if trimmed.is_empty() {
        return Err(UidError::Empty { kind });
    }
    if trimmed.len() > 64 {
        return Err(UidError::TooLong { kind, len: trimmed.len() });
    }
    if !trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(UidError::BadCharacters { kind, found: trimmed.chars().take(80).collect() });
    }
    if trimmed.split('.').any(str::is_empty) {
        return Err(UidError::EmptyComponent { kind, found: trimmed.to_owned() });
    }
    Ok(trimmed.to_owned())
}

macro_rules! uid_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Checks `raw` (padding removed) and wraps it.
            pub fn parse(raw: &str) -> Result<Self, UidError> {
                check($kind, raw).map(Self)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = UidError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

uid_type!(
    /// Study Instance UID (0020,000D).
    StudyUid, "Study Instance"
);
uid_type!(
    /// Series Instance UID (0020,000E).
    SeriesUid, "Series Instance"
);
uid_type!(
    /// SOP Instance UID (0008,0018): one stored object.
    SopInstanceUid, "SOP Instance"
);
uid_type!(
    /// SOP Class UID (0008,0016): what kind of object it is.
    SopClassUid, "SOP Class"
);
/// Every waveform storage SOP class (12-lead and general ECG, hemodynamic,
/// …) is `1.2.840.10008.5.1.4.1.1.9.<n>…`: the pipeline analyses these as
/// ECGs, and the worklist finds a study's tracing by it.
pub const WAVEFORM_SOP_CLASS_PREFIX: &str = "1.2.840.10008.5.1.4.1.1.9.";

uid_type!(
    /// Transfer Syntax UID (0002,0010): how the dataset is encoded.
    TransferSyntaxUid, "Transfer Syntax"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn check_case(input: &str, expected: Result<&str, &str>) {
        match (StudyUid::parse(input), expected) {
            (Ok(uid), Ok(want)) => assert_eq!(uid.as_str(), want, "input {input:?}"),
            (Err(e), Err(fragment)) => {
                assert!(e.to_string().contains(fragment), "input {input:?}: error {e} lacks {fragment:?}")
            }
            (got, want) => panic!("input {input:?}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn uids_are_checked_and_unpadded() {
        check_case("1.2.840.10008.1.2", Ok("1.2.840.10008.1.2"));
        check_case("1.2.3\0", Ok("1.2.3"));
        check_case("1.2.3 ", Ok("1.2.3"));
        check_case("", Err("empty value"));
        check_case("\0", Err("empty value"));
        check_case("1.2.abc", Err("digits and dots"));
        check_case("1..2", Err("empty components"));
        check_case(".1.2", Err("empty components"));
        check_case(&"1.".repeat(40), Err("at most 64"));
        check_case("../../etc/passwd", Err("digits and dots"));
    }
}
