//! The fuzz targets: every parser that reads bytes a hospital (or anyone
//! on the network) chose. Each takes arbitrary bytes and must return —
//! `Ok` or a typed error — without panicking, hanging or asking for an
//! allocation sized by a field it did not check. Results are dropped: only
//! the absence of a crash is asserted.

use std::io::Cursor;

/// A target: its name, the function, and what its seed files look like.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
    /// Which seed files (by lower-case file name) it is fed.
    pub seeds: fn(&str) -> bool,
    /// What it reads, for `telediag-fuzz list`.
    pub about: &'static str,
}

fn dicom_file(name: &str) -> bool {
    name.ends_with(".dcm") || !name.contains('.')
}

/// Every target, in the order the CI runs them.
pub const TARGETS: &[Target] = &[
    Target { name: "pdu", run: pdu, seeds: |_| false, about: "dicom-ul's PDU reader, as the gateway calls it (strict and lenient)" },
    Target { name: "dimse", run: dimse, seeds: |_| false, about: "the gateway's DIMSE command-set parser and its accessors" },
    Target { name: "part10", run: part10, seeds: dicom_file, about: "the archive's Part 10 header reader" },
    Target { name: "scan", run: scan, seeds: dicom_file, about: "the archive's dataset scanner, in each transfer syntax" },
    Target { name: "scp_ecg", run: scp_ecg, seeds: |n| n.ends_with(".scp"), about: "the SCP-ECG reader and the DICOM ECG writer after it" },
    Target { name: "aecg", run: aecg, seeds: |n| n.ends_with(".xml"), about: "the HL7 aECG reader (and the bounded XML parser)" },
    Target {
        name: "ecg_xml",
        run: ecg_xml,
        seeds: |n| n.ends_with(".xml"),
        about: "every ECG XML as an upload reaches it: decoding, the root's reader (aECG, GE MUSE, Philips, CardioSoft), the DICOM ECG writer",
    },
    Target { name: "xli", run: xli, seeds: |_| false, about: "Philips' XLI decompression (LZW and second differences) on raw chunks" },
    Target {
        name: "wfdb",
        run: wfdb,
        seeds: |n| n.ends_with(".hea") || n.ends_with(".atr"),
        about: "WFDB header + signal, and MIT annotations",
    },
    Target {
        name: "dicom_ecg",
        run: dicom_ecg,
        seeds: dicom_file,
        about: "the DICOM waveform reader, behind the archive's check as uploads are",
    },
    Target {
        name: "multipart",
        run: multipart,
        seeds: |_| false,
        about: "the HTTP service's multipart reader (axum/multer) as uploads use it",
    },
    Target {
        name: "pixels",
        run: pixels,
        seeds: dicom_file,
        about: "pixel decoding and rendering of what the archive accepted (every codec's entry point)",
    },
];

pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The gateway announces a 256 KiB maximum PDU.
const MAX_PDU: u32 = 256 * 1024;

fn pdu(data: &[u8]) {
    let _ = dicom_ul::read_pdu(data, MAX_PDU, true);
    let _ = dicom_ul::read_pdu(data, MAX_PDU, false);
}

fn dimse(data: &[u8]) {
    if let Ok(command) = pacs_gateway::dimse::CommandSet::parse(data) {
        let _ = (command.command_field(), command.message_id(), command.status(), command.has_dataset());
        let _ = (command.affected_sop_class_uid(), command.affected_sop_instance_uid());
    }
}

fn part10(data: &[u8]) {
    let _ = telediag_archive::part10::read_header(data);
}

/// The transfer syntaxes the scanner distinguishes; the first byte picks one.
const SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.5",
];

fn scan(data: &[u8]) {
    use dicom_core::Tag;
    const PATIENT_NAME: Tag = Tag(0x0010, 0x0010);
    const STUDY_INSTANCE_UID: Tag = Tag(0x0020, 0x000D);
    let (selector, dataset) = match data.split_first() {
        Some((first, rest)) => (*first as usize % SYNTAXES.len(), rest),
        None => return,
    };
    // A Part 10 file's dataset follows its header; a bare dataset is scanned as is.
    let dataset = match telediag_archive::part10::read_header(dataset) {
        Ok((_, header_len)) => &dataset[(header_len as usize).min(dataset.len())..],
        Err(_) => dataset,
    };
    if let Ok(found) = telediag_archive::scan::scan_dataset(Cursor::new(dataset), SYNTAXES[selector], dataset.len() as u64) {
        let _ = (found.text(PATIENT_NAME), found.text(STUDY_INSTANCE_UID), found.character_set());
    }
}

fn scp_ecg(data: &[u8]) {
    if let Ok(record) = telediag_ecg::read::scp::read(data) {
        let _ = telediag_ecg::dicom_writer::to_dicom(&record, &telediag_ecg::dicom_writer::Provenance::from_source(data));
    }
}

fn aecg(data: &[u8]) {
    let _ = telediag_ecg::read::aecg::read(data);
}

fn ecg_xml(data: &[u8]) {
    if let Ok(record) = telediag_ecg::read_bytes(data) {
        let _ = telediag_ecg::dicom_writer::to_dicom(&record, &telediag_ecg::dicom_writer::Provenance::from_source(data));
    }
}

