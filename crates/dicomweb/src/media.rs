//! Media types: what a client's `Accept` asks for, and which transfer
//! syntax travels as which media type (PS3.18 8.7.3).
//!
//! The archive never transcodes what it stores, so for instances the answer
//! is the stored bytes or 406. Frames can also be decoded to explicit VR
//! little endian (`application/octet-stream`), which every viewer can read.

/// One media range of an `Accept` header.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRange {
    /// `type/subtype`, lower case.
    pub essence: String,
    /// Parameters other than `q`, names lower case, values unquoted.
    pub params: Vec<(String, String)>,
    pub q: f32,
}

impl MediaRange {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The ranges of an `Accept` header (or the `accept` query parameter),
/// best first; ties keep their order. Quoted and unquoted parameter values
/// are the same (PS3.18 8.7: `type="application/dicom"` = `type=application/dicom`).
pub fn parse_accept(header: &str) -> Vec<MediaRange> {
    let mut ranges = Vec::new();
    for item in split_outside_quotes(header, ',') {
        let mut fields = split_outside_quotes(item, ';').into_iter();
        let essence = fields.next().unwrap_or_default().trim().to_ascii_lowercase();
        if essence.is_empty() || !essence.contains('/') {
            continue;
        }
        let mut range = MediaRange { essence, params: Vec::new(), q: 1.0 };
        for field in fields {
            let Some((name, value)) = field.split_once('=') else { continue };
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim().trim_matches('"').to_owned();
            if name == "q" {
                range.q = value.parse().unwrap_or(0.0);
            } else {
                range.params.push((name, value));
            }
        }
        if range.q > 0.0 {
            ranges.push(range);
        }
    }
    // Stable: equal q keeps the client's order.
    ranges.sort_by(|a, b| b.q.total_cmp(&a.q));
    ranges
}

fn split_outside_quotes(s: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

pub const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";
pub const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
pub const OCTET_STREAM: &str = "application/octet-stream";

/// Whether pixel data in `ts` is stored uncompressed (native).
pub fn is_native(ts: &str) -> bool {
    matches!(ts, IMPLICIT_VR_LITTLE_ENDIAN | EXPLICIT_VR_LITTLE_ENDIAN | "1.2.840.10008.1.2.2" | "1.2.840.10008.1.2.1.99")
}

/// The media type a frame in transfer syntax `ts` travels as (PS3.18
/// Table 8.7.3-5); native pixel data is `application/octet-stream`.
pub fn frame_media_type(ts: &str) -> &'static str {
    let ts = ts.trim_end_matches(".1"); // fragmentable video forms share their type
    match ts {
        "1.2.840.10008.1.2.4.50" | "1.2.840.10008.1.2.4.51" | "1.2.840.10008.1.2.4.57" | "1.2.840.10008.1.2.4.70" => "image/jpeg",
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => "image/jls",
        "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91" => "image/jp2",
        "1.2.840.10008.1.2.4.92" | "1.2.840.10008.1.2.4.93" => "image/jpx",
        "1.2.840.10008.1.2.4.201" | "1.2.840.10008.1.2.4.202" | "1.2.840.10008.1.2.4.203" => "image/jphc",
        "1.2.840.10008.1.2.4.110" | "1.2.840.10008.1.2.4.111" | "1.2.840.10008.1.2.4.112" => "image/jxl",
        "1.2.840.10008.1.2.5" => "image/dicom-rle",
        "1.2.840.10008.1.2.4.100" | "1.2.840.10008.1.2.4.101" => "video/mpeg2",
        "1.2.840.10008.1.2.4.102"
        | "1.2.840.10008.1.2.4.103"
        | "1.2.840.10008.1.2.4.104"
        | "1.2.840.10008.1.2.4.105"
        | "1.2.840.10008.1.2.4.106" => "video/mp4",
        "1.2.840.10008.1.2.4.107" | "1.2.840.10008.1.2.4.108" => "video/H265",
        _ => OCTET_STREAM,
    }
}

/// The media types clients use for the same thing (legacy names).
fn same_media_type(a: &str, b: &str) -> bool {
    let canonical = |m: &str| match m {
        "image/x-dicom-rle" => "image/dicom-rle".to_owned(),
        "image/x-jls" => "image/jls".to_owned(),
        m => m.to_ascii_lowercase(),
    };
    canonical(a) == canonical(b)
}

/// How frames are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameEncoding {
    /// The stored bytes of each frame (fragments joined, or the native
    /// frame in little endian), as `media_type` with the stored syntax.
    Stored { media_type: &'static str, transfer_syntax: String },
    /// Decoded to explicit VR little endian stored values.
    Decoded,
}

impl FrameEncoding {
    pub fn media_type(&self) -> &'static str {
        match self {
            FrameEncoding::Stored { media_type, .. } => media_type,
            FrameEncoding::Decoded => OCTET_STREAM,
        }
    }

