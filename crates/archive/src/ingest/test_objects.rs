//! Small DICOM objects for the ingest tests.

use crate::part10::FileMeta;

/// What a C-STORE of [`ct_dataset`] announces.
pub(crate) fn ct_meta(sop: &str) -> FileMeta {
    FileMeta {
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        sop_instance_uid: sop.into(),
        transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
        source_ae_title: None,
    }
}

/// A small CT dataset, explicit VR little endian.
pub(crate) fn ct_dataset(sop: &str) -> Vec<u8> {
    ct_in(sop, "1.2.3", "1.2.3.4", 0x11)
}

/// A small CT dataset in the given study and series, its pixels all `pixel`.
pub(crate) fn ct_in(sop: &str, study: &str, series: &str, pixel: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut element = |group: u16, element: u16, vr: &[u8; 2], value: &[u8]| {
        let mut value = value.to_vec();
        if value.len() % 2 == 1 {
            value.push(if vr == b"UI" { 0 } else { b' ' });
        }
        out.extend(group.to_le_bytes());
        out.extend(element.to_le_bytes());
        out.extend(vr);
        if vr == b"OW" {
            out.extend([0, 0]);
            out.extend((value.len() as u32).to_le_bytes());
        } else {
            out.extend((value.len() as u16).to_le_bytes());
        }
        out.extend(value);
    };
    element(0x0008, 0x0016, b"UI", b"1.2.840.10008.5.1.4.1.1.2");
    element(0x0008, 0x0018, b"UI", sop.as_bytes());
    element(0x0010, 0x0020, b"LO", b"P1");
    element(0x0020, 0x000D, b"UI", study.as_bytes());
    element(0x0020, 0x000E, b"UI", series.as_bytes());
    element(0x7FE0, 0x0010, b"OW", &[pixel; 2048]);
    out
}