/// The first byte picks how many leads are asked for; the rest is chunks.
fn xli(data: &[u8]) {
    let Some((&leads, chunks)) = data.split_first() else { return };
    let _ = telediag_ecg::read::philips::xli::decode(chunks, usize::from(leads % 16) + 1, 5500);
}

/// Header text up to the first NUL, the signal file after it; the whole
/// input is also read as an annotation file.
fn wfdb(data: &[u8]) {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let header = String::from_utf8_lossy(&data[..split]);
    let signal = data.get(split + 1..).unwrap_or_default();
    let _ = telediag_ecg::read::wfdb::read(&header, |_| Ok(signal.to_vec()));
    let _ = telediag_ecg::read::wfdb::read_annotations(data);
}

/// As uploads reach it: checked by the archive's scanner first (which is
/// what keeps dicom-object from reserving a declared 3.7 GB).
fn dicom_ecg(data: &[u8]) {
    if telediag_archive::scan::check_bytes(data).is_ok() {
        let _ = telediag_ecg::read::dicom::read(data);
    }
}

/// The boundary the seeds use; the body is the input.
pub const BOUNDARY: &str = "telediagFuzzBoundary";

fn multipart(data: &[u8]) {
    use axum::extract::FromRequest;
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime =
            tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime");
    }
    let request = axum::http::Request::builder()
        .method("POST")
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(axum::body::Body::from(data.to_vec()))
        .expect("a request");
    RUNTIME.with(|runtime| {
        runtime.block_on(async {
            let Ok(mut parts) = axum::extract::Multipart::from_request(request, &()).await else { return };
            while let Ok(Some(field)) = parts.next_field().await {
                let _ = (field.name().map(str::len), field.file_name().map(str::len));
                if field.bytes().await.is_err() {
                    break;
                }
            }
        })
    });
}

/// Writes the input where the renderer reads files (memory-backed when the
/// machine has /dev/shm), then decodes and renders frame 0 and the frame
/// the first byte names.
fn pixels(data: &[u8]) {
    thread_local! {
        static PATH: std::path::PathBuf = {
            let dir = if std::path::Path::new("/dev/shm").is_dir() { std::path::PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
            dir.join(format!("telediag-fuzz-{}-{:?}.dcm", std::process::id(), std::thread::current().id()))
        };
    }
    // The renderer is given what the archive accepted: Part 10 files (it
    // stores nothing else) that passed ingest's scan. The same precondition
    // here; bare datasets reach the renderer only from `telediag thumbnails`
    // on an operator's own files.
    if telediag_archive::part10::read_header(data).is_err() || telediag_archive::scan::check_bytes(data).is_err() {
        return;
    }
    PATH.with(|path| {
        if std::fs::write(path, data).is_err() {
            return;
        }
        let frame = data.first().map_or(0, |b| u32::from(*b % 4));
        let _ = telediag_imaging::render::render_file(path, 0);
        if frame > 0 {
            let _ = telediag_imaging::render::decode_file(path, frame);
        }
    });
}

/// Seeds made in code, for targets whose inputs no corpus file holds.
pub fn builtin_seeds(name: &str) -> Vec<Vec<u8>> {
    use dicom_ul::pdu::*;
    match name {
        "pdu" => {
            let rq = Pdu::AssociationRQ(AssociationRQ {
                protocol_version: 1,
                calling_ae_title: "CHENGGUAN_CT".into(),
                called_ae_title: "TELEDIAG".into(),
                application_context_name: "1.2.840.10008.3.1.1.1".into(),
                presentation_contexts: vec![PresentationContextProposed {
                    id: 1,
                    abstract_syntax: "1.2.840.10008.5.1.4.1.1.2".into(),
                    transfer_syntaxes: vec!["1.2.840.10008.1.2.1".into(), "1.2.840.10008.1.2".into()],
                }],
                user_variables: vec![
                    UserVariableItem::MaxLength(16384),
                    UserVariableItem::ImplementationClassUID("1.2.3.4".into()),
                    UserVariableItem::ImplementationVersionName("FUZZ".into()),
                ],
            });
            let data = Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: 1,
                    value_type: PDataValueType::Command,
                    is_last: true,
                    data: pacs_gateway::dimse::echo_request(7),
                }],
            };
            [rq, data, Pdu::ReleaseRQ, Pdu::AbortRQ { source: AbortRQSource::ServiceUser }]
                .iter()
                .filter_map(|pdu| {
                    let mut bytes = Vec::new();
                    dicom_ul::write_pdu(&mut bytes, pdu).ok().map(|()| bytes)
                })
                .collect()
        }
        "dimse" => vec![
            pacs_gateway::dimse::echo_request(1),
            pacs_gateway::dimse::store_request(2, "1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.2.1125.1"),
        ],
        "multipart" => vec![
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s0010_re.hea\"\r\nContent-Type: text/plain\r\n\r\n\
                 s0010_re 1 1000 10\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.dat\"\r\n\r\n\
                 \x01\x02\x03\x04\r\n--{BOUNDARY}--\r\n"
            )
            .into_bytes(),
        ],
        "wfdb" => vec![b"rec 2 500 20\nrec.dat 16 200 12 0 0 0 0 I\nrec.dat 16 200 12 0 0 0 0 II\n\0\x01\x00\x02\x00\x03\x00".to_vec()],
        _ => Vec::new(),
    }
}
