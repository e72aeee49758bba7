//! DCMTK's storescu, as a county hospital, pushes the whole public pydicom +
//! pydicom-data corpus. Every Part 10 file must be stored with a dataset
//! byte-identical to the one sent, indexed under its study, series and
//! patient, with names decoded right; a second push, over several
//! associations, must change nothing.

mod common;

use std::collections::HashSet;

use common::*;
use telediag_archive::SopInstanceUid;

/// Files of the corpus that storescu sends but that are not valid objects:
/// each must be refused, with this reason in the Error Comment and the log.
const EXPECTED_REFUSALS: &[(&str, &str)] = &[
    // pydicom-made JPEG-LS samples without a Study Instance UID (Type 1)
    ("JPEGLSNearLossless_08.dcm", "lacks Study Instance UID (0020,000D)"),
    ("JPEGLSNearLossless_16.dcm", "lacks Study Instance UID (0020,000D)"),
    ("SC_rgb_jls_lossy_line.dcm", "lacks Study Instance UID (0020,000D)"),
    ("SC_rgb_jls_lossy_sample.dcm", "lacks Study Instance UID (0020,000D)"),
    // its UIDs are hex digests, not UIDs
    ("bad_sequence.dcm", "UID of digits and dots"),
];

/// Files storescu itself will not send (it cannot parse them, or they lack
/// the SOP UIDs a C-STORE needs).
fn refused_by_sender(log: &str) -> HashSet<std::path::PathBuf> {
    log.lines()
        .filter_map(|l| {
            l.strip_prefix("E: Bad DICOM file: ")
                .map(|rest| rest.rsplit_once(": ").map_or(rest, |(path, _)| path))
                .or_else(|| l.strip_prefix("E: No SOP Class or Instance UID in file: "))
        })
        .map(|p| std::path::PathBuf::from(p.trim()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_public_corpus_is_stored_byte_for_byte_and_a_resend_changes_nothing() {
    if !require_tool("storescu") {
        return;
    }
    let Some(corpus) = pydicom_corpus() else { return };
    // Every Part 10 file of a storage SOP class (DICOMDIRs are media
    // directories, not objects to store; one file has an empty SOP class).
    let started = std::time::Instant::now();
    let files: Vec<CorpusFile> =
        part10_files(&corpus).into_iter().filter(|f| telediag_archive::sop_classes::name_of(&f.meta.sop_class_uid).is_some()).collect();
    assert!(files.len() > 200, "expected the whole corpus, found {} Part 10 files", files.len());

    eprintln!("corpus read: {:?}", started.elapsed());
    let mut server = Server::new();
    server.add_site("语料医院", "CORPUS", &[]);
    server.start();
    let profile = server.dir.path().join("storescu.cfg");
    storescu_profile(&files, &profile);

    // One association for everything.
    let started = std::time::Instant::now();
    let log = storescu(server.dicom_port, "CORPUS", &files, &profile);
    eprintln!("first push: {:?}", started.elapsed());
    let acked: HashSet<_> = acknowledged(&log).into_iter().collect();
    let unsendable = refused_by_sender(&log);
    assert!(unsendable.len() < 20, "storescu could not send {} files: {unsendable:?}", unsendable.len());
    let refused: Vec<_> = files.iter().filter(|f| !acked.contains(&f.path) && !unsendable.contains(&f.path)).collect();
    let expected_refused: HashSet<&str> = EXPECTED_REFUSALS.iter().map(|(name, _)| *name).collect();
    let mut unexpected = Vec::new();
    for f in &refused {
        let name = f.path.file_name().unwrap().to_string_lossy().into_owned();
        if !expected_refused.contains(name.as_str()) {
            unexpected.push(name);
        }
    }
    let server_log = server.log();
    for (name, reason) in EXPECTED_REFUSALS {
        let f = files.iter().find(|f| f.path.ends_with(name)).unwrap_or_else(|| panic!("{name} missing from corpus"));
        assert!(!acked.contains(&f.path), "{name} is not a valid object but was acknowledged");
        let logged = server_log.lines().any(|l| l.contains("C-STORE failed") && l.contains("0xC000") && l.contains(reason));
        assert!(logged, "{name}: no log line with status and reason {reason:?}");
    }
    assert!(
        unexpected.is_empty(),
        "{} files were not stored: {unexpected:?}\n--- storescu ---\n{}\n--- server ---\n{}",
        unexpected.len(),
        log.lines().filter(|l| l.starts_with("E:") || l.contains("Status")).collect::<Vec<_>>().join("\n"),
        server.log().lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).collect::<Vec<_>>().join("\n")
    );

    // What storescu really sent, as recorded bit for bit by DCMTK's storescp.
    let reference = ReferenceReceiver::start("REFERENCE");
    let started = std::time::Instant::now();
    let reference_log = storescu_to(reference.port, "REFERENCE", "CORPUS", &files, &profile);
    eprintln!("reference push: {:?}", started.elapsed());
    let sent = reference.datasets();
    assert!(!sent.is_empty(), "the reference receiver got nothing:\n{reference_log}");

    // Every acknowledged object is indexed, and stored with exactly the dataset sent.
    let db = server.database().await;
    let mut compared = 0;
    for f in files.iter().filter(|f| acked.contains(&f.path)) {
        let sop = SopInstanceUid::parse(&f.sop_instance_uid).unwrap();
        let versions = db.versions_of(&sop).await.unwrap();
        assert!(!versions.is_empty(), "{} acknowledged but not indexed", f.path.display());
        let ours: Vec<Vec<u8>> = versions
            .iter()
            .map(|v| {
                let stored = server.object(&v.object_key);
                let (_, offset) = telediag_archive::part10::read_header(&stored[..]).unwrap();
                stored[offset as usize..].to_vec()
            })
            .collect();
        let theirs = sent.get(&f.sop_instance_uid).unwrap_or_else(|| panic!("{} not in the reference", f.path.display()));
        for dataset in theirs {
            assert!(ours.contains(dataset), "{}: a dataset sent for this SOP instance is not stored byte for byte", f.path.display());
            compared += 1;
        }
    }
    assert!(compared >= acked.len(), "compared {compared} datasets for {} acknowledged files", acked.len());
    let distinct_datasets: HashSet<&Vec<u8>> =
        files.iter().filter(|f| acked.contains(&f.path)).flat_map(|f| &sent[&f.sop_instance_uid]).collect();

    let stored_before = db.count_instances().await.unwrap();
    assert_eq!(stored_before as usize, distinct_datasets.len(), "one stored version per distinct dataset");

    // Names and hierarchy: a few files whose content is known.
    let page = db.list_studies(&Default::default()).await.unwrap();
    let names: HashSet<String> = page.studies.iter().filter_map(|s| s.patient_name.clone()).collect();
    for expected in [
        "Wang^XiaoDong=王^小东=",               // GB18030
        "Wang^XiaoDong=王^小東=",               // ISO_IR 192
        "Yamada^Tarou=山田^太郎=やまだ^たろう", // ISO 2022 IR 87
        "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう",      // ISO 2022 IR 13 + IR 87
        "Hong^Gildong=洪^吉洞=홍^길동",         // ISO 2022 IR 149
        "Äneas^Rüdiger",                        // ISO_IR 100
        "Διονυσιος",                            // ISO_IR 126
        "שרון^דבורה",                           // ISO_IR 138
    ] {
        assert!(names.contains(expected), "patient name {expected:?} not indexed; names: {names:?}");
    }
    let ct = files.iter().find(|f| f.path.ends_with("CT_small.dcm")).expect("CT_small.dcm in corpus");
    let versions = db.versions_of(&SopInstanceUid::parse(&ct.meta.sop_instance_uid).unwrap()).await.unwrap();
    assert!(
        versions[0]
            .object_key
            .starts_with("originals/1.3.6.1.4.1.5962.1.2.1.20040119072730.12322/1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322/"),
        "{}",
        versions[0].object_key
    );

    // A second push of everything, over four associations at once, changes nothing.
    eprintln!("checks done: {:?}", started.elapsed());
    let chunks: Vec<Vec<CorpusFile>> = files.chunks(files.len().div_ceil(4)).map(|c| c.to_vec()).collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let (port, profile) = (server.dicom_port, profile.clone());
            std::thread::spawn(move || storescu(port, "CORPUS", &chunk, &profile))
        })
        .collect();
    let mut acked_again = HashSet::new();
    for h in handles {
        acked_again.extend(acknowledged(&h.join().unwrap()));
    }
    eprintln!("second push: {:?}", started.elapsed());
    assert_eq!(acked_again, acked, "the resend was not acknowledged exactly as the first push");
    assert_eq!(db.count_instances().await.unwrap(), stored_before, "a resend of identical objects stored something");
    assert!(server.staged_files().is_empty(), "staging not empty: {:?}", server.staged_files());
    server.stop();
}
