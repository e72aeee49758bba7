//! QIDO-RS: a search's query parameters read into an index search, and the
//! rows it finds written as DICOM JSON.
//!
//! Keys are accepted by keyword (`PatientID=`) or tag (`00100020=`);
//! values follow PS3.4 C.2.2.2: `*` and `?` wildcards, UID lists (`,` or
//! `\`), date and time ranges (`20240101-`, `-1200`, `a-b`), and an empty
//! value that matches everything. `includefield` takes keywords, tags or
//! `all`, comma-separated or repeated. What the index cannot match on or
//! return is reported in a `Warning` header instead of failing the search.

use std::collections::BTreeSet;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_dictionary_std::StandardDataDictionary;
use telediag_archive::search::{Condition, InstanceMatch, Key, Level, Matcher, Search, SeriesMatch, StudyMatch};

use crate::json::ObjectWriter;

/// A parsed QIDO request.
#[derive(Debug, Clone)]
pub struct Query {
    /// The search, without its site (the caller's scope sets it).
    pub search: Search,
    /// Attributes to return beyond the level's defaults.
    pub include: Include,
    /// Things the server did not honour, for the `Warning` header.
    pub warnings: Vec<String>,
}

/// Which optional attributes to return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Include {
    #[default]
    Defaults,
    /// Defaults plus these tags.
    Tags(BTreeSet<u32>),
    All,
}

/// A query that cannot be run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("{name:?} is not a DICOM attribute keyword or tag")]
    UnknownAttribute { name: String },
    #[error("{name} must be a whole number, found {value:?}")]
    NotANumber { name: &'static str, value: String },
    #[error("{keyword} expects {expected}, found {value:?}")]
    BadValue { keyword: &'static str, expected: &'static str, value: String },
}

/// The study, series and instance the URL names.
#[derive(Debug, Clone, Default)]
pub struct Scope<'a> {
    pub study: Option<&'a str>,
    pub series: Option<&'a str>,
}

/// The default page: the most rows returned when the client gives no
/// `limit` (PS3.18 lets the server cap; the `Warning` header says so).
pub const DEFAULT_LIMIT: u32 = 1000;

/// One searchable attribute: how the client names it and how it is matched.
struct Searchable {
    tag: u32,
    keyword: &'static str,
    key: Key,
    syntax: Syntax,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Text,
    Uid,
    Date,
    Time,
    CodeList,
}

const SEARCHABLE: &[Searchable] = &[
    Searchable { tag: 0x0008_0020, keyword: "StudyDate", key: Key::StudyDate, syntax: Syntax::Date },
    Searchable { tag: 0x0008_0030, keyword: "StudyTime", key: Key::StudyTime, syntax: Syntax::Time },
    Searchable { tag: 0x0008_0050, keyword: "AccessionNumber", key: Key::AccessionNumber, syntax: Syntax::Text },
    Searchable { tag: 0x0008_0061, keyword: "ModalitiesInStudy", key: Key::ModalitiesInStudy, syntax: Syntax::CodeList },
    Searchable { tag: 0x0008_0090, keyword: "ReferringPhysicianName", key: Key::ReferringPhysicianName, syntax: Syntax::Text },
    Searchable { tag: 0x0008_1030, keyword: "StudyDescription", key: Key::StudyDescription, syntax: Syntax::Text },
    Searchable { tag: 0x0010_0010, keyword: "PatientName", key: Key::PatientName, syntax: Syntax::Text },
    Searchable { tag: 0x0010_0020, keyword: "PatientID", key: Key::PatientId, syntax: Syntax::Text },
    Searchable { tag: 0x0010_0030, keyword: "PatientBirthDate", key: Key::PatientBirthDate, syntax: Syntax::Date },
    Searchable { tag: 0x0010_0040, keyword: "PatientSex", key: Key::PatientSex, syntax: Syntax::Text },
    Searchable { tag: 0x0020_000D, keyword: "StudyInstanceUID", key: Key::StudyInstanceUid, syntax: Syntax::Uid },
    Searchable { tag: 0x0020_0010, keyword: "StudyID", key: Key::StudyId, syntax: Syntax::Text },
    Searchable { tag: 0x0008_0060, keyword: "Modality", key: Key::Modality, syntax: Syntax::CodeList },
    Searchable { tag: 0x0008_103E, keyword: "SeriesDescription", key: Key::SeriesDescription, syntax: Syntax::Text },
    Searchable { tag: 0x0020_000E, keyword: "SeriesInstanceUID", key: Key::SeriesInstanceUid, syntax: Syntax::Uid },
    Searchable { tag: 0x0020_0011, keyword: "SeriesNumber", key: Key::SeriesNumber, syntax: Syntax::Text },
    Searchable { tag: 0x0008_0016, keyword: "SOPClassUID", key: Key::SopClassUid, syntax: Syntax::Uid },
    Searchable { tag: 0x0008_0018, keyword: "SOPInstanceUID", key: Key::SopInstanceUid, syntax: Syntax::Uid },
    Searchable { tag: 0x0020_0013, keyword: "InstanceNumber", key: Key::InstanceNumber, syntax: Syntax::Text },
];