    pub fn transfer_syntax(&self) -> &str {
        match self {
            FrameEncoding::Stored { transfer_syntax, .. } => transfer_syntax,
            FrameEncoding::Decoded => EXPLICIT_VR_LITTLE_ENDIAN,
        }
    }
}

/// A response shape the client accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated<T> {
    pub choice: T,
    /// `multipart/related` (else one part, sent as the body itself).
    pub multipart: bool,
}

/// Why nothing the client accepts can be sent: the 406's reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct NotAcceptable(pub String);

/// Chooses how frames stored in `stored_ts` are sent to a client whose
/// `Accept` is `accept` (`None`: no header, taken as `*/*`).
pub fn negotiate_frames(accept: Option<&str>, stored_ts: &str) -> Result<Negotiated<FrameEncoding>, NotAcceptable> {
    let native = is_native(stored_ts);
    let stored = || {
        if native {
            // Native frames travel as explicit VR little endian whatever
            // their dataset's encoding (the frame reader swaps big endian).
            FrameEncoding::Stored { media_type: OCTET_STREAM, transfer_syntax: EXPLICIT_VR_LITTLE_ENDIAN.to_owned() }
        } else {
            FrameEncoding::Stored { media_type: frame_media_type(stored_ts), transfer_syntax: stored_ts.to_owned() }
        }
    };
    let stored_media = frame_media_type(stored_ts);
    let ranges = parse_accept(accept.unwrap_or("*/*"));
    for range in &ranges {
        let (part_type, multipart) = if range.essence == "multipart/related" {
            (range.param("type").unwrap_or(OCTET_STREAM).to_ascii_lowercase(), true)
        } else {
            (range.essence.clone(), false)
        };
        let ts = range.param("transfer-syntax");
        let choice = match (part_type.as_str(), ts) {
            ("*/*" | "*", _) | (_, Some("*")) => Some(stored()),
            (OCTET_STREAM, None) | (OCTET_STREAM, Some(EXPLICIT_VR_LITTLE_ENDIAN)) => {
                Some(if native { stored() } else { FrameEncoding::Decoded })
            }
            (t, None) if !native && same_media_type(t, stored_media) => Some(stored()),
            (t, Some(ts)) if !native && ts == stored_ts && same_media_type(t, stored_media) => Some(stored()),
            (OCTET_STREAM, Some(ts)) if !native && ts == stored_ts => Some(stored()),
            _ => None,
        };
        if let Some(choice) = choice {
            return Ok(Negotiated { choice, multipart: multipart || range.essence == "*/*" });
        }
    }
    let as_stored = if native {
        format!("{OCTET_STREAM}; transfer-syntax={EXPLICIT_VR_LITTLE_ENDIAN}")
    } else {
        format!("{stored_media}; transfer-syntax={stored_ts}, or {OCTET_STREAM}; transfer-syntax={EXPLICIT_VR_LITTLE_ENDIAN} (decoded)")
    };
    Err(NotAcceptable(format!(
        "the frames are stored in transfer syntax {stored_ts}; this server sends them as {as_stored}, or as stored with \
         transfer-syntax=*; the request accepted {}",
        accept.unwrap_or("nothing")
    )))
}

/// Checks that a client retrieving whole instances (`application/dicom`)
/// accepts them as stored: the archive keeps the bytes it received and does
/// not transcode.
pub fn negotiate_instances(accept: Option<&str>, stored_syntaxes: &[&str]) -> Result<(), NotAcceptable> {
    let ranges = parse_accept(accept.unwrap_or("*/*"));
    for range in &ranges {
        let part_type = if range.essence == "multipart/related" {
            range.param("type").unwrap_or("application/dicom").to_ascii_lowercase()
        } else {
            range.essence.clone()
        };
        if !matches!(part_type.as_str(), "application/dicom" | "*/*" | "*") && range.essence != "*/*" {
            continue;
        }
        match range.param("transfer-syntax") {
            None | Some("*") => return Ok(()),
            Some(ts) if stored_syntaxes.iter().all(|s| *s == ts) => return Ok(()),
            _ => {}
        }
    }
    let mut syntaxes: Vec<&str> = stored_syntaxes.to_vec();
    syntaxes.sort_unstable();
    syntaxes.dedup();
    Err(NotAcceptable(format!(
        "instances are sent as stored (transfer syntax {}), never transcoded; accept multipart/related; \
         type=\"application/dicom\" with transfer-syntax=* or without one; the request accepted {}",
        syntaxes.join(", "),
        accept.unwrap_or("nothing")
    )))
}

