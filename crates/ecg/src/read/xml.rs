//! Parsing untrusted XML (aECG today; the vendors' formats next) with
//! bounds: how deep elements may nest and how many nodes a document may
//! hold.
//!
//! roxmltree builds its tree with recursion over nesting depth, so a 28 KB
//! document of 4,000 nested elements overflowed a server thread's stack
//! and took the process down. Real ECG documents nest 15 levels at most
//! (HL7 aECG; MUSE and Philips fewer), so the nesting is measured before
//! roxmltree sees the text, by a scan that only follows markup.

use roxmltree::{Document, ParsingOptions};

/// Elements nested deeper than this are refused.
pub const MAX_DEPTH: usize = 128;
/// Nodes (elements, attributes' owners, text) a document may hold: a
/// 12-lead aECG has a few thousand.
pub const MAX_NODES: u32 = 2_000_000;

/// Why a document was refused before or while parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("elements are nested more than {MAX_DEPTH} deep (at byte {at})")]
    TooDeep { at: usize },
    #[error("broken XML: {0}")]
    Broken(String),
}

/// Parses `text` once its nesting is known to be within [`MAX_DEPTH`].
/// DTDs are refused (roxmltree's default), so entity expansion cannot blow up.
pub fn parse(text: &str) -> Result<Document<'_>, XmlError> {
    check_depth(text.as_bytes())?;
    let options = ParsingOptions { nodes_limit: MAX_NODES, ..ParsingOptions::default() };
    Document::parse_with_options(text, options).map_err(|e| XmlError::Broken(e.to_string()))
}

/// Follows start and end tags, skipping comments, CDATA, processing
/// instructions, declarations and quoted attribute values, and fails as
/// soon as the open elements exceed [`MAX_DEPTH`]. It does not validate:
/// roxmltree does, after; it only has to never count fewer open elements
/// than there are.
fn check_depth(bytes: &[u8]) -> Result<(), XmlError> {
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(offset) = bytes[at..].iter().position(|&b| b == b'<') {
        let start = at + offset;
        let rest = &bytes[start..];
        let skip_to = |end: &[u8]| find(bytes, start + 1, end).map_or(bytes.len(), |i| i + end.len());
        at = if rest.starts_with(b"<!--") {
            skip_to(b"-->")
        } else if rest.starts_with(b"<![CDATA[") {
            skip_to(b"]]>")
        } else if rest.starts_with(b"<?") {
            skip_to(b"?>")
        } else if rest.starts_with(b"<!") || rest.starts_with(b"</") {
            if rest.starts_with(b"</") {
                depth = depth.saturating_sub(1);
            }
            skip_to(b">")
        } else {
            let (end, self_closing) = tag_end(bytes, start + 1);
            if !self_closing {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(XmlError::TooDeep { at: start });
                }
            }
            end
        };
    }
    Ok(())
}

/// The position after a start tag's `>` (attribute values may hold `>`),
/// and whether it was `/>`.
fn tag_end(bytes: &[u8], mut at: usize) -> (usize, bool) {
    let mut quote = None;
    while at < bytes.len() {
        let b = bytes[at];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => return (at + 1, bytes[at - 1] == b'/'),
            None => {}
        }
        at += 1;
    }
    (bytes.len(), false)
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("<a>{}{}</a>", "<b x='>'>".repeat(depth - 1), "</b>".repeat(depth - 1))
    }

    #[test]
    fn nesting_up_to_the_limit_is_parsed_and_beyond_it_refused() {
        assert!(parse(&nested(MAX_DEPTH)).is_ok());
        assert_eq!(parse(&nested(MAX_DEPTH + 1)).unwrap_err(), XmlError::TooDeep { at: 9 * MAX_DEPTH - 6 });
    }

    /// Markup that is not an element neither opens nor hides one.
    #[test]
    fn comments_cdata_and_self_closing_tags_do_not_count() {
        let flat = format!("<a>{}</a>", "<!-- <b> --><![CDATA[<b>]]><?pi <b>?><b/><c k=\"/>\"></c>".repeat(1000));
        assert!(parse(&flat).is_ok());
        // A start tag hidden in an attribute value cannot hide real depth.
        let hidden = format!("<a k='<!--'>{}", "<b>".repeat(MAX_DEPTH + 1));
        assert!(matches!(check_depth(hidden.as_bytes()), Err(XmlError::TooDeep { .. })));
    }

    #[test]
    fn a_dtd_is_refused() {
        let bomb = "<!DOCTYPE l [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;\">]><l>&b;</l>";
        assert!(matches!(parse(bomb), Err(XmlError::Broken(_))));
    }
}
