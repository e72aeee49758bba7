//! Parsing untrusted XML (HL7 aECG and the carts' own: GE MUSE, Philips,
//! GE CardioSoft) with bounds: how deep elements may nest, how many nodes a
//! document may hold, and no entity ever declared.
//!
//! Carts write their XML in whatever encoding their software chose: MUSE
//! declares ISO-8859-1 (or a Chinese code page on Chinese installations),
//! Philips' TraceMasterVue exports UTF-16 with a byte-order mark, aECG is
//! UTF-8. [`decode`] follows the byte-order mark, then the declaration.
//!
//! MUSE exports open with `<!DOCTYPE RestingECG SYSTEM "restecg.dtd">`. A
//! document type is therefore accepted, but a document that declares
//! entities is refused before parsing: no cart declares any, nothing is
//! ever fetched from outside the document, and an entity-expansion bomb
//! is refused in one scan, before it can expand.
//!
//! roxmltree builds its tree with recursion over nesting depth, so a 28 KB
//! document of 4,000 nested elements overflowed a server thread's stack
//! and took the process down. Real ECG documents nest 15 levels at most
//! (HL7 aECG; MUSE and Philips fewer), so the nesting is measured before
//! roxmltree sees the text, by a scan that only follows markup.

use std::borrow::Cow;

use encoding_rs::Encoding;
use roxmltree::{Document, Node, ParsingOptions};

/// Elements nested deeper than this are refused.
pub const MAX_DEPTH: usize = 128;
/// Nodes (elements and text) a document may hold: a 12-lead aECG has a
/// few thousand.
pub const MAX_NODES: u32 = 2_000_000;

/// Why a document was refused before or while parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("elements are nested more than {MAX_DEPTH} deep (at byte {at})")]
    TooDeep { at: usize },
    #[error("broken XML: {0}")]
    Broken(String),
    #[error("the document declares entities (<!ENTITY at byte {at}), which no ECG cart writes; refused unexpanded")]
    EntityDeclared { at: usize },
    #[error("the XML declares encoding {0:?}, which is not an encoding this centre knows")]
    UnknownEncoding(String),
    #[error("the XML is not valid {encoding}: {detail}")]
    BadEncoding { encoding: &'static str, detail: String },
}

/// Parses `text` once its nesting is known to be within [`MAX_DEPTH`] and
/// its document type, if any, declares no entities.
pub fn parse(text: &str) -> Result<Document<'_>, XmlError> {
    check_depth(text.as_bytes())?;
    if let Some(at) = find(text.as_bytes(), 0, b"<!ENTITY") {
        return Err(XmlError::EntityDeclared { at });
    }
    let options = ParsingOptions { nodes_limit: MAX_NODES, allow_dtd: true };
    Document::parse_with_options(text, options).map_err(|e| XmlError::Broken(e.to_string()))
}

/// Parses `text` as [`parse`] does and checks its root element is
/// `root`: how every reader opens its document. The error is the reason,
/// for the reader to name its format with.
pub(crate) fn parse_rooted<'a>(text: &'a str, root: &str) -> Result<Document<'a>, String> {
    let document = parse(text).map_err(|e| e.to_string())?;
    let found = document.root_element().tag_name().name();
    if found != root {
        return Err(format!("root element is <{found}>, expected <{root}>"));
    }
    Ok(document)
}

/// The document's text: decoded as its byte-order mark says, else as its
/// XML declaration's `encoding` says, else as UTF-8. Bytes that are not
/// valid in that encoding are refused, not replaced.
pub fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, XmlError> {
    let (encoding, body) = match Encoding::for_bom(bytes) {
        Some((encoding, bom)) => (encoding, &bytes[bom..]),
        // UTF-16 without its mark: a `<` and a zero byte.
        None if bytes.starts_with(b"<\0") => (encoding_rs::UTF_16LE, bytes),
        None if bytes.starts_with(b"\0<") => (encoding_rs::UTF_16BE, bytes),
        // The declaration was read as ASCII, so the bytes are not UTF-16
        // whatever it says (.NET tools write UTF-8 declared utf-16):
        // output_encoding maps UTF-16 to UTF-8 and leaves the rest.
        None => match declared_encoding(bytes) {
            Some(label) => (Encoding::for_label(label.as_bytes()).ok_or(XmlError::UnknownEncoding(label))?.output_encoding(), bytes),
            None => (encoding_rs::UTF_8, bytes),
        },
    };
    encoding.decode_without_bom_handling_and_without_replacement(body).ok_or_else(|| XmlError::BadEncoding {
        encoding: encoding.name(),
        detail: match std::str::from_utf8(body).err().filter(|_| encoding == encoding_rs::UTF_8) {
            Some(e) => e.to_string(),
            None => "a byte sequence that encoding does not define".into(),
        },
    })
}

/// The `encoding` of an ASCII-compatible document's XML declaration.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(200)];
    let declaration = head.strip_prefix(b"<?xml")?;
    let declaration = &declaration[..find(declaration, 0, b"?>")?];
    let at = find(declaration, 0, b"encoding")? + b"encoding".len();
    let rest = std::str::from_utf8(&declaration[at..]).ok()?.trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    let value = &rest[1..];
    Some(value[..value.find(quote)?].to_owned())
}

