//! ECGs in through both doors, HTTP upload and C-STORE, analysed by the
//! pipeline and served to the right people only.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{ADMIN_PASSWORD, Server, http, login, post_bytes as post, require_tool};

fn corpus() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/ecg");
    if root.is_dir() {
        return Some(root);
    }
    eprintln!("skipping: ../shared/corpus/ecg is absent");
    None
}

fn multipart(parts: &[(&str, Vec<u8>)]) -> (String, Vec<u8>) {
    let boundary = "telediag-test-boundary-7d3f";
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Waits for the pipeline's analysis of `sop`.
fn measurements(port: u16, token: &str, sop: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = http(port, "GET", &format!("/api/instances/{sop}/ecg-measurements"), Some(token), None);
        if status == 200 {
            return json(&body);
        }
        assert!(Instant::now() < deadline, "no ECG analysis for {sop}: {status} {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn hostile_dicom() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/dicom_ecg/oom-value-length-3.7GB")).unwrap()
}

fn nested_aecg(depth: usize) -> Vec<u8> {
    format!("<AnnotatedECG>{}{}</AnnotatedECG>", "<component>".repeat(depth), "</component>".repeat(depth)).into_bytes()
}

#[test]
fn ecgs_uploaded_or_pushed_are_archived_analysed_and_kept_to_their_site() {
    let Some(ecg) = corpus() else { return };
    let mut server = Server::new();
    server.add_site("东山县医院", "DONGSHAN", &[]);
    server.add_site("西河县医院", "XIHE", &[]);
    server.start();
    let port = server.http_port;
    let admin = login(port, "admin", ADMIN_PASSWORD);
    for (username, site, roles) in [
        ("dongshan_tech", Some("东山县医院"), r#"["site_user"]"#),
        ("xihe_tech", Some("西河县医院"), r#"["site_user"]"#),
        ("ecg_reader", None, r#"["ecg_doctor"]"#),
    ] {
        let site = site.map(|s| format!(r#","site":"{s}""#)).unwrap_or_default();
        let body =
            format!(r#"{{"username":"{username}","display_name":"{username}","password":"password-{username}","roles":{roles}{site}}}"#);
        assert_eq!(http(port, "POST", "/api/users", Some(&admin), Some(&body)).0, 201);
    }
    let dongshan = login(port, "dongshan_tech", "password-dongshan_tech");
    let xihe = login(port, "xihe_tech", "password-xihe_tech");
    let reader = login(port, "ecg_reader", "password-ecg_reader");

    // SCP-ECG as a raw body: stored, converted, original kept.
    let scp = std::fs::read(ecg.join("ecgtoolkit/Example.scp")).unwrap();
    let (status, body) = post(port, "/api/ecg?name=Example.scp", &dongshan, "application/octet-stream", &scp);
    assert_eq!(status, 201, "{body}");
    let scp_reply = json(&body);
    assert_eq!(scp_reply["format"], "SCP-ECG");
    assert_eq!(scp_reply["converted"], true);
    assert_eq!(scp_reply["leads"], 12);
    let original_key = scp_reply["originals"][0].as_str().unwrap();
    assert_eq!(server.object(original_key), scp, "the SCP file is kept byte for byte");
    // The same file again is recognised, not stored twice.
    let (status, body) = post(port, "/api/ecg?name=Example.scp", &dongshan, "application/octet-stream", &scp);
    assert_eq!((status, json(&body)["outcome"].as_str().unwrap().to_owned()), (200, "duplicate".to_owned()), "{body}");
    // Another hospital sending it cannot make it theirs, nor learn that it
    // is a duplicate: 409, nothing of the owner's in the reason.
    let (status, body) = post(port, "/api/ecg?name=Example.scp", &xihe, "application/octet-stream", &scp);
    assert_eq!(status, 409, "{body}");
    let reason = json(&body)["error"].as_str().unwrap().to_owned();
    assert!(reason.contains("already held by the centre for another sender") && !reason.contains("东山"), "{reason}");

    // WFDB as multipart: the header and the two signal files it names.
    let parts: Vec<(&str, Vec<u8>)> =
        ["s0010_re.hea", "s0010_re.dat", "s0010_re.xyz"].iter().map(|n| (*n, std::fs::read(ecg.join("wfdb").join(n)).unwrap())).collect();
    let (content_type, body) = multipart(&parts);
    let (status, reply) = post(port, "/api/ecg", &dongshan, &content_type, &body);
    assert_eq!(status, 201, "{reply}");
    assert_eq!(json(&reply)["format"], "WFDB");

    // Bad input: 400 with the reason, nothing stored.
    // Originals only: the pipeline may still be adding the accepted ECGs' pages.
    let files_before = server.original_files().len();
    let truncated_scp = scp[..20000].to_vec();
    let (header_only, header_only_body) = multipart(&parts[..1]);
    for (what, content_type, body, reason) in [
        ("broken XML", "application/xml".to_owned(), b"<AnnotatedECG><component>".to_vec(), "broken XML"),
        ("truncated SCP", "application/octet-stream".to_owned(), truncated_scp, "record says it is 34144 bytes"),
        ("WFDB without data", header_only, header_only_body, "does not include"),
        ("not an ECG", "application/octet-stream".to_owned(), b"MZ\x90\x00 not an ecg".to_vec(), "not an ECG"),
        // 4,000 nested elements in 28 KB overflowed a worker's stack.
        ("deeply nested aECG", "application/xml".to_owned(), nested_aecg(4000), "nested more than 128 deep"),
        // Found by fuzzing: an element declaring 3.7 GB, which dicom-object
        // reserved before reading.
        ("DICOM declaring 3.7 GB", "application/dicom".to_owned(), hostile_dicom(), "the DICOM file is malformed"),
    ] {
        let (status, reply) = post(port, "/api/ecg", &dongshan, &content_type, &body);
        assert_eq!(status, 400, "{what}: {reply}");
        assert!(json(&reply)["error"].as_str().unwrap().contains(reason), "{what}: {reply}");
    }
    assert_eq!(server.original_files().len(), files_before, "a refused upload stores nothing");
    // Over the upload limit: 413, as JSON, and the server carries on.
    let (status, reply) = post(port, "/api/ecg", &dongshan, "application/octet-stream", &vec![0u8; 65 * 1024 * 1024]);
    assert_eq!(status, 413, "{reply}");
    assert!(json(&reply)["error"].as_str().is_some_and(|e| e.contains("length limit")), "{reply}");
    // Readers read; they do not upload.
    assert_eq!(post(port, "/api/ecg", &reader, "application/octet-stream", &scp).0, 403);

    // A DICOM 12-lead ECG pushed by the hospital's DCMTK.
    if require_tool("storescu") {
        let out = std::process::Command::new("storescu")
            .args(["-aet", "DONGSHAN", "-aec", "TELEDIAG", "127.0.0.1", &server.dicom_port.to_string()])
            .arg(ecg.join("dicom/waveform_ecg.dcm"))
            .output()
            .unwrap();
        assert!(out.status.success(), "storescu: {}", String::from_utf8_lossy(&out.stderr));
        let (_, list) = http(port, "GET", "/api/studies?limit=10", Some(&reader), None);
        assert_eq!(json(&list)["total"], 3, "{list}");
    }

    // The pipeline analysed the upload; the centre's reader and its own site see it.
    let sop = scp_reply["sop_instance_uid"].as_str().unwrap();
    let analysis = measurements(port, &reader, sop);
    assert_eq!(analysis["sampling_rate_hz"], 500.0);
    assert_eq!(analysis["qrs_samples"].as_array().unwrap().len(), 12);
    let pr = analysis["measurements"]["pr_ms"].as_f64().unwrap();
    assert!((pr - 148.0).abs() <= 10.0, "PR {pr}");
    assert_eq!(analysis["device"]["pr_ms"], 148.0, "device measurements kept beside ours");
    assert_eq!(measurements(port, &dongshan, sop)["qrs_samples"], analysis["qrs_samples"]);
    let (status, _) = http(port, "GET", &format!("/api/instances/{sop}/ecg-measurements"), Some(&xihe), None);
    assert_eq!(status, 404, "another site's ECG does not exist for them");
    let (status, head, png) = common::http_raw(port, &format!("/api/instances/{sop}/thumbnail"), &reader, None);
    assert_eq!(status, 200);
    assert!(head.contains("content-type: image/png") && png.starts_with(b"\x89PNG"), "{head}");
    let (status, head, svg) = common::http_raw(port, &format!("/api/instances/{sop}/ecg-page"), &reader, None);
    assert_eq!(status, 200);
    assert!(head.contains("image/svg+xml") && String::from_utf8_lossy(&svg).contains(">aVF</text>"));
    assert!(!server.log().contains("Clark"), "patient names never in logs");
}

/// The carts' own exports — GE MUSE, Philips — uploaded by a county
/// hospital and imported from the command line: kept byte for byte,
/// archived as DICOM ECGs, analysed, and served with the cart's own
/// measurements and statements beside ours.
#[test]
fn vendor_exports_are_kept_converted_and_analysed_beside_the_carts_own_figures() {
    let Some(ecg) = corpus() else { return };
    let mut server = Server::new();
    server.add_site("东山县医院", "DONGSHAN", &[]);
    server.start();
    let port = server.http_port;
    let admin = login(port, "admin", ADMIN_PASSWORD);
    let body = r#"{"username":"tech","display_name":"李技师","password":"password-tech","roles":["site_user"],"site":"东山县医院"}"#;
    assert_eq!(http(port, "POST", "/api/users", Some(&admin), Some(body)).0, 201);
    let body = r#"{"username":"reader","display_name":"刘医生","password":"password-reader","roles":["ecg_doctor"]}"#;
    assert_eq!(http(port, "POST", "/api/users", Some(&admin), Some(body)).0, 201);
    let (tech, reader) = (login(port, "tech", "password-tech"), login(port, "reader", "password-reader"));

    let muse = std::fs::read(ecg.join("muse/muse_example1.xml")).unwrap();
    let (status, body) = post(port, "/api/ecg?name=muse_example1.xml", &tech, "application/xml", &muse);
    assert_eq!(status, 201, "{body}");
    let reply = json(&body);
    assert_eq!(
        (reply["format"].as_str(), reply["converted"].as_bool(), reply["leads"].as_u64()),
        (Some("GE MUSE XML"), Some(true), Some(12))
    );
    assert_eq!(server.object(reply["originals"][0].as_str().unwrap()), muse, "the MUSE export is kept byte for byte");
    let analysis = measurements(port, &reader, reply["sop_instance_uid"].as_str().unwrap());
    let (ours, cart) = (&analysis["measurements"], &analysis["device"]);
    assert_eq!((cart["qt_ms"].as_f64(), cart["pr_ms"].as_f64(), cart["hr_bpm"].as_f64()), (Some(452.0), Some(138.0), Some(48.0)));
    assert!((ours["qt_ms"].as_f64().unwrap() - 452.0).abs() <= 25.0, "QT ours {} cart 452", ours["qt_ms"]);
    assert_eq!(ours["hr_bpm"].as_f64(), Some(48.0));
    // The tracing served from the archive's DICOM names what the cart sent.
    let sop = reply["sop_instance_uid"].as_str().unwrap();
    let (status, body) = http(port, "GET", &format!("/api/instances/{sop}/ecg-samples"), Some(&reader), None);
    assert_eq!(status, 200, "{body}");
    let samples = json(&body);
    assert_eq!((samples["format"].as_str(), samples["received_as"].as_str()), (Some("DICOM waveform"), Some("GE MUSE XML")));

    // A Philips export in UTF-16, XLI-compressed.
    let philips = std::fs::read(ecg.join("philips/2020-5-18_15-48-11.xml")).unwrap();
    let (status, body) = post(port, "/api/ecg?name=2020-5-18_15-48-11.xml", &tech, "application/xml", &philips);
    assert_eq!(status, 201, "{body}");
    let reply = json(&body);
    assert_eq!(reply["format"], "Philips XML");
    assert_eq!(server.object(reply["originals"][0].as_str().unwrap()), philips, "kept byte for byte");
    let analysis = measurements(port, &reader, reply["sop_instance_uid"].as_str().unwrap());
    assert_eq!(analysis["device"]["qrs_ms"].as_f64(), Some(102.0));
    let statements = analysis["device_statements"].as_array().unwrap();
    assert!(statements.iter().any(|s| s == "Sinus rhythm (normal P axis, V-rate 50-99)"), "the cart's statements: {statements:?}");

    // The command line takes the same files.
    let muse2 = ecg.join("muse/muse_example2.xml");
    let out = server.cli(&["ecg", "import", "--site", "东山县医院", muse2.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, list) = http(port, "GET", "/api/studies?limit=10", Some(&reader), None);
    assert_eq!(json(&list)["total"], 3, "{list}");

    // A damaged export: 400 with the reason, nothing kept.
    let files_before = server.original_files().len();
    let mut damaged = muse.clone();
    let at = damaged.len() - 2000;
    damaged[at] = if damaged[at] == b'A' { b'B' } else { b'A' };
    let (status, reply) = post(port, "/api/ecg", &tech, "application/xml", &damaged);
    assert_eq!(status, 400, "{reply}");
    assert!(json(&reply)["error"].as_str().unwrap().contains("GE MUSE XML: rhythm lead V6 is damaged"), "{reply}");
    assert_eq!(server.original_files().len(), files_before, "a refused upload stores nothing");
}

#[test]
fn ecg_measure_prints_the_documented_json() {
    let Some(ecg) = corpus() else { return };
    let out = common::telediag().args(["ecg", "measure", "--json", "--mains", "60"]).arg(ecg.join("wfdb/100.hea")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sampling_rate_hz"], 360.0);
    let qrs = v["qrs_samples"].as_array().unwrap();
    assert!((2260..=2285).contains(&qrs.len()), "{} QRS", qrs.len());
    for key in [
        "hr_bpm",
        "rr_ms",
        "pr_ms",
        "p_ms",
        "qrs_ms",
        "qt_ms",
        "qtc_bazett_ms",
        "qtc_fridericia_ms",
        "p_axis_deg",
        "qrs_axis_deg",
        "t_axis_deg",
    ] {
        assert!(v["measurements"].get(key).is_some(), "measurements.{key} missing (null is allowed)");
    }
    assert!(v["hrv"]["sdnn_ms"].as_f64().unwrap() > 0.0);
    // Every format is read by the same command.
    for file in
        ["ecgtoolkit/Example.xml", "ecgtoolkit/Example.scp", "dicom/waveform_ecg.dcm", "muse/muse_example2.xml", "philips/129DYPRG.XML"]
    {
        let out = common::telediag().args(["ecg", "measure"]).arg(ecg.join(file)).output().unwrap();
        assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("PR ms"), "{file}");
    }
}
