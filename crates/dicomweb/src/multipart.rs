//! `multipart/related` framing for WADO-RS responses (PS3.18 8.6.1.2).
//!
//! Each part carries `Content-Type` (with the transfer syntax for pixel
//! data: cornerstone picks its decoder from the part's own header, spelled
//! exactly `Content-Type:`) and `Content-Location`. The boundary is random,
//! so no part's bytes can contain it by accident in practice (128 bits).

/// A response's parts, written one after another.
#[derive(Debug, Clone)]
pub struct Multipart {
    boundary: String,
}

impl Default for Multipart {
    fn default() -> Self {
        Self::new()
    }
}

impl Multipart {
    pub fn new() -> Multipart {
        Multipart { boundary: format!("telediag-{:032x}", rand::random::<u128>()) }
    }

    /// The response's `Content-Type`: `multipart/related; type="<part
    /// type>"; boundary=<boundary>`.
    pub fn content_type(&self, part_type: &str) -> String {
        format!("multipart/related; type=\"{part_type}\"; boundary={}", self.boundary)
    }

    /// What goes before a part's bytes.
    pub fn part_header(&self, content_type: &str, location: Option<&str>, length: Option<u64>) -> Vec<u8> {
        let mut head = format!("--{}\r\nContent-Type: {content_type}\r\n", self.boundary);
        if let Some(location) = location {
            head.push_str(&format!("Content-Location: {location}\r\n"));
        }
        if let Some(length) = length {
            head.push_str(&format!("Content-Length: {length}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// What follows each part's bytes.
    pub fn part_end(&self) -> &'static [u8] {
        b"\r\n"
    }

    /// What ends the response.
    pub fn closing(&self) -> Vec<u8> {
        format!("--{}--\r\n", self.boundary).into_bytes()
    }

    /// A whole response of in-memory parts: (content type, location, bytes).
    pub fn whole(&self, parts: &[(String, Option<String>, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::with_capacity(parts.iter().map(|p| p.2.len() + 200).sum::<usize>() + 64);
        for (content_type, location, bytes) in parts {
            out.extend_from_slice(&self.part_header(content_type, location.as_deref(), Some(bytes.len() as u64)));
            out.extend_from_slice(bytes);
            out.extend_from_slice(self.part_end());
        }
        out.extend_from_slice(&self.closing());
        out
    }
}

/// The boundary of a request's `multipart/related` Content-Type, if its
/// `type` is `application/dicom` (or absent); quotes removed.
pub fn stow_boundary(content_type: &str) -> Result<String, String> {
    let ranges = crate::media::parse_accept(content_type);
    let Some(range) = ranges.first() else { return Err(format!("cannot read the Content-Type {content_type:?}")) };
    if range.essence != "multipart/related" {
        return Err(format!(
            "STOW-RS takes multipart/related; type=\"application/dicom\" (one Part 10 instance per part), not {}",
            range.essence
        ));
    }
    if let Some(t) = range.param("type")
        && !t.eq_ignore_ascii_case("application/dicom")
    {
        return Err(format!("only instances (type=\"application/dicom\") are stored, not type={t:?}"));
    }
    range.param("boundary").map(str::to_owned).ok_or_else(|| "the multipart Content-Type has no boundary".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_framed_as_clients_split_them() {
        let m = Multipart { boundary: "B".into() };
        let body = m.whole(&[("image/jls; transfer-syntax=1.2.840.10008.1.2.4.80".into(), None, b"xy".to_vec())]);
        assert_eq!(
            body,
            b"--B\r\nContent-Type: image/jls; transfer-syntax=1.2.840.10008.1.2.4.80\r\nContent-Length: 2\r\n\r\nxy\r\n--B--\r\n"
        );
        assert_eq!(m.content_type("application/dicom"), "multipart/related; type=\"application/dicom\"; boundary=B");
    }

    #[test]
    fn stow_content_types() {
        assert_eq!(stow_boundary("multipart/related; type=\"application/dicom\"; boundary=\"0f3c\"").unwrap(), "0f3c");
        assert_eq!(stow_boundary("multipart/related; type=application/dicom; boundary=x").unwrap(), "x");
        assert!(stow_boundary("multipart/related; type=\"application/dicom+json\"; boundary=x").is_err());
        assert!(stow_boundary("application/dicom").is_err());
        assert!(stow_boundary("multipart/related; type=\"application/dicom\"").is_err());
    }
}