/// The image format of a rendered resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendered {
    Jpeg,
    Png,
}

impl Rendered {
    pub fn media_type(self) -> &'static str {
        match self {
            Rendered::Jpeg => "image/jpeg",
            Rendered::Png => "image/png",
        }
    }
}

/// The format of a rendered or thumbnail resource: the `accept` query
/// parameter first (PS3.18 8.7.8.1), then the header; JPEG by default.
pub fn negotiate_rendered(accept_param: Option<&str>, accept: Option<&str>) -> Result<Rendered, NotAcceptable> {
    for source in [accept_param, accept].into_iter().flatten() {
        let ranges = parse_accept(source);
        for range in &ranges {
            match range.essence.as_str() {
                "image/jpeg" | "image/*" | "*/*" => return Ok(Rendered::Jpeg),
                "image/png" => return Ok(Rendered::Png),
                _ => {}
            }
        }
        if !ranges.is_empty() {
            return Err(NotAcceptable(format!("rendered images are sent as image/jpeg or image/png; the request accepted {source}")));
        }
    }
    Ok(Rendered::Jpeg)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JLS: &str = "1.2.840.10008.1.2.4.80";

    #[test]
    fn accept_values_quoted_or_not_are_the_same() {
        let quoted = parse_accept("multipart/related; type=\"application/octet-stream\"; transfer-syntax=*");
        let bare = parse_accept("multipart/related; type=application/octet-stream; transfer-syntax=*");
        assert_eq!(quoted, bare);
        assert_eq!(quoted[0].param("type"), Some("application/octet-stream"));
        let ranked = parse_accept("image/png;q=0.5, image/jpeg");
        assert_eq!(ranked[0].essence, "image/jpeg");
    }

    #[test]
    fn ohif_gets_stored_frames_with_their_media_type() {
        let ohif = "multipart/related; type=application/octet-stream; transfer-syntax=*";
        let n = negotiate_frames(Some(ohif), JLS).unwrap();
        assert_eq!(n.choice, FrameEncoding::Stored { media_type: "image/jls", transfer_syntax: JLS.into() });
        assert!(n.multipart);
        let n = negotiate_frames(Some(ohif), IMPLICIT_VR_LITTLE_ENDIAN).unwrap();
        assert_eq!(n.choice.media_type(), OCTET_STREAM);
        assert_eq!(n.choice.transfer_syntax(), EXPLICIT_VR_LITTLE_ENDIAN);
    }

    #[test]
    fn compressed_frames_are_decoded_when_little_endian_is_asked() {
        for accept in [
            "multipart/related; type=\"application/octet-stream\"",
            "multipart/related; type=\"application/octet-stream\"; transfer-syntax=1.2.840.10008.1.2.1",
        ] {
            assert_eq!(negotiate_frames(Some(accept), JLS).unwrap().choice, FrameEncoding::Decoded, "{accept}");
        }
        let asked = "multipart/related; type=\"image/jls\"; transfer-syntax=1.2.840.10008.1.2.4.80";
        assert_eq!(negotiate_frames(Some(asked), JLS).unwrap().choice.media_type(), "image/jls");
    }

    #[test]
    fn what_cannot_be_produced_is_406_with_what_can() {
        let err = negotiate_frames(Some("multipart/related; type=\"image/jp2\""), JLS).unwrap_err();
        assert!(err.0.contains("image/jls; transfer-syntax=1.2.840.10008.1.2.4.80"), "{}", err.0);
        assert!(negotiate_frames(Some("multipart/related; type=\"image/jls\""), EXPLICIT_VR_LITTLE_ENDIAN).is_err());
        assert!(
            negotiate_instances(Some("multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.50"), &[JLS])
                .is_err()
        );
        assert!(negotiate_instances(Some("multipart/related; type=application/dicom; transfer-syntax=*"), &[JLS]).is_ok());
        assert!(negotiate_instances(None, &[JLS]).is_ok());
    }

    #[test]
    fn rendered_prefers_the_query_parameter() {
        assert_eq!(negotiate_rendered(Some("image/png"), Some("image/jpeg")), Ok(Rendered::Png));
        assert_eq!(negotiate_rendered(None, Some("image/*")), Ok(Rendered::Jpeg));
        assert_eq!(negotiate_rendered(None, None), Ok(Rendered::Jpeg));
        assert!(negotiate_rendered(None, Some("image/gif")).is_err());
    }
}