/// The local name of the document's root element, found without parsing
/// the document: how the reader for an XML file is chosen.
pub fn root_name(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut at = 0;
    loop {
        at += bytes.get(at..)?.iter().position(|b| !b.is_ascii_whitespace())?;
        let rest = &bytes[at..];
        at = if rest.starts_with(b"<?") {
            find(bytes, at, b"?>")? + 2
        } else if rest.starts_with(b"<!--") {
            find(bytes, at, b"-->")? + 3
        } else if rest.starts_with(b"<!") {
            // A document type, perhaps with an internal subset in brackets
            // (looked for before its first `>` only: a prolog of many
            // declarations must not be searched to the end each time).
            let close = find(bytes, at, b">")?;
            match bytes[at..close].iter().position(|&b| b == b'[') {
                Some(open) => find(bytes, at + open, b"]")?.checked_add(1).and_then(|end| find(bytes, end, b">"))? + 1,
                None => close + 1,
            }
        } else if rest.starts_with(b"<") {
            let name = &text[at + 1..];
            let end = name.find(|c: char| c.is_whitespace() || c == '>' || c == '/').unwrap_or(name.len());
            let name = &name[..end];
            return Some(name.rsplit(':').next().unwrap_or(name));
        } else {
            return None;
        };
    }
}

/// The children of `node` with local name `name`.
pub(crate) fn children<'a, 'input>(node: Node<'a, 'input>, name: &'static str) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children().filter(move |c| c.tag_name().name() == name)
}

/// The first child of `node` with local name `name`.
pub(crate) fn child<'a, 'input>(node: Node<'a, 'input>, name: &'static str) -> Option<Node<'a, 'input>> {
    children(node, name).next()
}

/// The first element below `node` with local name `name`, at any depth.
pub(crate) fn descendant<'a, 'input>(node: Node<'a, 'input>, name: &'static str) -> Option<Node<'a, 'input>> {
    node.descendants().find(|c| c.tag_name().name() == name)
}

/// The trimmed text of `node`'s child `name`, if it has any.
pub(crate) fn child_text<'a>(node: Node<'a, '_>, name: &'static str) -> Option<&'a str> {
    child(node, name).and_then(|c| c.text()).map(str::trim).filter(|t| !t.is_empty())
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
    fn a_document_type_is_accepted_and_an_entity_declaration_refused() {
        let muse = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<!DOCTYPE RestingECG SYSTEM \"restecg.dtd\">\n<RestingECG/>";
        assert_eq!(parse(muse).unwrap().root_element().tag_name().name(), "RestingECG");
        let bomb = "<!DOCTYPE l [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;\">]><l>&b;</l>";
        assert_eq!(parse(bomb).unwrap_err(), XmlError::EntityDeclared { at: 13 });
        let external = "<!DOCTYPE l [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><l>&x;</l>";
        assert!(matches!(parse(external), Err(XmlError::EntityDeclared { .. })));
        assert!(matches!(parse("<l>&undeclared;</l>"), Err(XmlError::Broken(_))));
    }

    #[test]
    fn text_is_decoded_as_its_mark_or_declaration_says() {
        let utf16: Vec<u8> =
            "\u{FEFF}<?xml version=\"1.0\" encoding=\"utf-16\"?><a>心电图</a>".encode_utf16().flat_map(|unit| unit.to_le_bytes()).collect();
        assert_eq!(decode(&utf16).unwrap(), "<?xml version=\"1.0\" encoding=\"utf-16\"?><a>心电图</a>");
        let (gb, _, _) = encoding_rs::GB18030.encode("<?xml version='1.0' encoding='GB2312'?><a>张三</a>");
        assert_eq!(decode(&gb).unwrap(), "<?xml version='1.0' encoding='GB2312'?><a>张三</a>");
        assert_eq!(
            decode(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>M\xFCller</a>").unwrap(),
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>Müller</a>"
        );
        assert_eq!(decode(b"<a>plain</a>").unwrap(), "<a>plain</a>");
        // UTF-8 that a .NET tool declared utf-16; UTF-16 with neither mark nor declaration.
        assert_eq!(
            decode("<?xml version=\"1.0\" encoding=\"utf-16\"?><a>心</a>".as_bytes()).unwrap(),
            "<?xml version=\"1.0\" encoding=\"utf-16\"?><a>心</a>"
        );
        let bare: Vec<u8> = "<a>心</a>".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(decode(&bare).unwrap(), "<a>心</a>");
        assert!(matches!(decode(b"<a>\xFF\xFE broken</a>"), Err(XmlError::BadEncoding { encoding: "UTF-8", .. })));
        assert_eq!(decode(b"<?xml version='1.0' encoding='EBCDIC-ish'?><a/>").unwrap_err(), XmlError::UnknownEncoding("EBCDIC-ish".into()));
    }

    #[test]
    fn the_root_element_is_found_past_the_prolog() {
        let muse = "<?xml version=\"1.0\"?>\n<!-- export -->\n<!DOCTYPE RestingECG SYSTEM \"restecg.dtd\">\n<RestingECG>";
        assert_eq!(root_name(muse), Some("RestingECG"));
        assert_eq!(root_name("<!DOCTYPE a [<!ELEMENT a ANY>]><a x='1'/>"), Some("a"));
        assert_eq!(root_name("\n<hl7:AnnotatedECG xmlns:hl7='urn:hl7-org:v3'>"), Some("AnnotatedECG"));
        assert_eq!(root_name("not xml"), None);
        // Many declarations in the prolog are each passed over once.
        let many = format!("{}<r/>", "<!x>".repeat(100_000));
        assert_eq!(root_name(&many), Some("r"));
    }
}