/// An attribute name from a URL: a keyword or eight hex digits.
fn tag_of(name: &str) -> Option<u32> {
    if name.len() == 8
        && let Ok(tag) = u32::from_str_radix(name, 16)
    {
        return Some(tag);
    }
    let entry = StandardDataDictionary.by_name(name)?;
    let tag = entry.tag();
    Some((u32::from(tag.0) << 16) | u32::from(tag.1))
}

/// Reads the query parameters (already percent-decoded, in order) of a
/// search at `level` within `scope`.
pub fn parse(params: &[(String, String)], level: Level, scope: &Scope<'_>) -> Result<Query, QueryError> {
    let mut search = Search { level, site_id: None, conditions: Vec::new(), limit: DEFAULT_LIMIT, offset: 0 };
    let mut include = Include::Defaults;
    let mut warnings = Vec::new();
    let mut unmatched = Vec::new();
    for (name, value) in params {
        match name.as_str() {
            "limit" => search.limit = number("limit", value)?,
            "offset" => search.offset = number("offset", value)?,
            "fuzzymatching" => {
                if value.eq_ignore_ascii_case("true") {
                    warnings.push("fuzzymatching is not supported; names were matched exactly or by wildcard".to_owned());
                }
            }
            "includefield" => {
                for field in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    if field == "all" {
                        include = Include::All;
                        continue;
                    }
                    let tag = tag_of(field).ok_or_else(|| QueryError::UnknownAttribute { name: field.to_owned() })?;
                    match &mut include {
                        Include::All => {}
                        Include::Tags(tags) => {
                            tags.insert(tag);
                        }
                        Include::Defaults => include = Include::Tags(BTreeSet::from([tag])),
                    }
                }
            }
            // Not a matching key (PS3.18 8.3.4: the requester's own hints).
            "charset" | "accept" => {}
            _ => {
                // Sequence paths (`00081111.00081150=`) are not matched here.
                if name.contains('.') {
                    unmatched.push(name.clone());
                    continue;
                }
                let tag = tag_of(name).ok_or_else(|| QueryError::UnknownAttribute { name: name.clone() })?;
                let Some(searchable) = SEARCHABLE.iter().find(|s| s.tag == tag) else {
                    unmatched.push(name.clone());
                    continue;
                };
                if let Some(matcher) = matcher(searchable, value)? {
                    search.conditions.push(Condition { key: searchable.key, matcher });
                }
                // A matching key is also returned.
                if let Include::Tags(tags) = &mut include {
                    tags.insert(tag);
                }
            }
        }
    }
    if let Some(study) = scope.study {
        search.conditions.push(Condition { key: Key::StudyInstanceUid, matcher: Matcher::Single(study.to_owned()) });
    }
    if let Some(series) = scope.series {
        search.conditions.push(Condition { key: Key::SeriesInstanceUid, matcher: Matcher::Single(series.to_owned()) });
    }
    if !unmatched.is_empty() {
        warnings.push(format!("the following attributes were not supported for matching and were ignored: {}", unmatched.join(", ")));
    }
    Ok(Query { search, include, warnings })
}

fn number(name: &'static str, value: &str) -> Result<u32, QueryError> {
    value.trim().parse().map_err(|_| QueryError::NotANumber { name, value: value.to_owned() })
}

