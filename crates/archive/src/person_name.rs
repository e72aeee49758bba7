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
/// when it is not in PN form.
pub fn display(value: &str) -> String {
    let value = value.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    let groups: Vec<&str> = value.split('=').collect();
    let ideographic = groups.get(1).map(|g| join(g, "")).filter(|s| !s.is_empty());
    let alphabetic = groups.first().map(|g| join(g, " ")).filter(|s| !s.is_empty());
    let phonetic = groups.get(2).map(|g| join(g, " ")).filter(|s| !s.is_empty());
    ideographic.or(alphabetic).or(phonetic).unwrap_or_default()
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
    use super::display;

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
        ] {
            assert_eq!(display(value), shown, "{value:?}");
        }
    }
}
