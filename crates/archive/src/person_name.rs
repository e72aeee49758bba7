//! Person names (DICOM PN) as people read them.
//!
//! A PN value holds up to three groups — alphabetic, ideographic, phonetic
//! — separated by `=`, each with up to five components (family, given,
//! middle, prefix, suffix) separated by `^`: `Zhang^Wei=张^伟=ㄓㄤ^ㄨㄟ`.
//! Wherever a person sees a name (report PDF, lists, templates) it is shown
//! by [`display`]: the ideographic group when there is one (张伟, family name
//! first and no space, as Chinese names are written), otherwise the
//! alphabetic one with spaces for carets (Zhang Wei). The stored value is
//! never changed.

/// The name of a PN value as it is read, or the value itself (trimmed)
/// when it is not in PN form: a value with neither a `^` nor an ideograph
/// (`a=b` typed into a name field, say) is not read as groups.
pub fn display(value: &str) -> String {
    let value = value.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    if !value.contains('^') && !value.chars().any(is_ideographic) {
        return value.to_owned();
    }
    let groups: Vec<&str> = value.split('=').collect();
    let ideographic = groups.get(1).map(|g| join(g, "")).filter(|s| !s.is_empty());
    let alphabetic = groups.first().map(|g| join(g, " ")).filter(|s| !s.is_empty());
    let phonetic = groups.get(2).map(|g| join(g, " ")).filter(|s| !s.is_empty());
    ideographic.or(alphabetic).or(phonetic).unwrap_or_default()
}

/// The alphabetic, ideographic and phonetic groups of one PN value, as
/// stored for matching (QIDO's `PatientName=张*` looks in each): trimmed,
/// trailing empty components dropped, `None` when a group is empty.
pub fn groups(value: &str) -> [Option<String>; 3] {
    let value = value.split('\\').next().unwrap_or_default().trim_matches(|c: char| c == '\0' || c.is_whitespace());
    let mut groups = value.split('=').map(|g| {
        let g = g.trim().trim_end_matches(|c: char| c == '^' || c.is_whitespace());
        (!g.is_empty()).then(|| g.to_owned())
    });
    [groups.next().flatten(), groups.next().flatten(), groups.next().flatten()]
}

/// Han ideographs, kana and hangul: the scripts of ideographic groups.
fn is_ideographic(c: char) -> bool {
    matches!(c, '\u{3040}'..='\u{30FF}' | '\u{3400}'..='\u{9FFF}' | '\u{AC00}'..='\u{D7AF}' | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{3FFFF}')
}

/// One group's components in reading order: prefix, family, given, middle,
/// suffix; empty components dropped.
fn join(group: &str, separator: &str) -> String {
    let parts: Vec<&str> = group.split('^').map(str::trim).collect();
    let at = |i: usize| parts.get(i).copied().unwrap_or("");
    [at(3), at(0), at(1), at(2), at(4)].into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join(separator)
}

#[cfg(test)]
mod tests {
    use super::{display, groups};

    #[test]
    fn groups_are_split_and_trimmed_for_matching() {
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(groups("Zhang^Wei=张^伟=ㄓㄤ^ㄨㄟ"), [some("Zhang^Wei"), some("张^伟"), some("ㄓㄤ^ㄨㄟ")]);
        assert_eq!(groups("Doe^John^^^ "), [some("Doe^John"), None, None]);
        assert_eq!(groups("=张^三"), [None, some("张^三"), None]);
        assert_eq!(groups(""), [None, None, None]);
    }

    #[test]
    fn names_read_as_people_write_them() {
        for (value, shown) in [
            ("Zhang^Wei=张^伟=ㄓㄤ^ㄨㄟ", "张伟"),
            ("Zhang^Wei=张^伟", "张伟"),
            ("Zhang^Wei", "Zhang Wei"),
            ("Zhang^Xiao Dong^^^Jr", "Zhang Xiao Dong Jr"),
            ("=张^三", "张三"),
            ("Li^Na==", "Li Na"),
            ("==リ^ナ", "リ ナ"),
            ("张伟", "张伟"),
            ("Doe^John^^Dr.", "Dr. Doe John"),
            ("", ""),
            ("^", ""),
            ("Wang^Fang\0", "Wang Fang"),
            ("Li=李", "李"),
            ("<img src=x onerror=alert(1)>", "<img src=x onerror=alert(1)>"),
            ("a=b", "a=b"),
        ] {
            assert_eq!(display(value), shown, "{value:?}");
        }
    }
}