/// The matcher a value asks for; `None` for universal matching (empty).
fn matcher(searchable: &Searchable, value: &str) -> Result<Option<Matcher>, QueryError> {
    let value = value.trim();
    if value.is_empty() || value == "*" {
        return Ok(None);
    }
    let bad = |expected| QueryError::BadValue { keyword: searchable.keyword, expected, value: value.to_owned() };
    Ok(Some(match searchable.syntax {
        Syntax::Uid | Syntax::CodeList => {
            let values: Vec<String> = value.split([',', '\\']).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned).collect();
            if searchable.syntax == Syntax::Uid && values.iter().any(|v| !v.bytes().all(|b| b.is_ascii_digit() || b == b'.')) {
                return Err(bad("UIDs (digits and dots), comma-separated"));
            }
            match values.len() {
                1 if value.contains(['*', '?']) => Matcher::Wildcard(values[0].clone()),
                1 => Matcher::Single(values[0].clone()),
                _ => Matcher::AnyOf(values),
            }
        }
        Syntax::Date | Syntax::Time => {
            let digits = |s: &str| {
                let whole = s.split('.').next().unwrap_or_default();
                s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !whole.is_empty()
            };
            let (expected, ok): (&'static str, &dyn Fn(&str) -> bool) = if searchable.syntax == Syntax::Date {
                ("a date YYYYMMDD or a range of them (a-b, a-, -b)", &|s: &str| s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()))
            } else {
                ("a time HHMMSS[.FFFFFF] or a range of them (a-b, a-, -b)", &|s: &str| digits(s) && s.len() <= 13)
            };
            match value.split_once('-') {
                Some((from, to)) => {
                    let (from, to) = (from.trim(), to.trim());
                    if (from.is_empty() && to.is_empty()) || (!from.is_empty() && !ok(from)) || (!to.is_empty() && !ok(to)) {
                        return Err(bad(expected));
                    }
                    let bound = |s: &str| (!s.is_empty()).then(|| s.to_owned());
                    Matcher::Range { from: bound(from), to: bound(to) }
                }
                None if ok(value) => Matcher::Single(value.to_owned()),
                None => return Err(bad(expected)),
            }
        }
        Syntax::Text if value.contains(['*', '?']) => Matcher::Wildcard(value.to_owned()),
        Syntax::Text => Matcher::Single(value.to_owned()),
    }))
}

/// One attribute value of a result row.
enum Cell<'a> {
    Text(Option<&'a str>),
    Owned(Option<String>),
    Integer(Option<i64>),
}

/// The attributes of a study row, in tag order: (tag, VR, returned by default, value).
fn study_cells<'a>(s: &'a StudyMatch, base: &str) -> Vec<(u32, &'static str, bool, Cell<'a>)> {
    vec![
        (0x0008_0005, "CS", true, Cell::Text(Some("ISO_IR 192"))),
        (0x0008_0020, "DA", true, Cell::Text(s.study_date.as_deref())),
        (0x0008_0030, "TM", true, Cell::Text(s.study_time.as_deref())),
        (0x0008_0050, "SH", true, Cell::Text(s.accession_number.as_deref())),
        (0x0008_0056, "CS", true, Cell::Text(Some("ONLINE"))),
        (0x0008_0061, "CS", true, Cell::Text(Some(s.modalities.as_str()))),
        (0x0008_0090, "PN", true, Cell::Text(s.referring_physician.as_deref())),
        (0x0008_1030, "LO", true, Cell::Text(s.description.as_deref())),
        (0x0008_1190, "UR", true, Cell::Owned(Some(format!("{base}/studies/{}", s.study_uid)))),
        (0x0010_0010, "PN", true, Cell::Text(s.patient_name.as_deref())),
        (0x0010_0020, "LO", true, Cell::Text(Some(s.patient_id.as_str()))),
        (0x0010_0030, "DA", true, Cell::Text(s.patient_birth_date.as_deref())),
        (0x0010_0040, "CS", true, Cell::Text(s.patient_sex.as_deref())),
        (0x0020_000D, "UI", true, Cell::Text(Some(s.study_uid.as_str()))),
        (0x0020_0010, "SH", true, Cell::Text(s.study_id.as_deref())),
        (0x0020_1206, "IS", true, Cell::Integer(Some(s.num_series))),
        (0x0020_1208, "IS", true, Cell::Integer(Some(s.num_instances))),
    ]
}

fn series_cells<'a>(s: &'a SeriesMatch, base: &str) -> Vec<(u32, &'static str, bool, Cell<'a>)> {
    vec![
        (0x0008_0060, "CS", true, Cell::Text(s.modality.as_deref())),
        (0x0008_103E, "LO", true, Cell::Text(s.description.as_deref())),
        (0x0008_1190, "UR", true, Cell::Owned(Some(format!("{base}/studies/{}/series/{}", s.study.study_uid, s.series_uid)))),
        (0x0018_0015, "CS", false, Cell::Text(s.body_part.as_deref())),
        (0x0020_000E, "UI", true, Cell::Text(Some(s.series_uid.as_str()))),
        (0x0020_0011, "IS", true, Cell::Integer(s.series_number)),
        (0x0020_1209, "IS", true, Cell::Integer(Some(s.num_instances))),
        (0x0040_0244, "DA", true, Cell::Text(s.performed_start_date.as_deref())),
        (0x0040_0245, "TM", true, Cell::Text(s.performed_start_time.as_deref())),
    ]
}

