//! DICOMweb (`/dicom-web`) against real clients and real data: the
//! `dicomweb-client` package searches, retrieves and stores
//! (tests/dicomweb/client.py); every instance of the public corpus pushed
//! by DCMTK's storescu comes back byte for byte and its first frame equal
//! to the imaging crate's decoding; another site's UIDs are 404 on every
//! route.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use common::*;

/// Whether python3 can import dicomweb_client (`.ci/run` installs it).
fn require_dicomweb_client() -> bool {
    let found = Command::new("python3").args(["-c", "import dicomweb_client"]).output().is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("the python package dicomweb-client is not installed; .ci/run must install it");
        }
        eprintln!("SKIP: python3 -m pip install dicomweb-client");
    }
    found
}

/// GET with an Accept header; status, lower-cased head, body.
fn get(port: u16, path: &str, token: &str, accept: Option<&str>) -> (u16, String, Vec<u8>) {
    http_raw(port, path, token, accept.map(|a| format!("Accept: {a}")).as_deref())
}

/// The parts of a multipart/related body, split at the boundary its
/// Content-Type names: (part head, part bytes).
fn parts(head: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let boundary = head.split("boundary=").nth(1).unwrap().split(['\r', ';']).next().unwrap().trim_matches('"').to_owned();
    let delimiter = format!("--{boundary}");
    let mut out = Vec::new();
    let mut at = 0;
    let find = |from: usize| body[from..].windows(delimiter.len()).position(|w| w == delimiter.as_bytes()).map(|p| p + from);
    while let Some(start) = find(at) {
        let after = start + delimiter.len();
        if body[after..].starts_with(b"--") {
            break;
        }
        let head_end = body[after..].windows(4).position(|w| w == b"\r\n\r\n").unwrap() + after;
        let next = find(head_end).unwrap();
        out.push((String::from_utf8_lossy(&body[after..head_end]).to_string(), body[head_end + 4..next - 2].to_vec()));
        at = next;
    }
    out
}