fn instance_cells<'a>(i: &'a InstanceMatch, base: &str) -> Vec<(u32, &'static str, bool, Cell<'a>)> {
    let s = &i.series;
    vec![
        (0x0008_0016, "UI", true, Cell::Text(Some(i.sop_class_uid.as_str()))),
        (0x0008_0018, "UI", true, Cell::Text(Some(i.sop_instance_uid.as_str()))),
        (0x0008_0056, "CS", true, Cell::Text(Some("ONLINE"))),
        (
            0x0008_1190,
            "UR",
            true,
            Cell::Owned(Some(format!("{base}/studies/{}/series/{}/instances/{}", s.study.study_uid, s.series_uid, i.sop_instance_uid))),
        ),
        (0x0008_3002, "UI", false, Cell::Text(Some(i.transfer_syntax_uid.as_str()))),
        (0x0020_0013, "IS", true, Cell::Integer(i.instance_number)),
        (0x0028_0008, "IS", true, Cell::Integer(i.number_of_frames)),
        (0x0028_0010, "US", true, Cell::Integer(i.rows)),
        (0x0028_0011, "US", true, Cell::Integer(i.columns)),
        (0x0028_0100, "US", true, Cell::Integer(i.bits_allocated)),
    ]
}

/// The rows of a search as a DICOM JSON array. Study attributes are added
/// to series and instance rows when the URL did not name the study, series
/// attributes to instance rows when it did not name the series (PS3.18
/// 10.6.3.3); a level's own Retrieve URL wins over its parents'.
pub struct Results<'a> {
    pub base: &'a str,
    pub include: &'a Include,
    pub scope: &'a Scope<'a>,
}