/// The stored values of native little-endian pixel bytes: each sample's
/// Bits Stored bits below High Bit, sign-extended when signed.
fn stored_values(bytes: &[u8], module: &telediag_imaging::PixelModule) -> Vec<i64> {
    let width = usize::from(module.bits_allocated / 8);
    let shift = u32::from(module.high_bit + 1 - module.bits_stored);
    let bits = u32::from(module.bits_stored);
    bytes
        .chunks_exact(width)
        .map(|c| {
            let mut raw = [0u8; 8];
            raw[..width].copy_from_slice(c);
            let value = (u64::from_le_bytes(raw) >> shift) & ((1u64 << bits) - 1);
            if module.signed && value >> (bits - 1) == 1 { value as i64 - (1i64 << bits) } else { value as i64 }
        })
        .collect()
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

fn first(item: &serde_json::Value, tag: &str) -> String {
    item[tag]["Value"][0].as_str().unwrap_or_default().to_owned()
}

/// A 64×64 CT slice (explicit VR little endian, 12 bits stored) of a
/// patient named in GB18030, `Zhang^San=张^三`, as a county scanner writes.
fn gb18030_ct(path: &std::path::Path, sop: &str, study: &str) -> std::path::PathBuf {
    let element = |out: &mut Vec<u8>, (group, elem): (u16, u16), vr: &[u8; 2], value: &[u8]| explicit_element(out, group, elem, vr, value);
    let gb = |text: &str| encoding_rs::GB18030.encode(text).0.into_owned();
    let pixels: Vec<u8> = (0..64u16 * 64).flat_map(|i| ((i % 64) * 60 + (i / 64) * 4).to_le_bytes()).collect();
    let mut ds = Vec::new();
    element(&mut ds, (0x0008, 0x0005), b"CS", b"GB18030");
    element(&mut ds, (0x0008, 0x0016), b"UI", b"1.2.840.10008.5.1.4.1.1.2");
    element(&mut ds, (0x0008, 0x0018), b"UI", sop.as_bytes());
    element(&mut ds, (0x0008, 0x0020), b"DA", b"20261201");
    element(&mut ds, (0x0008, 0x0030), b"TM", b"093000");
    element(&mut ds, (0x0008, 0x0050), b"SH", format!("ACC{}", &sop[sop.len() - 4..]).as_bytes());
    element(&mut ds, (0x0008, 0x0060), b"CS", b"CT");
    element(&mut ds, (0x0008, 0x1030), b"LO", &gb("胸部CT平扫"));
    element(&mut ds, (0x0010, 0x0010), b"PN", &[b"Zhang^San=".as_slice(), &gb("张^三")].concat());
    element(&mut ds, (0x0010, 0x0020), b"LO", format!("P{}", &sop[sop.len() - 4..]).as_bytes());
    element(&mut ds, (0x0020, 0x000D), b"UI", study.as_bytes());
    element(&mut ds, (0x0020, 0x000E), b"UI", format!("{study}.1").as_bytes());
    element(&mut ds, (0x0020, 0x0011), b"IS", b"1");
    element(&mut ds, (0x0020, 0x0013), b"IS", b"1");
    element(&mut ds, (0x0028, 0x0002), b"US", &1u16.to_le_bytes());
    element(&mut ds, (0x0028, 0x0004), b"CS", b"MONOCHROME2");
    element(&mut ds, (0x0028, 0x0010), b"US", &64u16.to_le_bytes());
    element(&mut ds, (0x0028, 0x0011), b"US", &64u16.to_le_bytes());
    element(&mut ds, (0x0028, 0x0100), b"US", &16u16.to_le_bytes());
    element(&mut ds, (0x0028, 0x0101), b"US", &12u16.to_le_bytes());
    element(&mut ds, (0x0028, 0x0102), b"US", &11u16.to_le_bytes());
    element(&mut ds, (0x0028, 0x0103), b"US", &0u16.to_le_bytes());
    element(&mut ds, (0x7FE0, 0x0010), b"OW", &pixels);
    write_ct_part10(path, sop, &ds)
}

/// Two hospitals: the public corpus and a GB18030 CT at the first, one CT
/// at the second; a site user at each.
fn centre() -> (Server, String, String, String) {
    let mut server = Server::new();
    server.add_site("语料医院", "CORPUS", &[]);
    server.add_site("东山县医院", "DONGSHAN", &[]);
    let dir = server.dir.path().to_owned();
    let zhang = gb18030_ct(&dir.join("zhang.dcm"), "2.25.700001", "2.25.700000");
    let other = gb18030_ct(&dir.join("other.dcm"), "2.25.800001", "2.25.800000");
    server.cli(&["import", "--site", "语料医院", zhang.to_str().unwrap()]);
    server.cli(&["import", "--site", "东山县医院", other.to_str().unwrap()]);
    // Bulk data URIs and Retrieve URLs name the centre by its public URL.
    let public_url = format!("http://localhost:{}", server.http_port);
    server.start_with(&[("TELEDIAG_PUBLIC_URL", &public_url)]);
    let admin = login(server.http_port, "admin", ADMIN_PASSWORD);
    for (username, site) in [("corpus_tech", "语料医院"), ("dongshan_tech", "东山县医院")] {
        let body = format!(
            r#"{{"username":"{username}","display_name":"{username}","password":"password-{username}","roles":["site_user"],"site":"{site}"}}"#
        );
        let (status, reply) = http(server.http_port, "POST", "/api/users", Some(&admin), Some(&body));
        assert_eq!(status, 201, "{reply}");
    }
    let corpus_tech = login(server.http_port, "corpus_tech", "password-corpus_tech");
    let dongshan_tech = login(server.http_port, "dongshan_tech", "password-dongshan_tech");
    (server, admin, corpus_tech, dongshan_tech)
}

#[test]
fn the_public_corpus_through_dicomweb_and_dicomweb_client() {
    if !require_tool("storescu") || !require_dicomweb_client() {
        return;
    }
    let Some(corpus) = pydicom_corpus() else { return };
    let files: Vec<CorpusFile> =
        part10_files(&corpus).into_iter().filter(|f| telediag_archive::sop_classes::name_of(&f.meta.sop_class_uid).is_some()).collect();
    let (server, admin, corpus_tech, _) = centre();
    let port = server.http_port;
    let profile = server.dir.path().join("storescu.cfg");
    storescu_profile(&files, &profile);
    let log = storescu(server.dicom_port, "CORPUS", &files, &profile);
    let pushed = acknowledged(&log);
    assert!(pushed.len() > 200, "storescu stored only {} files", pushed.len());
    // Wait until every acknowledged object is indexed.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let expected_instances = pushed.len();
    loop {
        let (status, head, body) = get(port, "/dicom-web/instances?limit=10000&includefield=00083002", &admin, None);
        assert_eq!(status, 200, "{head}");
        if json(&body).as_array().unwrap().len() >= expected_instances || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    // Every instance retrieved, byte for byte what is stored, by WADO-RS.
    let (_, _, body) = get(port, "/dicom-web/instances?limit=10000&includefield=00083002", &admin, None);
    let instances = json(&body);
    let instances = instances.as_array().unwrap();
    // The newest version of each SOP instance (`<sop>.dcm`, `<sop>.v2.dcm`, …).
    let mut newest: HashMap<String, (u32, std::path::PathBuf)> = HashMap::new();
    for path in server.original_files() {
        let name = path.file_name().unwrap().to_string_lossy().trim_end_matches(".dcm").to_owned();
        let (sop, version) = match name.rsplit_once(".v") {
            Some((sop, v)) if v.parse::<u32>().is_ok() => (sop.to_owned(), v.parse().unwrap()),
            _ => (name, 1),
        };
        if newest.get(&sop).is_none_or(|(v, _)| *v < version) {
            newest.insert(sop, (version, path));
        }
    }
    let stored: HashMap<String, std::path::PathBuf> = newest.into_iter().map(|(sop, (_, path))| (sop, path)).collect();
    let mut compared = 0;
    let mut frames_compared = 0;
    let mut jls = None;
    for item in instances {
        let (study, series, sop) = (first(item, "0020000D"), first(item, "0020000E"), first(item, "00080018"));
        let path = format!("/dicom-web/studies/{study}/series/{series}/instances/{sop}");
        let (status, head, body) = get(port, &path, &corpus_tech, Some("multipart/related; type=\"application/dicom\"; transfer-syntax=*"));
        if study == "2.25.700000" || study == "2.25.800000" {
            continue;
        }
        assert_eq!(status, 200, "{path}: {head}");
        let retrieved = parts(&head, &body);
        assert_eq!(retrieved.len(), 1, "{path}");
        let on_disk = std::fs::read(&stored[&sop]).unwrap();
        assert!(retrieved[0].1 == on_disk, "{sop}: the retrieved bytes differ from the stored object");
        compared += 1;

        // The first frame decoded to explicit VR little endian equals the
        // imaging crate's stored values.
        let Ok((module, frame)) = telediag_imaging::decode_file(&stored[&sop], 0) else { continue };
        let (status, head, body) =
            get(port, &format!("{path}/frames/1"), &corpus_tech, Some("multipart/related; type=\"application/octet-stream\""));
        assert_eq!(status, 200, "{path}/frames/1: {head} {}", String::from_utf8_lossy(&body[..body.len().min(300)]));
        let frame_parts = parts(&head, &body);
        assert!(frame_parts[0].0.contains("transfer-syntax=1.2.840.10008.1.2.1"), "{}", frame_parts[0].0);
        if module.is_native() {
            // Native frames are sent as stored (little endian): their bits
            // beyond Bits Stored are kept, so compare the values they hold.
            if module.planar || module.photometric == "YBR_FULL_422" || ![8, 16, 32].contains(&module.bits_allocated) {
                continue;
            }
            let values = stored_values(&frame_parts[0].1, &module);
            assert!(
                values == frame.samples.to_i64_vec(),
                "{sop} ({}): frame 1 differs from the imaging crate's decoding",
                module.transfer_syntax
            );
        } else {
            assert!(
                frame_parts[0].1 == telediag_imaging::source::little_endian(&frame, module.bits_allocated),
                "{sop} ({}): frame 1 differs from the imaging crate's decoding",
                module.transfer_syntax
            );
        }
        frames_compared += 1;
        if module.transfer_syntax == "1.2.840.10008.1.2.4.80" && module.samples_per_pixel == 1 && jls.is_none() {
            jls = Some(serde_json::json!({"study": study, "series": series, "instance": sop, "frame_bytes": frame_parts[0].1.len()}));
        }
    }
    // The corpus holds 250-odd files but fewer distinct SOP instances (many
    // files are versions of one another): each is compared once, newest first.
    assert!(compared >= 140, "only {compared} instances compared");
    assert!(frames_compared >= 60, "only {frames_compared} frames compared");
    eprintln!("{compared} instances byte-identical, {frames_compared} first frames equal to the imaging crate's");

    // The independent client: searches, retrieve, metadata, frames,
    // rendered, STOW with its failure reasons.
    let (_, _, body) = get(port, "/dicom-web/studies?limit=10000", &corpus_tech, None);
    let studies = json(&body).as_array().unwrap().len();
    let config = serde_json::json!({
        "url": format!("http://localhost:{port}/dicom-web"),
        "token": corpus_tech,
        "site_token": corpus_tech,
        "studies": studies,
        "jls": jls,
        "foreign_study": "2.25.800000",
    });
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dicomweb/client.py");
    let out = Command::new("python3").arg(script).arg(config.to_string()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "dicomweb-client checks failed:\n{stdout}\n{}\n--- server ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    assert!(stdout.lines().filter(|l| l.starts_with("ok ")).count() >= 27, "{stdout}");
}

#[test]
fn another_sites_uids_are_404_on_every_route() {
    let (server, admin, corpus_tech, dongshan_tech) = centre();
    let port = server.http_port;
    // The corpus hospital's CT, seen from its own site.
    let (status, _, body) = get(port, "/dicom-web/studies/2.25.700000/series", &corpus_tech, None);
    assert_eq!(status, 200);
    let series = first(&json(&body)[0], "0020000E");
    let (_, _, body) = get(port, &format!("/dicom-web/studies/2.25.700000/series/{series}/instances"), &corpus_tech, None);
    let sop = first(&json(&body)[0], "00080018");
    let instance = format!("/dicom-web/studies/2.25.700000/series/{series}/instances/{sop}");
    for path in [
        "/dicom-web/studies/2.25.700000".to_owned(),
        "/dicom-web/studies/2.25.700000/metadata".to_owned(),
        "/dicom-web/studies/2.25.700000/series".to_owned(),
        "/dicom-web/studies/2.25.700000/instances".to_owned(),
        "/dicom-web/studies/2.25.700000/thumbnail".to_owned(),
        "/dicom-web/studies/2.25.700000/rendered".to_owned(),
        format!("/dicom-web/studies/2.25.700000/series/{series}"),
        format!("/dicom-web/studies/2.25.700000/series/{series}/metadata"),
        format!("/dicom-web/studies/2.25.700000/series/{series}/instances"),
        format!("/dicom-web/studies/2.25.700000/series/{series}/thumbnail"),
        instance.clone(),
        format!("{instance}/metadata"),
        format!("{instance}/frames/1"),
        format!("{instance}/frames/1/rendered"),
        format!("{instance}/rendered"),
        format!("{instance}/thumbnail"),
        format!("{instance}/bulkdata/7FE00010"),
    ] {
        let (own, head, _) = get(port, &path, &corpus_tech, None);
        assert_eq!(own, 200, "{path} for its own site: {head}");
        let (other, _, body) = get(port, &path, &dongshan_tech, None);
        assert_eq!(other, 404, "{path} from another site");
        assert!(json(&body)["error"].as_str().unwrap().contains("not found"), "{path}");
    }
    // Searches never list it, by any key.
    for query in ["", "?StudyInstanceUID=2.25.700000", "?PatientName=*", &format!("?SOPInstanceUID={sop}")] {
        for level in ["studies", "series", "instances"] {
            let (status, _, body) = get(port, &format!("/dicom-web/{level}{query}"), &dongshan_tech, None);
            let listed = if status == 204 { String::new() } else { String::from_utf8_lossy(&body).into_owned() };
            assert!(!listed.contains("2.25.700000"), "/dicom-web/{level}{query} lists another site's study");
        }
    }
    // Without a session, nothing.
    let (status, _, _) = get(port, "/dicom-web/studies", "not-a-token", None);
    assert_eq!(status, 401);
    // Every request was audited, the refused ones too.
    let (status, audit) = http(port, "GET", "/api/audit?limit=500", Some(&admin), None);
    assert_eq!(status, 200, "{audit}");
    assert!(audit.contains("/dicom-web/studies/2.25.700000/metadata"), "DICOMweb reads are not in the audit log");
}

/// A STOW body of `files` (Part 10 bytes), one part each.
fn stow_body(files: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    for file in files {
        body.extend_from_slice(b"\r\n--B\r\nContent-Type: application/dicom\r\n\r\n");
        body.extend_from_slice(file);
    }
    body.extend_from_slice(b"\r\n--B--\r\n");
    body
}

/// Failure Reasons of a Store Instances Response, in order.
fn failure_reasons(response: &serde_json::Value) -> Vec<u64> {
    response["00081198"]["Value"]
        .as_array()
        .map(|items| items.iter().map(|i| i["00081197"]["Value"][0].as_u64().unwrap()).collect())
        .unwrap_or_default()
}

#[test]
fn stow_refusals_say_why_and_frames_are_bounded() {
    let (server, _admin, corpus_tech, _) = centre();
    let port = server.http_port;
    let dir = server.dir.path().to_owned();
    let stow = |path: &str, files: &[Vec<u8>]| {
        let (status, body) =
            post_bytes(port, path, &corpus_tech, "multipart/related; type=\"application/dicom\"; boundary=B", &stow_body(files));
        (status, json(body.as_bytes()))
    };
    let read = |name: &str, sop: &str, study: &str| std::fs::read(gb18030_ct(&dir.join(name), sop, study)).unwrap();

    // One stored, one of another study: 202, the stranger refused with 0xA900.
    let (status, response) =
        stow("/dicom-web/studies/2.25.900000", &[read("a.dcm", "2.25.900001", "2.25.900000"), read("b.dcm", "2.25.910001", "2.25.910000")]);
    assert_eq!(status, 202, "{response}");
    assert_eq!(failure_reasons(&response), [0xA900]);
    assert_eq!(response["00081199"]["Value"].as_array().unwrap().len(), 1);
    // Another site's study UID: 409, 0x0124, and nothing of the owner said.
    let (status, response) = stow("/dicom-web/studies", &[read("c.dcm", "2.25.800099", "2.25.800000")]);
    assert_eq!((status, failure_reasons(&response)), (409, vec![0x0124]), "{response}");
    // An unknown SOP class: 0x0122.
    let mut unknown = read("d.dcm", "2.25.920001", "2.25.920000");
    let at = unknown.windows(25).position(|w| w == b"1.2.840.10008.5.1.4.1.1.2").unwrap();
    unknown[at..at + 25].copy_from_slice(b"1.2.840.99999.5.1.4.1.1.2");
    let (status, response) = stow("/dicom-web/studies", &[unknown]);
    assert_eq!((status, failure_reasons(&response)), (409, vec![0x0122]), "{response}");
    // 70 KB of anything but DICOM: refused as not understood, read once.
    let (status, response) = stow("/dicom-web/studies", &[vec![b'x'; 70_000]]);
    assert_eq!((status, failure_reasons(&response)), (409, vec![0xC000]), "{response}");
    // Not multipart/related: 415 with a reason.
    let (status, body) = post_bytes(port, "/dicom-web/studies", &corpus_tech, "application/dicom", b"x");
    assert_eq!(status, 415, "{body}");

    // An object nested 100 sequences deep is stored (it is valid DICOM)
    // but its metadata is refused with a reason, not walked without end.
    let mut deep = Vec::new();
    explicit_element(&mut deep, 0x0008, 0x0016, b"UI", b"1.2.840.10008.5.1.4.1.1.2");
    explicit_element(&mut deep, 0x0008, 0x0018, b"UI", b"2.25.930001");
    explicit_element(&mut deep, 0x0020, 0x000D, b"UI", b"2.25.930000");
    explicit_element(&mut deep, 0x0020, 0x000E, b"UI", b"2.25.930000.1");
    for _ in 0..100 {
        // (0040,0275) SQ of undefined length holding one item of undefined length.
        deep.extend([0x40, 0x00, 0x75, 0x02, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        deep.extend([0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
    }
    for _ in 0..100 {
        deep.extend([0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        deep.extend([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
    }
    let deep = std::fs::read(write_ct_part10(&dir.join("deep.dcm"), "2.25.930001", &deep)).unwrap();
    let (status, response) = stow("/dicom-web/studies", &[deep]);
    assert_eq!(status, 200, "{response}");
    let (status, _, body) = get(port, "/dicom-web/studies/2.25.930000/metadata", &corpus_tech, None);
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    assert!(json(&body)["error"].as_str().unwrap().contains("nested deeper than 64"), "{}", String::from_utf8_lossy(&body));

    // Frames: a frame the object does not have is 404 before any body;
    // several frames come back as as many parts.
    let (_, _, body) = get(port, "/dicom-web/studies/2.25.700000/series/2.25.700000.1/instances", &corpus_tech, None);
    assert_eq!(json(&body).as_array().unwrap().len(), 1);
    let instance = "/dicom-web/studies/2.25.700000/series/2.25.700000.1/instances/2.25.700001";
    let (status, _, body) = get(port, &format!("{instance}/frames/2"), &corpus_tech, None);
    assert_eq!(status, 404);
    assert!(
        json(&body)["error"].as_str().unwrap().contains("frame 2 requested but the object has 1"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, head, body) =
        get(port, &format!("{instance}/frames/1,1"), &corpus_tech, Some("multipart/related; type=application/octet-stream"));
    assert_eq!(status, 200, "{head}");
    let frames = parts(&head, &body);
    assert_eq!(frames.len(), 2);
    assert!(frames.iter().all(|(_, bytes)| bytes.len() == 64 * 64 * 2));
    assert!(frames[0].0.contains(&format!("Content-Location: http://localhost:{port}{instance}/frames/1")), "{}", frames[0].0);
}

/// The built OHIF viewer, Node with Playwright's driver and Chromium
/// (`.ci/run` fetches and installs them); `None` skips on a developer machine.
fn ohif_toolchain() -> Option<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let ohif = root.join("sample-data/ohif");
    require_all(&[
        (ohif.join("index.html").is_file(), "the OHIF build (tests/dicomweb/fetch-ohif.sh)"),
        (root.join("node_modules/playwright-core").is_dir(), "playwright-core (npm ci)"),
        (std::path::Path::new("/usr/bin/chromium").is_file(), "chromium (apt-get install chromium)"),
        (Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success()), "node (apt-get install nodejs)"),
    ])
    .then_some(ohif)
}

/// The demo CT, compressed JPEG-LS lossless by DCMTK as a new study that
/// the demo CT scanner sends: (study UID, files as sent).
fn jpeg_ls_copy_of_the_demo_ct(dir: &std::path::Path) -> (String, Vec<CorpusFile>) {
    let plain = dir.join("plain");
    let compressed = dir.join("jpeg-ls");
    std::fs::create_dir_all(&compressed).unwrap();
    let study = "2.25.990000000000000000000000000000000001";
    for file in telediag_sample_data::write_demo_studies(&plain).unwrap() {
        let name = file.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.starts_with("ct_") {
            continue;
        }
        let out = compressed.join(&name);
        let status = Command::new("dcmcjpls").args(["+el", "+ua"]).arg(&file).arg(&out).status().unwrap();
        assert!(status.success(), "dcmcjpls {name}");
        let status = Command::new("dcmodify")
            .args(["-nb", "-m", &format!("(0020,000D)={study}"), "-m", "(0020,000E)=2.25.990000000000000000000000000000000002"])
            .args(["-m", "(0008,1030)=Chest CT JPEG-LS", "-m", "(0008,0050)=CTJLS0001"])
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success(), "dcmodify {name}");
    }
    let files = part10_files(&compressed);
    assert!(files.iter().all(|f| f.meta.transfer_syntax_uid == "1.2.840.10008.1.2.4.80"), "not all JPEG-LS lossless");
    (study.to_owned(), files)
}

/// An OPTIONS request as a browser's CORS preflight sends it; the lower-cased head.
fn preflight(port: u16, path: &str, origin: &str) -> String {
    let headers =
        format!("Origin: {origin}\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: authorization,accept\r\n");
    http_head(port, "OPTIONS", path, &headers).1
}

#[test]
fn stock_ohif_lists_the_demo_studies_and_draws_them() {
    if !require_tool("storescu") || !require_tool("dcmcjpls") {
        return;
    }
    let Some(ohif) = ohif_toolchain() else { return };
    let mut server = Server::new();
    // OHIF on its own origin, as a hospital would serve it; the centre lets that origin call DICOMweb.
    let ohif_port = free_port();
    let ohif_origin = format!("http://127.0.0.1:{ohif_port}");
    let public_url = format!("http://localhost:{}", server.http_port);
    server.start_demo(&[("TELEDIAG_PUBLIC_URL", &public_url), ("TELEDIAG_DICOMWEB_CORS_ORIGINS", &ohif_origin)]);
    let port = server.http_port;

    // The browser's preflight is answered before any login, for the named origin only.
    let granted = preflight(port, "/dicom-web/studies", &ohif_origin);
    assert!(granted.starts_with("http/1.1 200"), "{granted}");
    assert!(granted.contains(&format!("access-control-allow-origin: {ohif_origin}")), "{granted}");
    assert!(granted.contains("access-control-allow-headers: authorization,accept,content-type"), "{granted}");
    let refused = preflight(port, "/dicom-web/studies", "http://evil.example");
    assert!(!refused.contains("access-control-allow-origin"), "{refused}");
    let (_, head, _) = get(port, "/dicom-web/studies", "no-token", None);
    assert!(!head.contains("access-control-allow-origin"), "no Origin, no CORS headers: {head}");

    let (jls_study, jls_files) = jpeg_ls_copy_of_the_demo_ct(&server.dir.path().join("jls"));
    let profile = server.dir.path().join("jls.cfg");
    storescu_profile(&jls_files, &profile);
    storescu(server.dicom_port, "DEMO_CT", &jls_files, &profile);
    let token = login(port, "demo_radiologist", &server.demo_password("demo_radiologist"));
    let (status, _, body) = get(port, "/dicom-web/studies?ModalitiesInStudy=CT&includefield=StudyDescription", &token, None);
    assert_eq!(status, 200);
    let studies = json(&body);
    let study_by_description =
        |description: &str| studies.as_array().unwrap().iter().find(|s| first(s, "00081030") == description).map(|s| first(s, "0020000D"));
    let plain_study = study_by_description("胸部CT平扫").expect("the demo CT");
    assert_eq!(study_by_description("Chest CT JPEG-LS").as_deref(), Some(jls_study.as_str()), "{studies}");

    let screenshots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ohif");
    let output = Command::new("node")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dicomweb/ohif.mjs"))
        .args(["--ohif", ohif.to_str().unwrap(), "--port", &ohif_port.to_string()])
        .args(["--dicomweb", &format!("{public_url}/dicom-web"), "--token", &token])
        .args(["--expect", "胸部CT平扫", "--expect", "胸部正位片", "--expect", "腹部彩超", "--expect", "Chest CT JPEG-LS"])
        .args(["--study", &plain_study, "--study", &jls_study])
        .args(["--screenshots", screenshots.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "ohif.mjs failed: {}", String::from_utf8_lossy(&output.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("OHIF screenshots in {}; errors it logged: {}", screenshots.display(), seen["errors"]);

    // The study list shows every study by its description.
    assert_eq!(seen["studyList"]["missing"], serde_json::json!([]), "{seen}");
    // Each study draws: most of the viewport lit, in many grey levels.
    for study in seen["studies"].as_array().unwrap() {
        let pixels = &study["pixels"];
        assert!(study["firstImageMs"].is_u64(), "no image drawn: {study}");
        assert!(pixels["litFraction"].as_f64().unwrap() > 0.05, "viewport mostly black: {study}");
        assert!(pixels["levels"].as_u64().unwrap() > 32, "too few grey levels for a CT: {study}");
    }
    // Through DICOMweb only, every answer a success, frames of both studies fetched.
    let requests = seen["requests"].as_array().unwrap();
    let failed: Vec<_> = requests.iter().filter(|r| r["status"].as_u64().unwrap() >= 400).collect();
    assert!(failed.is_empty(), "{failed:?}");
    // Frames of both studies fetched as stored: OHIF decodes JPEG-LS itself.
    for (study, media_type) in [(&plain_study, "application/octet-stream"), (&jls_study, "image/jls")] {
        let frames: Vec<_> = requests
            .iter()
            .filter(|r| {
                let path = r["path"].as_str().unwrap();
                path.contains(&format!("/studies/{study}/")) && path.contains("/frames/")
            })
            .collect();
        assert!(!frames.is_empty(), "no frames of {study} requested: {requests:?}");
        for frame in frames {
            let content_type = frame["contentType"].as_str().unwrap_or("");
            assert!(content_type.contains(&format!("type=\"{media_type}\"")), "{frame}");
        }
    }
    assert!(seen["errors"].as_array().unwrap().iter().all(|e| !e.as_str().unwrap().contains("/dicom-web")), "{}", seen["errors"]);
}