impl Results<'_> {
    fn wanted(&self, tag: u32, default: bool) -> bool {
        match self.include {
            Include::All => true,
            Include::Defaults => default,
            Include::Tags(tags) => default || tags.contains(&tag),
        }
    }

    fn write_row<'c>(&self, out: &mut Vec<u8>, layers: Vec<Vec<(u32, &'static str, bool, Cell<'c>)>>) {
        // Later layers (the row's own level) win over earlier ones for a tag.
        let mut cells: std::collections::BTreeMap<u32, (&'static str, Cell<'c>)> = std::collections::BTreeMap::new();
        for layer in layers {
            for (tag, vr, default, cell) in layer {
                if self.wanted(tag, default) {
                    cells.insert(tag, (vr, cell));
                }
            }
        }
        let mut w = ObjectWriter::new();
        for (tag, (vr, cell)) in cells {
            match cell {
                Cell::Text(text) => w.text(tag, vr, text.unwrap_or_default()),
                Cell::Owned(text) => w.text(tag, vr, text.as_deref().unwrap_or_default()),
                Cell::Integer(n) => w.integers(tag, vr, n.as_slice()),
            }
        }
        out.extend_from_slice(&w.finish());
    }

    pub fn studies(&self, rows: &[StudyMatch]) -> Vec<u8> {
        self.array(rows, |out, s| self.write_row(out, vec![study_cells(s, self.base)]))
    }

    pub fn series(&self, rows: &[SeriesMatch]) -> Vec<u8> {
        self.array(rows, |out, s| {
            let mut layers = Vec::new();
            if self.scope.study.is_none() {
                layers.push(study_cells(&s.study, self.base));
            }
            layers.push(series_cells(s, self.base));
            self.write_row(out, layers)
        })
    }

    pub fn instances(&self, rows: &[InstanceMatch]) -> Vec<u8> {
        self.array(rows, |out, i| {
            let mut layers = Vec::new();
            if self.scope.study.is_none() {
                layers.push(study_cells(&i.series.study, self.base));
            }
            if self.scope.series.is_none() {
                layers.push(series_cells(&i.series, self.base));
            }
            layers.push(instance_cells(i, self.base));
            self.write_row(out, layers)
        })
    }

    fn array<T>(&self, rows: &[T], mut row: impl FnMut(&mut Vec<u8>, &T)) -> Vec<u8> {
        let mut out = Vec::with_capacity(rows.len() * 1024 + 2);
        out.push(b'[');
        for (i, r) in rows.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            row(&mut out, r);
        }
        out.push(b']');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn ohif_study_list_query_is_read_with_encoded_commas_decoded() {
        let q = parse(
            &params(&[
                ("limit", "101"),
                ("offset", "0"),
                ("fuzzymatching", "false"),
                ("includefield", "00081030,00080060,00080090,00100030"),
                ("PatientName", "*zhang*"),
            ]),
            Level::Study,
            &Scope::default(),
        )
        .unwrap();
        assert_eq!(q.search.limit, 101);
        assert_eq!(q.include, Include::Tags(BTreeSet::from([0x0008_1030, 0x0008_0060, 0x0008_0090, 0x0010_0030, 0x0010_0010])));
        assert_eq!(q.search.conditions, vec![Condition { key: Key::PatientName, matcher: Matcher::Wildcard("*zhang*".into()) }]);
        assert!(q.warnings.is_empty());
    }

    #[test]
    fn keys_by_tag_lists_and_ranges() {
        let q = parse(
            &params(&[
                ("00100020", "P1"),
                ("StudyInstanceUID", "1.2.3,1.2.4"),
                ("StudyDate", "20240101-"),
                ("StudyTime", "-1200"),
                ("ModalitiesInStudy", "CT"),
                ("AccessionNumber", ""),
            ]),
            Level::Study,
            &Scope::default(),
        )
        .unwrap();
        assert_eq!(
            q.search.conditions,
            vec![
                Condition { key: Key::PatientId, matcher: Matcher::Single("P1".into()) },
                Condition { key: Key::StudyInstanceUid, matcher: Matcher::AnyOf(vec!["1.2.3".into(), "1.2.4".into()]) },
                Condition { key: Key::StudyDate, matcher: Matcher::Range { from: Some("20240101".into()), to: None } },
                Condition { key: Key::StudyTime, matcher: Matcher::Range { from: None, to: Some("1200".into()) } },
                Condition { key: Key::ModalitiesInStudy, matcher: Matcher::Single("CT".into()) },
            ]
        );
    }

    #[test]
    fn bad_queries_say_what_was_expected() {
        let err = |list: &[(&str, &str)]| parse(&params(list), Level::Study, &Scope::default()).unwrap_err().to_string();
        assert_eq!(err(&[("limit", "ten")]), "limit must be a whole number, found \"ten\"");
        assert_eq!(err(&[("NoSuchThing", "1")]), "\"NoSuchThing\" is not a DICOM attribute keyword or tag");
        assert!(err(&[("StudyDate", "2024-01-01")]).contains("StudyDate expects a date YYYYMMDD"));
        assert!(err(&[("StudyInstanceUID", "1.2.x")]).contains("UIDs"));
    }

    #[test]
    fn attributes_the_index_cannot_match_are_warned_about() {
        let q = parse(&params(&[("BodyPartExamined", "CHEST"), ("00081111.00081150", "1.2")]), Level::Series, &Scope::default()).unwrap();
        assert!(q.search.conditions.is_empty());
        assert_eq!(q.warnings.len(), 1);
        assert!(q.warnings[0].contains("BodyPartExamined"), "{}", q.warnings[0]);
    }

    #[test]
    fn study_rows_carry_the_default_attributes_and_the_asked_ones() {
        let study = StudyMatch {
            study_uid: "1.2.3".into(),
            patient_name: Some("Zhang^Wei=张^伟".into()),
            patient_id: "P1".into(),
            modalities: "CT\\SR".into(),
            num_series: 2,
            num_instances: 40,
            description: Some("胸部CT平扫".into()),
            ..StudyMatch::default()
        };
        let include = Include::Defaults;
        let scope = Scope::default();
        let json = Results { base: "http://h/dicom-web", include: &include, scope: &scope }.studies(&[study]);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let row = &v[0];
        assert_eq!(row["00100010"]["Value"][0]["Ideographic"], "张^伟");
        assert_eq!(row["00080061"]["Value"], serde_json::json!(["CT", "SR"]));
        assert_eq!(row["00201208"]["Value"], serde_json::json!([40]));
        assert_eq!(row["00081190"]["Value"][0], "http://h/dicom-web/studies/1.2.3");
        assert_eq!(row["00081030"]["Value"][0], "胸部CT平扫");
        // Absent values are present without a value (they were asked for).
        assert_eq!(row["00080050"], serde_json::json!({"vr": "SH"}));
        let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "attributes in tag order");
    }
}
