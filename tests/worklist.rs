//! The centre's daily work through the HTTP API of a real server: a county
//! hospital registers a request and pushes the images with DCMTK's
//! storescu; a radiologist claims, drafts and signs; a reviewer co-signs;
//! the hospital downloads the signed PDF, which poppler's `pdfsig` checks;
//! the report is filed into the study as SR and PDF; amendments supersede;
//! the audit chain holds until a row is altered.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn api(port: u16, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
    let (status, text) = http(port, method, path, token, body);
    let value = if text.trim().is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, value)
}

fn ok(port: u16, method: &str, path: &str, token: &str, body: Option<&str>) -> Value {
    let (status, value) = api(port, method, path, Some(token), body);
    assert!((200..300).contains(&status), "{method} {path}: {status} {value}");
    value
}

/// Waits up to 30 s for `check` to find something in `GET path`.
fn wait_for(port: u16, path: &str, token: &str, what: &str, check: impl Fn(&Value) -> Option<Value>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, value) = api(port, "GET", path, Some(token), None);
        if status == 200
            && let Some(found) = check(&value)
        {
            return found;
        }
        assert!(Instant::now() < deadline, "waited 30 s for {what}: last {status} {value}");
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// The demo studies (a 24-slice CT, a CR, a US), written to `dir`.
fn demo_files(dir: &Path) -> (Vec<PathBuf>, PathBuf, PathBuf) {
    telediag_sample_data::write_demo_studies(dir).unwrap();
    let mut ct: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().contains("ct_")).collect();
    ct.sort();
    (ct, dir.join("cr_001.dcm"), dir.join("us_001.dcm"))
}

fn accession_of(file: &Path) -> String {
    let obj = dicom_object::open_file(file).unwrap();
    obj.element(dicom_dictionary_std::tags::ACCESSION_NUMBER).unwrap().to_str().unwrap().trim().to_owned()
}

/// Pushes files with DCMTK's storescu, as a county hospital's PACS would.
fn push(port: u16, calling_ae: &str, files: &[PathBuf]) {
    let out = Command::new("storescu")
        .args(["-nh", "-aet", calling_ae, "-aec", AE, "127.0.0.1", &port.to_string()])
        .args(files)
        .output()
        .unwrap();
    assert!(out.status.success(), "storescu failed: {}", String::from_utf8_lossy(&out.stderr));
}

struct Centre {
    server: Server,
    admin: String,
    tokens: std::collections::HashMap<&'static str, String>,
    ids: std::collections::HashMap<&'static str, i64>,
}

impl Centre {
    fn port(&self) -> u16 {
        self.server.http_port
    }
    fn token(&self, who: &str) -> &str {
        &self.tokens[who]
    }
}

/// Two county hospitals and the centre's staff.
fn centre(env: &[(&str, &str)]) -> Centre {
    let mut server = Server::new();
    server.add_site("东山县医院", "DONGSHAN", &[]);
    server.add_site("西河县医院", "XIHE", &[]);
    let mut all_env = vec![("TELEDIAG_STUDY_STABLE_SECS", "1")];
    all_env.extend_from_slice(env);
    server.start_with(&all_env);
    let port = server.http_port;
    let admin = login(port, "admin", ADMIN_PASSWORD);
    let mut tokens = std::collections::HashMap::new();
    let mut ids = std::collections::HashMap::new();
    for (username, name, site, roles) in [
        ("dongshan_tech", "东山 李技师", Some("东山县医院"), r#"["site_user"]"#),
        ("xihe_tech", "西河 王医生", Some("西河县医院"), r#"["site_user"]"#),
        ("chen", "陈医生", None, r#"["radiologist"]"#),
        ("zhou", "周医生", None, r#"["radiologist"]"#),
        ("liu", "刘医生", None, r#"["ecg_doctor"]"#),
        ("huang", "黄主任", None, r#"["radiologist","reviewer"]"#),
        ("shen", "沈主任", None, r#"["reviewer"]"#),
    ] {
        let site = site.map(|s| format!(r#","site":"{s}""#)).unwrap_or_default();
        let body = format!(r#"{{"username":"{username}","display_name":"{name}","password":"password-{username}","roles":{roles}{site}}}"#);
        let created = ok(port, "POST", "/api/users", &admin, Some(&body));
        ids.insert(username, created["id"].as_i64().unwrap());
        let token = login(port, username, &format!("password-{username}"));
        if !roles.contains("site_user") {
            choose_pin(&server, &token, username);
        }
        tokens.insert(username, token);
    }
    Centre { server, admin, tokens, ids }
}

/// The registration officer makes `username`'s one-time enrolment code on
/// the server's console (`telediag user enrol-signing`).
fn enrolment_code(server: &Server, username: &str) -> String {
    let out = String::from_utf8_lossy(&server.cli(&["user", "enrol-signing", username]).stdout).into_owned();
    let code = out.split(": ").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap_or_else(|| panic!("no code in {out:?}"));
    code.to_owned()
}

/// The doctor, handed their enrolment code, chooses their signing PIN,
/// `pin-{username}`: a key and certificate are issued, sealed under it.
fn choose_pin(server: &Server, token: &str, username: &str) {
    let code = enrolment_code(server, username);
    let body = format!(r#"{{"password":"password-{username}","pin":"pin-{username}","enrolment_code":"{code}"}}"#);
    let chosen = ok(server.http_port, "PUT", "/api/me/signing-pin", token, Some(&body));
    assert_eq!(chosen["change"], "issued", "{chosen}");
}

/// `{"pin": "pin-{username}"}`, the body of a signature.
fn pin(username: &str) -> String {
    format!(r#"{{"pin":"pin-{username}"}}"#)
}

/// pyHanko's verdict on each signature of `pdf`, trusting only `ca`
/// (`crates/reports/tests/pades_validate.py`); `None` when pyHanko is not
/// installed (CI installs it).
fn pades_validate(pdf: &Path, ca: &Path) -> Option<Vec<Value>> {
    if !Command::new("python3").args(["-c", "import pyhanko"]).status().is_ok_and(|s| s.success()) {
        assert!(std::env::var_os("CI").is_none(), "CI installs pyHanko");
        eprintln!("skipping pyHanko's validation: not installed");
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/reports/tests/pades_validate.py");
    let out = Command::new("python3").arg(script).arg(pdf).arg(ca).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect())
}

fn pdfsig(path: &Path) -> String {
    let out = Command::new("pdfsig").arg(path).output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn a_registered_request_is_read_signed_twice_downloaded_verified_and_amended() {
    if !require_tool("storescu") || !require_tool("pdfsig") || !require_tool("pdftoppm") || !require_tool("dsrdump") {
        return;
    }
    let c = centre(&[("TELEDIAG_PUBLIC_URL", "https://telediag.example.cn")]);
    let port = c.port();
    let demo = c.server.dir.path().join("demo");
    let (ct, _, _) = demo_files(&demo);
    let accession = accession_of(&ct[0]);

    // The county hospital registers the exam before the images are sent.
    let registration = format!(
        r#"{{"patient_name":"张伟","patient_sex":"M","patient_age":"58岁","patient_id":"DS0001","department":"呼吸内科",
            "inpatient_number":"ZY20261123","bed_number":"12床","accession_number":"{accession}","modality":"CT",
            "requested_exam":"胸部CT平扫","clinical_history":"咳嗽两周，低热","requesting_physician":"王建国","priority":"stat"}}"#
    );
    let created = ok(port, "POST", "/api/requests", c.token("dongshan_tech"), Some(&registration));
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["origin"], "registered");
    assert_eq!(created["images_at"], Value::Null, "images not yet sent");
    let board = ok(port, "GET", "/api/dashboard", &c.admin, None);
    assert_eq!(board["total"]["images_missing"], 1, "{board}");

    // Another site's registration fields cannot be aimed at a site it is not.
    let (status, _) = api(port, "POST", "/api/requests", Some(c.token("chen")), Some(&registration));
    assert_eq!(status, 403, "readers do not register requests");

    push(c.server.dicom_port, "DONGSHAN", &ct);
    let request = wait_for(port, &format!("/api/requests/{id}"), c.token("dongshan_tech"), "the images to be reconciled", |v| {
        v["request"]["images_at"].as_i64().map(|_| v["request"].clone())
    });
    assert_eq!(request["reconciled"], true);
    assert_eq!(request["modality"], "CT");
    let images_at = request["images_at"].as_i64().unwrap();
    assert_eq!(request["deadline_at"].as_i64().unwrap() - images_at, 60 * 60_000, "STAT CT: 60 minutes");
    let list = ok(port, "GET", "/api/requests", &c.admin, None);
    assert_eq!(list.as_array().unwrap().len(), 1, "one request, not a registration plus an arrival: {list}");
    let history = ok(port, "GET", &format!("/api/requests/{id}"), &c.admin, None)["history"].clone();
    assert!(history.to_string().contains("reconciled by accession number"), "{history}");

    // 陈医生 claims it from the pool, opens it (CT chest template), writes and signs.
    let pool = ok(port, "GET", "/api/requests?view=pool", c.token("chen"), None);
    assert!(pool.as_array().unwrap().iter().any(|r| r["id"] == id), "{pool}");
    let pool_for_ecg = ok(port, "GET", "/api/requests?view=pool", c.token("liu"), None);
    assert!(pool_for_ecg.as_array().unwrap().is_empty(), "an ECG doctor is not offered a CT: {pool_for_ecg}");
    let claimed = ok(port, "POST", &format!("/api/requests/{id}/claim"), c.token("chen"), None);
    assert_eq!(claimed["state"], "assigned");
    let (status, body) = api(port, "PUT", &format!("/api/requests/{id}/report"), Some(c.token("zhou")), Some(r#"{"findings":"x"}"#));
    assert!(status == 409 || status == 403, "someone else cannot write it: {status} {body}");
    let draft = ok(port, "POST", &format!("/api/requests/{id}/report"), c.token("chen"), None);
    assert_eq!(draft["template"], "ct-chest", "{draft}");
    assert!(draft["method"].as_str().unwrap().contains("胸部 CT"), "{draft}");
    let findings =
        "双肺纹理增多。右肺上叶尖段见一大小约 18 mm × 15 mm 的结节影，边缘可见分叶及毛刺，邻近胸膜牵拉。纵隔居中，未见肿大淋巴结。";
    let conclusion = "右肺上叶结节，考虑周围型肺癌可能，建议增强 CT 进一步检查。";
    // One slice as a key image; an instance of another study is refused.
    let study_uid = request["study_uid"].as_str().unwrap().to_owned();
    let slice = wait_for(port, &format!("/api/studies/{study_uid}"), c.token("chen"), "the CT's previews", |v| {
        (v["rendering"]["ready"] == true).then(|| v["series"][0]["instances"][12]["sop_instance_uid"].clone())
    });
    let (status, body) =
        api(port, "PUT", &format!("/api/requests/{id}/report"), Some(c.token("chen")), Some(r#"{"key_images":["1.2.3.4.5"]}"#));
    assert_eq!(status, 400, "{body}");
    let draft = ok(port, "GET", &format!("/api/requests/{id}/report"), c.token("chen"), None)["versions"][0].clone();
    let saved = ok(port, "PUT", &format!("/api/requests/{id}/report"), c.token("chen"),
        Some(&serde_json::json!({"findings": findings, "conclusion": conclusion, "key_images": [slice], "base_updated_at": draft["updated_at"]}).to_string()));
    let (status, _) = api(
        port,
        "PUT",
        &format!("/api/requests/{id}/report"),
        Some(c.token("chen")),
        Some(&serde_json::json!({"findings": "stale", "base_updated_at": draft["updated_at"]}).to_string()),
    );
    assert_eq!(status, 409, "a save over newer text is refused");
    assert_eq!(ok(port, "GET", &format!("/api/requests/{id}"), c.token("chen"), None)["request"]["state"], "reading");
    // The images carry another patient ID than the registration: the
    // report waits until the site confirms they are one patient.
    assert_eq!(request["identity_mismatch"], "登记：张伟（DS0001）；影像：张伟（DEMO0001）", "{request}");
    let (status, reply) = api(port, "POST", &format!("/api/requests/{id}/report/sign"), Some(c.token("chen")), None);
    assert_eq!(status, 409, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("different patients"), "{reply}");
    assert_eq!(api(port, "POST", &format!("/api/requests/{id}/confirm-identity"), Some(c.token("chen")), None).0, 403);
    let confirmed = ok(port, "POST", &format!("/api/requests/{id}/confirm-identity"), c.token("dongshan_tech"), None);
    assert!(confirmed["identity_confirmed_at"].as_i64().is_some(), "{confirmed}");
    // The site sees no draft.
    let seen = ok(port, "GET", &format!("/api/requests/{id}/report"), c.token("dongshan_tech"), None);
    assert_eq!(seen["versions"].as_array().unwrap().len(), 0, "{seen}");
    // Signing opens the signer's key with their signing PIN: a session alone,
    // or the login password, does not sign.
    for (body, code) in [
        (None, "signing_pin_required"),
        (Some(r#"{"pin":"pin-huang"}"#), "signing_pin_wrong"),
        (Some(r#"{"pin":"password-chen"}"#), "signing_pin_wrong"),
    ] {
        let (status, reply) = api(port, "POST", &format!("/api/requests/{id}/report/sign"), Some(c.token("chen")), body);
        assert_eq!((status, reply["code"].as_str()), (403, Some(code)), "{reply}");
    }
    ok(port, "POST", &format!("/api/requests/{id}/report/sign"), c.token("chen"), Some(&pin("chen")));
    let seen = ok(port, "GET", &format!("/api/requests/{id}/report"), c.token("dongshan_tech"), None);
    assert_eq!(seen["request"]["state"], "preliminary");
    assert_eq!(seen["versions"][0]["state"], "preliminary", "the site sees the preliminary report");
    assert_eq!(seen["versions"][0]["findings"], saved["findings"]);
    let (status, _) = api(port, "GET", &format!("/api/requests/{id}/report/pdf"), Some(c.token("dongshan_tech")), None);
    assert_eq!(status, 404, "no signed PDF before the reviewer co-signs");

    // The reviewer co-signs; the author cannot review themselves.
    let (status, _) = api(port, "POST", &format!("/api/requests/{id}/report/review"), Some(c.token("chen")), None);
    assert_eq!(status, 403);
    // The reporting doctor's signature is already on the stored document.
    let preliminary = ok(port, "GET", &format!("/api/requests/{id}/report"), &c.admin, None);
    assert_eq!(preliminary["versions"][0]["state"], "preliminary");
    let finished = ok(port, "POST", &format!("/api/requests/{id}/report/review"), c.token("huang"), Some(&pin("huang")));
    assert_eq!(finished["report"]["state"], "final", "{finished}");
    let sr_uid = finished["filed_into_study"]["sr_sop_instance_uid"].as_str().unwrap_or_else(|| panic!("{finished}")).to_owned();
    let token = finished["report"]["verify_token"].as_str().unwrap().to_owned();

    // The hospital downloads the signed PDF; pdfsig finds both signatures valid.
    let (status, head, pdf) = http_raw(port, &format!("/api/requests/{id}/report/pdf"), c.token("dongshan_tech"), None);
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("application/pdf"));
    let dir = c.server.dir.path();
    let path = dir.join("report.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let report = pdfsig(&path);
    assert_eq!(report.matches("Signature is Valid").count(), 2, "{report}");
    assert!(report.contains("陈医生") && report.contains("黄主任"), "{report}");
    // The reviewer's signature is a revision of the very document the
    // reporting doctor signed at their own act.
    let (status, _, signed_by_author) =
        http_raw(port, &format!("/api/requests/{id}/report/pdf?stage=author"), c.token("dongshan_tech"), None);
    assert_eq!(status, 200);
    assert!(pdf.len() > signed_by_author.len() && pdf.starts_with(&signed_by_author), "the author's document, extended");
    // Each signature timestamped by the centre's TSA and long-term valid
    // from the certificates and CRL embedded after it (PAdES B-LT), as
    // pyHanko finds offline trusting only the centre's CA.
    let (status, _, ca) = http_raw(port, "/ca.crt", c.token("dongshan_tech"), None);
    assert_eq!(status, 200);
    std::fs::write(dir.join("ca.der"), &ca).unwrap();
    if let Some(validations) = pades_validate(&path, &dir.join("ca.der")) {
        assert_eq!(validations.len(), 2, "{validations:?}");
        for v in &validations {
            assert_eq!((v["intact"].as_bool(), v["trusted"].as_bool()), (Some(true), Some(true)), "{v}");
            assert_eq!((v["timestamp"]["valid"].as_bool(), v["timestamp"]["trusted"].as_bool()), (Some(true), Some(true)), "{v}");
            assert_eq!(v["ltv"]["valid"], true, "{v}");
        }
    }
    let mut broken = pdf.clone();
    broken[pdf.len() / 3] ^= 0x20;
    std::fs::write(dir.join("broken.pdf"), &broken).unwrap();
    let report = pdfsig(&dir.join("broken.pdf"));
    assert_eq!(report.matches("Signature is Valid").count(), 0, "one flipped byte: {report}");
    // The first page, as the referring doctor prints it.
    let png = dir.join("page");
    assert!(
        Command::new("pdftoppm")
            .args(["-r", "110", "-png", "-singlefile", "-f", "1", "-l", "1"])
            .arg(&path)
            .arg(&png)
            .status()
            .unwrap()
            .success()
    );
    if let Some(keep) = std::env::var_os("TELEDIAG_KEEP_REPORT_PNG") {
        std::fs::copy(dir.join("page.png"), keep).unwrap();
    }
    let images = Command::new("pdfimages").arg("-list").arg(&path).output().unwrap();
    let images = String::from_utf8_lossy(&images.stdout).lines().skip(2).count();
    assert_eq!(images, 1, "the key image is printed");
    let text = Command::new("pdftotext").args(["-layout"]).arg(&path).arg("-").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    for expected in [
        "东山县医院",
        "张伟",
        "58岁",
        "ZY20261123",
        "12床",
        "王建国",
        "检查所见",
        "右肺上叶结节",
        "陈医生",
        "https://telediag.example.cn/verify/",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from the PDF text:\n{text}");
    }

    // The centre's list shows it downloaded (已打印).
    let listed = ok(port, "GET", &format!("/api/requests/{id}"), &c.admin, None);
    assert!(listed["request"]["downloaded_at"].as_i64().is_some(), "{listed}");

    // Anyone with the QR code can verify it, and sees only initials.
    let (status, verified) = api(port, "GET", &format!("/verify/{token}"), None, None);
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["status"], "valid");
    assert_eq!(verified["patient_initials"], "张*");
    assert_eq!(verified["signers"].as_array().unwrap().len(), 2);
    use sha2::Digest;
    assert_eq!(verified["document_sha256"], hex::encode(sha2::Sha256::digest(&pdf)));
    assert!(!verified.to_string().contains("张伟"));
    assert_eq!(api(port, "GET", "/verify/00000000000000000000000000000000", None, None).0, 404);
    // The CA a hospital installs to see the signatures as trusted: public, and the one on disk.
    let (status, _, ca) = http_raw(port, "/ca.crt", "", None);
    assert_eq!(status, 200);
    assert_eq!(ca, std::fs::read(c.server.data().join("ca/ca-cert.der")).unwrap());

    // Filed into the study: a VERIFIED Basic Text SR that DCMTK reads, and the PDF.
    let study_uid = listed["request"]["study_uid"].as_str().unwrap().to_owned();
    let study = wait_for(port, &format!("/api/studies/{study_uid}"), &c.admin, "the report objects in the study", |v| {
        let text = v.to_string();
        (text.contains(&sr_uid) && v["modalities"].as_str().is_some_and(|m| m.contains("DOC"))).then(|| v.clone())
    });
    let key = study["series"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["instances"].as_array().unwrap().iter())
        .find(|i| i["sop_instance_uid"] == sr_uid.as_str())
        .unwrap()["object_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let sr_path = c.server.objects_dir().join(&key);
    let dump = Command::new("dsrdump").arg("+U8").arg(&sr_path).output().unwrap();
    let dump_text = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.status.success(), "dsrdump: {}", String::from_utf8_lossy(&dump.stderr));
    assert!(dump_text.contains("VERIFIED") && dump_text.contains("右肺上叶结节") && dump_text.contains("黄主任"), "{dump_text}");
    let after = ok(port, "GET", "/api/requests", &c.admin, None);
    assert_eq!(after.as_array().unwrap().len(), 1, "the filed report does not make a new request: {after}");

    // An amended version supersedes the first; the first one's QR now says so.
    ok(
        port,
        "POST",
        &format!("/api/requests/{id}/report/amend"),
        c.token("chen"),
        Some(r#"{"kind":"amendment","password":"password-chen"}"#),
    );
    ok(
        port,
        "PUT",
        &format!("/api/requests/{id}/report"),
        c.token("chen"),
        Some(r#"{"conclusion":"右肺上叶结节，周围型肺癌可能性大；建议增强 CT 及穿刺活检。"}"#),
    );
    ok(port, "POST", &format!("/api/requests/{id}/report/sign"), c.token("chen"), Some(&pin("chen")));
    let amended = ok(port, "POST", &format!("/api/requests/{id}/report/review"), c.token("huang"), Some(&pin("huang")));
    assert_eq!(amended["report"]["version"], 2);
    assert_eq!(amended["report"]["kind"], "amendment");
    let versions = ok(port, "GET", &format!("/api/requests/{id}/report"), c.token("dongshan_tech"), None);
    assert_eq!(versions["versions"][0]["state"], "superseded");
    assert_eq!(versions["versions"][1]["state"], "final");
    assert_eq!(versions["request"]["state"], "amended");
    assert_eq!(api(port, "GET", &format!("/verify/{token}"), None, None).1["status"], "superseded");
    let (_, _, v2) = http_raw(port, &format!("/api/requests/{id}/report/pdf"), c.token("dongshan_tech"), None);
    std::fs::write(dir.join("v2.pdf"), &v2).unwrap();
    let v2_text =
        String::from_utf8_lossy(&Command::new("pdftotext").arg(dir.join("v2.pdf")).arg("-").output().unwrap().stdout).into_owned();
    assert!(v2_text.contains("更正报告") && v2_text.contains("穿刺活检"), "{v2_text}");

    // An admin revokes the amended version (say, the wrong patient): its QR says so.
    let v2_token = amended["report"]["verify_token"].as_str().unwrap().to_owned();
    let (status, _) = api(
        port,
        "POST",
        &format!("/api/requests/{id}/report/revoke"),
        Some(c.token("huang")),
        Some(r#"{"version":2,"reason":"患者信息错误"}"#),
    );
    assert_eq!(status, 403, "only admins revoke");
    ok(port, "POST", &format!("/api/requests/{id}/report/revoke"), &c.admin, Some(r#"{"version":2,"reason":"患者信息错误"}"#));
    let (_, revoked) = api(port, "GET", &format!("/verify/{v2_token}"), None, None);
    assert_eq!((revoked["status"].as_str(), revoked["revoked_reason"].as_str()), (Some("revoked"), Some("患者信息错误")), "{revoked}");

    // The whole story is in the history.
    let history = ok(port, "GET", &format!("/api/requests/{id}"), &c.admin, None)["history"].clone();
    let states: Vec<&str> = history.as_array().unwrap().iter().map(|e| e["to_state"].as_str().unwrap()).collect();
    assert_eq!(states, ["received", "received", "assigned", "reading", "reading", "preliminary", "final", "amended"], "{history}");
    assert!(history[4]["note"].as_str().unwrap().starts_with("confirmed as one patient"), "the site's confirmation: {history}");

    // Audit: the download is recorded with who and from where; the chain holds until a row is altered.
    let audit = ok(port, "GET", "/api/audit?contains=/report/pdf", &c.admin, None);
    let download = audit.as_array().unwrap().iter().find(|e| e["username"] == "dongshan_tech").unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(download["client"], "127.0.0.1");
    assert_eq!(download["action"], "GET /api/requests/{id}/report/pdf");
    let chain = ok(port, "GET", "/api/audit/verify", &c.admin, None);
    assert_eq!(chain["intact"], true, "{chain}");
    assert!(chain["rows"].as_i64().unwrap() > 20, "{chain}");
    let victim = download["id"].as_i64().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = c.server.database().await;
        let refused = sqlx::query("UPDATE audit_log SET username = 'someone_else' WHERE id = $1").bind(victim).execute(db.pool()).await;
        assert!(refused.is_err(), "the table refuses updates");
        // An attacker with the database file drops the guard first.
        let drop = match db.engine() {
            telediag_archive::db::Engine::Sqlite => "DROP TRIGGER audit_log_no_update",
            telediag_archive::db::Engine::Postgres => "DROP TRIGGER audit_log_no_update ON audit_log",
        };
        sqlx::query(drop).execute(db.pool()).await.unwrap();
        sqlx::query("UPDATE audit_log SET username = 'someone_else' WHERE id = $1").bind(victim).execute(db.pool()).await.unwrap();
    });
    let chain = ok(port, "GET", "/api/audit/verify", &c.admin, None);
    assert_eq!(chain["intact"], false, "{chain}");
    assert_eq!(chain["first_broken_id"], victim, "{chain}");

    // Patient names never reach the log.
    let log = c.server.log();
    for name in ["张伟", "Zhang^Wei"] {
        assert!(!log.contains(name), "patient name {name:?} found in the log");
    }
}

#[test]
fn of_many_simultaneous_claims_exactly_one_wins_and_a_lapsed_lock_returns_to_the_pool() {
    if !require_tool("storescu") {
        return;
    }
    let c = centre(&[("TELEDIAG_LOCK_SECS", "2")]);
    let port = c.port();
    let demo = c.server.dir.path().join("demo");
    let (_, cr, _) = demo_files(&demo);
    // Ten more radiologists, all racing for the same chest film.
    let mut readers = vec![c.token("chen").to_owned(), c.token("zhou").to_owned()];
    for n in 0..10 {
        let body = format!(r#"{{"username":"r{n}","display_name":"放射科 {n}","password":"password-r{n}","roles":["radiologist"]}}"#);
        ok(port, "POST", "/api/users", &c.admin, Some(&body));
        readers.push(login(port, &format!("r{n}"), &format!("password-r{n}")));
    }
    push(c.server.dicom_port, "XIHE", &[cr]);
    let id = wait_for(port, "/api/requests?view=pool", c.token("chen"), "the CR in the pool", |v| {
        v.as_array()?.first().map(|r| r["id"].clone())
    })
    .as_i64()
    .unwrap();
    let request = ok(port, "GET", &format!("/api/requests/{id}"), &c.admin, None)["request"].clone();
    assert_eq!(request["origin"], "arrival");
    assert_eq!(request["reconciled"], false, "nothing was registered for it");
    assert_eq!(ok(port, "GET", "/api/requests?unreconciled=true", c.token("xihe_tech"), None).as_array().unwrap().len(), 1);

    let barrier = std::sync::Arc::new(std::sync::Barrier::new(readers.len()));
    let handles: Vec<_> = readers
        .iter()
        .cloned()
        .map(|token| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                api(port, "POST", &format!("/api/requests/{id}/claim"), Some(&token), None)
            })
        })
        .collect();
    let results: Vec<(u16, Value)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let winners: Vec<&Value> = results.iter().filter(|(s, _)| *s == 200).map(|(_, v)| v).collect();
    assert_eq!(winners.len(), 1, "exactly one claim wins: {results:?}");
    let losers: Vec<&(u16, Value)> = results.iter().filter(|(s, _)| *s != 200).collect();
    assert!(losers.iter().all(|(s, v)| *s == 409 && v["error"].as_str().unwrap().contains("assigned")), "{losers:?}");
    let holder = winners[0]["assigned_to"].as_i64().unwrap();
    let events = ok(port, "GET", &format!("/api/requests/{id}"), &c.admin, None)["history"].clone();
    assert_eq!(events.as_array().unwrap().iter().filter(|e| e["to_state"] == "assigned").count(), 1, "{events}");

    // Nobody touches it: the lock lapses and it is back in the pool.
    let back = wait_for(port, "/api/requests?view=pool", c.token("zhou"), "the lapsed lock", |v| {
        v.as_array()?.iter().find(|r| r["id"] == id).cloned()
    });
    assert_eq!(back["state"], "received");
    assert_eq!(back["assigned_to"], Value::Null);
    let events = ok(port, "GET", &format!("/api/requests/{id}"), &c.admin, None)["history"].to_string();
    assert!(events.contains("lock lapsed"), "{events}");

    // An admin assigns it to a qualified reader; an ECG doctor is not one.
    let (status, body) =
        api(port, "POST", &format!("/api/requests/{id}/assign"), Some(&c.admin), Some(&format!(r#"{{"reader_id":{}}}"#, c.ids["liu"])));
    assert_eq!(status, 400, "{body}");
    let assigned =
        ok(port, "POST", &format!("/api/requests/{id}/assign"), &c.admin, Some(&format!(r#"{{"reader_id":{}}}"#, c.ids["zhou"])));
    assert_eq!(assigned["assigned_to"], c.ids["zhou"]);
    assert_ne!(holder, 0);
    let (status, _) = api(port, "POST", &format!("/api/requests/{id}/release"), Some(c.token("chen")), None);
    assert_eq!(status, 403, "a reader cannot release another's claim");
    let unlocked = ok(port, "POST", &format!("/api/requests/{id}/release"), &c.admin, None);
    assert_eq!(unlocked["state"], "received");
}

#[test]
fn automatic_assignment_follows_credentials_and_workload() {
    if !require_tool("storescu") {
        return;
    }
    let c = centre(&[]);
    let port = c.port();
    ok(port, "PATCH", "/api/sites/西河县医院", &c.admin, Some(r#"{"assignment_mode":"auto"}"#));
    // 陈 reads CT only, 周 reads CR/DX at 西河 only, 黄 reads US.
    ok(port, "PUT", &format!("/api/users/{}/credentials", c.ids["chen"]), &c.admin, Some(r#"{"modalities":["CT"]}"#));
    ok(
        port,
        "PUT",
        &format!("/api/users/{}/credentials", c.ids["zhou"]),
        &c.admin,
        Some(r#"{"modalities":["CR","DX"],"sites":["西河县医院"]}"#),
    );
    let creds = ok(port, "PUT", &format!("/api/users/{}/credentials", c.ids["huang"]), &c.admin, Some(r#"{"modalities":["us"]}"#));
    assert_eq!(creds["modalities"][0], "US");
    let (status, _) =
        api(port, "PUT", &format!("/api/users/{}/credentials", c.ids["huang"]), Some(c.token("chen")), Some(r#"{"modalities":["CT"]}"#));
    assert_eq!(status, 403, "only admins grant credentials");
    let demo = c.server.dir.path().join("demo");
    let (ct, cr, us) = demo_files(&demo);
    push(c.server.dicom_port, "XIHE", &[cr]);
    push(c.server.dicom_port, "XIHE", &[us]);
    push(c.server.dicom_port, "XIHE", &ct);
    let all = wait_for(port, "/api/requests", &c.admin, "three assigned requests", |v| {
        let list = v.as_array()?;
        (list.len() == 3 && list.iter().all(|r| r["state"] == "assigned")).then(|| v.clone())
    });
    let by_modality = |m: &str| all.as_array().unwrap().iter().find(|r| r["modality"] == m).unwrap()["assigned_to"].as_i64().unwrap();
    assert_eq!(by_modality("CR"), c.ids["zhou"]);
    assert_eq!(by_modality("US"), c.ids["huang"]);
    assert_eq!(by_modality("CT"), c.ids["chen"]);
    let mine = ok(port, "GET", "/api/requests?view=mine", c.token("zhou"), None);
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let history = ok(port, "GET", &format!("/api/requests/{}", all[0]["id"]), &c.admin, None)["history"].to_string();
    assert!(history.contains("assigned by rules"), "{history}");
}

fn ecg_corpus() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/ecg");
    if root.is_dir() {
        return Some(root);
    }
    eprintln!("skipping: ../shared/corpus/ecg is absent");
    None
}

/// A one-shot HTTP listener that answers 200 and hands back the first request's body.
fn webhook_receiver() -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut data = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&data).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap()));
                    if length.is_some_and(|len| body.len() >= len) {
                        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                        let _ = tx.send(body.to_owned());
                        break;
                    }
                }
            }
        }
    });
    (port, rx)
}

#[test]
fn an_ecg_is_prefilled_from_its_measurements_and_a_critical_finding_reaches_the_site() {
    let Some(corpus) = ecg_corpus() else { return };
    if !require_tool("pdfsig") {
        return;
    }
    let c = centre(&[]);
    let port = c.port();
    let (hook_port, hook) = webhook_receiver();
    ok(
        port,
        "PATCH",
        "/api/sites/东山县医院",
        &c.admin,
        Some(&format!(r#"{{"single_signature":true,"critical_webhook":"http://127.0.0.1:{hook_port}/critical"}}"#)),
    );
    let (status, _) = api(port, "PATCH", "/api/sites/东山县医院", Some(&c.admin), Some(r#"{"critical_webhook":"ftp://x"}"#));
    assert_eq!(status, 400);

    // The technician uploads the cart's SCP-ECG file.
    let scp = std::fs::read(corpus.join("ecgtoolkit/Example.scp")).unwrap();
    let (status, reply) = post_bytes(port, "/api/ecg?name=Example.scp", c.token("dongshan_tech"), "application/octet-stream", &scp);
    assert_eq!(status, 201, "{reply}");
    let request =
        wait_for(port, "/api/requests?view=pool", c.token("liu"), "the ECG in the ECG doctor's pool", |v| v.as_array()?.first().cloned());
    assert_eq!(request["modality"], "ECG");
    let id = request["id"].as_i64().unwrap();
    assert!(
        ok(port, "GET", "/api/requests?view=pool", c.token("chen"), None).as_array().unwrap().is_empty(),
        "a radiologist is not offered ECGs"
    );
    ok(port, "POST", &format!("/api/requests/{id}/claim"), c.token("liu"), None);
    // The analysis runs in the pipeline; the template waits for it.
    let sop = ok(port, "GET", &format!("/api/studies/{}", request["study_uid"].as_str().unwrap()), &c.admin, None)["series"][0]["instances"][0]["sop_instance_uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let measured =
        wait_for(port, &format!("/api/instances/{sop}/ecg-measurements"), c.token("liu"), "the ECG analysis", |v| Some(v.clone()));
    let draft = ok(port, "POST", &format!("/api/requests/{id}/report"), c.token("liu"), None);
    assert_eq!(draft["template"], "ecg");
    assert_eq!(draft["key_images"], serde_json::json!([sop]), "the tracing is printed unless removed");
    let rate = measured["measurements"]["hr_bpm"].as_f64().unwrap();
    assert!(draft["findings"].as_str().unwrap().contains(&format!("心率 {rate:.0} 次/分")), "{draft}");
    let qrs = measured["measurements"]["qrs_ms"].as_f64().unwrap();
    assert!(draft["findings"].as_str().unwrap().contains(&format!("QRS 时限 {qrs:.0} ms")), "{draft}");

    // A critical finding: the site's board and webhook hear of it at once.
    let flagged =
        ok(port, "POST", &format!("/api/requests/{id}/critical"), c.token("liu"), Some(r#"{"note":"急性下壁心肌梗死可能，ST 段抬高"}"#));
    assert_eq!(flagged["webhook_status"], "delivered", "{flagged}");
    let delivered: Value = serde_json::from_str(&hook.recv_timeout(Duration::from_secs(5)).unwrap()).unwrap();
    assert_eq!(delivered["request_id"], id);
    assert_eq!(delivered["event"], "critical_finding");
    let open = ok(port, "GET", "/api/critical?open=true", c.token("dongshan_tech"), None);
    assert_eq!(open.as_array().unwrap().len(), 1);
    assert!(
        ok(port, "GET", "/api/critical?open=true", c.token("xihe_tech"), None).as_array().unwrap().is_empty(),
        "another site does not see it"
    );
    let cid = open[0]["id"].as_i64().unwrap();
    assert_eq!(api(port, "POST", &format!("/api/critical/{cid}/acknowledge"), Some(c.token("xihe_tech")), None).0, 404);
    assert_eq!(api(port, "POST", &format!("/api/critical/{cid}/acknowledge"), Some(c.token("liu")), None).0, 403);
    let acked = ok(port, "POST", &format!("/api/critical/{cid}/acknowledge"), c.token("dongshan_tech"), None);
    assert_eq!(acked["acknowledged_by"], "东山 李技师");
    assert!(acked["acknowledged_at"].as_i64().is_some());
    assert_eq!(api(port, "POST", &format!("/api/critical/{cid}/acknowledge"), Some(c.token("dongshan_tech")), None).0, 409);

    // The template's "please confirm" cannot be signed as it stands.
    let (status, reply) = api(port, "POST", &format!("/api/requests/{id}/report/sign"), Some(c.token("liu")), None);
    assert_eq!(status, 400, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("（请医师确认）"), "{reply}");
    let confirmed = draft["conclusion"].as_str().unwrap().replace("（请医师确认）", "");
    ok(
        port,
        "PUT",
        &format!("/api/requests/{id}/report"),
        c.token("liu"),
        Some(&serde_json::json!({ "conclusion": confirmed }).to_string()),
    );

    // Single-signature site: the ECG doctor's signature makes it final.
    let signed = ok(port, "POST", &format!("/api/requests/{id}/report/sign"), c.token("liu"), Some(&pin("liu")));
    assert_eq!(signed["report"]["state"], "final", "{signed}");
    assert_eq!(signed["report"]["critical"], true);
    let (status, _, pdf) = http_raw(port, &format!("/api/requests/{id}/report/pdf"), c.token("dongshan_tech"), None);
    assert_eq!(status, 200);
    let path = c.server.dir.path().join("ecg.pdf");
    std::fs::write(&path, &pdf).unwrap();
    if let Some(keep) = std::env::var_os("TELEDIAG_KEEP_ECG_REPORT") {
        std::fs::copy(&path, keep).unwrap();
    }
    let report = pdfsig(&path);
    assert_eq!(report.matches("Signature is Valid").count(), 1, "{report}");
    assert!(report.contains("刘医生"), "{report}");
    // The 12-lead page is printed at its true size on an A4 landscape page
    // of its own: 1800 px over 297 mm is 153.9 pixels per inch on paper,
    // so 25 mm/s and 10 mm/mV hold for a ruler.
    let images = Command::new("pdfimages").arg("-list").arg(&path).output().unwrap();
    let listed = String::from_utf8_lossy(&images.stdout).into_owned();
    let pictures: Vec<Vec<&str>> =
        listed.lines().skip(2).map(|l| l.split_whitespace().collect::<Vec<_>>()).filter(|f| f.get(2) == Some(&"image")).collect();
    assert_eq!(pictures.len(), 1, "the 12-lead page is in the report: {listed}");
    let (page, width_px, x_ppi) = (pictures[0][0], pictures[0][3], pictures[0][12].parse::<f64>().unwrap());
    assert_eq!((page, width_px), ("2", "1800"), "{listed}");
    assert!((x_ppi - 1800.0 / (297.0 / 25.4)).abs() < 1.0, "printed at true scale: {x_ppi} ppi; {listed}");
    let info =
        String::from_utf8_lossy(&Command::new("pdfinfo").args(["-f", "1", "-l", "2"]).arg(&path).output().unwrap().stdout).into_owned();
    assert!(info.lines().any(|l| l.starts_with("Pages:") && l.trim_end().ends_with(" 2")), "report, then tracing: {info}");
    assert!(info.contains("Page    2 size:  841.89 x 595.27"), "A4 landscape: {info}");
    let tracing_text =
        String::from_utf8_lossy(&Command::new("pdftotext").args(["-f", "2", "-l", "2"]).arg(&path).arg("-").output().unwrap().stdout)
            .into_owned();
    assert!(tracing_text.contains("25 mm/s · 10 mm/mV") && tracing_text.contains("实际大小"), "{tracing_text}");

    // An addendum adds to the final report, which stays final beside it.
    let addendum = ok(
        port,
        "POST",
        &format!("/api/requests/{id}/report/amend"),
        c.token("liu"),
        Some(r#"{"kind":"addendum","password":"password-liu"}"#),
    );
    assert_eq!((addendum["version"].as_i64(), addendum["findings"].as_str()), (Some(2), Some("")));
    ok(
        port,
        "PUT",
        &format!("/api/requests/{id}/report"),
        c.token("liu"),
        Some(r#"{"findings":"与 2026-11-20 心电图比较，ST 段抬高为新出现。","conclusion":"建议立即转诊行冠脉造影。"}"#),
    );
    ok(port, "POST", &format!("/api/requests/{id}/report/sign"), c.token("liu"), Some(&pin("liu")));
    let seen = ok(port, "GET", &format!("/api/requests/{id}/report"), c.token("dongshan_tech"), None);
    let states: Vec<(&str, &str)> =
        seen["versions"].as_array().unwrap().iter().map(|v| (v["kind"].as_str().unwrap(), v["state"].as_str().unwrap())).collect();
    assert_eq!(states, [("report", "final"), ("addendum", "final")]);
    assert_eq!(seen["request"]["state"], "final");
}

/// Each role in the order of the table's columns.
const ROLES: [&str; 6] = ["anonymous", "admin", "dongshan_tech", "chen", "liu", "shen"];

/// A row of [`TABLE`].
type Row = (&'static str, &'static str, Option<&'static str>, [u16; 6], Option<u16>);

/// Every endpoint × role: (method, path, body, status per role in [`ROLES`]
/// order, status for 东山's site user when the path names 西河's object).
/// Paths name 东山's request `{req}`, study `{study}`, instance `{sop}`, or
/// the radiologist `{user}`. Rows that change state come last.
const TABLE: &[Row] = &[
    ("GET", "/api/me", None, [401, 200, 200, 200, 200, 200], None),
    ("GET", "/api/sites", None, [401, 200, 200, 200, 200, 200], None),
    ("GET", "/api/studies", None, [401, 200, 200, 200, 200, 200], None),
    ("GET", "/api/studies/{study}", None, [401, 200, 200, 200, 200, 200], Some(404)),
    ("GET", "/api/instances/{sop}/thumbnail", None, [401, 200, 200, 200, 200, 200], Some(404)),
    ("GET", "/api/requests", None, [401, 200, 200, 200, 200, 200], None),
    ("GET", "/api/requests?view=pool", None, [401, 200, 200, 200, 200, 200], None),
    ("GET", "/api/requests/{req}", None, [401, 200, 200, 200, 200, 200], Some(404)),
    ("GET", "/api/requests/{req}/report", None, [401, 200, 200, 200, 200, 200], Some(404)),
    ("GET", "/api/requests/{req}/report/pdf", None, [401, 404, 404, 404, 404, 404], Some(404)),
    ("POST", "/api/requests/{req}/report", None, [401, 403, 403, 409, 409, 403], Some(404)),
    ("PUT", "/api/requests/{req}/report", Some(r#"{"findings":"x"}"#), [401, 403, 403, 409, 409, 403], Some(404)),
    ("POST", "/api/requests/{req}/report/sign", None, [401, 403, 403, 409, 409, 403], Some(404)),
    // shen is a reviewer but not a radiologist: not credentialed for a CT.
    ("POST", "/api/requests/{req}/report/review", None, [401, 403, 403, 403, 403, 403], Some(404)),
    ("POST", "/api/requests/{req}/report/return", Some(r#"{"reason":"x"}"#), [401, 403, 403, 403, 403, 403], Some(404)),
    ("POST", "/api/requests/{req}/report/amend", Some(r#"{"kind":"amendment"}"#), [401, 403, 403, 409, 403, 403], Some(404)),
    ("POST", "/api/requests/{req}/report/revoke", Some(r#"{"version":1,"reason":"x"}"#), [401, 409, 403, 403, 403, 403], Some(404)),
    ("POST", "/api/requests/{req}/critical", Some(r#"{"note":""}"#), [401, 403, 403, 400, 403, 403], Some(404)),
    ("POST", "/api/requests/{req}/release", None, [401, 409, 403, 403, 403, 403], Some(404)),
    ("POST", "/api/requests/{req}/assign", Some(r#"{"reader_id":999999}"#), [401, 404, 403, 403, 403, 403], Some(404)),
    ("POST", "/api/requests/{req}/cancel", Some(r#"{"reason":" "}"#), [401, 400, 400, 403, 403, 403], Some(404)),
    ("POST", "/api/requests/{req}/confirm-identity", None, [401, 409, 409, 403, 403, 403], Some(404)),
    ("GET", "/api/dashboard", None, [401, 200, 200, 200, 200, 200], None),
    ("GET", "/api/critical", None, [401, 200, 200, 200, 200, 200], None),
    ("POST", "/api/critical/999999/acknowledge", None, [401, 404, 404, 404, 404, 404], None),
    ("GET", "/api/users", None, [401, 200, 403, 403, 403, 403], None),
    ("PATCH", "/api/users/{user}", Some("{}"), [401, 204, 403, 403, 403, 403], None),
    ("PUT", "/api/users/{user}/credentials", Some(r#"{"modalities":[]}"#), [401, 200, 403, 403, 403, 403], None),
    ("GET", "/api/me/signing", None, [401, 403, 403, 200, 200, 200], None),
    ("POST", "/api/users/{user}/signing-identity/retire", Some(r#"{"reason":"left"}"#), [401, 204, 403, 403, 403, 403], None),
    ("PATCH", "/api/sites/东山县医院", Some("{}"), [401, 204, 403, 403, 403, 403], None),
    ("GET", "/api/audit", None, [401, 200, 403, 403, 403, 403], None),
    ("GET", "/api/audit/verify", None, [401, 200, 403, 403, 403, 403], None),
    (
        "POST",
        "/api/requests",
        Some(r#"{"patient_name":"测试","patient_id":"T1","requested_exam":"胸片"}"#),
        [401, 400, 201, 403, 403, 403],
        None,
    ),
    ("POST", "/api/requests/{req}/claim", None, [401, 403, 403, 200, 403, 403], Some(404)),
];

/// A centre with three CT slices imported for 东山 and the CR for 西河 (each
/// becomes a request once stable), and fresh logins for `who`.
fn centre_with_a_study_at_each_site(who: &[&'static str]) -> Centre {
    let mut c = centre(&[]);
    let port = c.port();
    let demo = c.server.dir.path().join("demo");
    let (ct, cr, _) = demo_files(&demo);
    c.server.stop();
    let mut args: Vec<String> = vec!["import".into(), "--site".into(), "东山县医院".into()];
    args.extend(ct.iter().take(3).map(|p| p.display().to_string()));
    c.server.cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
    c.server.cli(&["import", "--site", "西河县医院", &cr.display().to_string()]);
    c.server.start_with(&[("TELEDIAG_STUDY_STABLE_SECS", "1")]);
    c.admin = login(port, "admin", ADMIN_PASSWORD);
    for who in who {
        c.tokens.insert(who, login(port, who, &format!("password-{who}")));
    }
    c
}

/// Issue 20: each signer's key signs at their own act, opened by their own
/// PIN. A reviewer who revises the text signs it alone as its editor; the
/// reporting doctor's signature stays on the draft they signed. Keys in the
/// database are sealed; wrong PINs lock; a forgotten PIN means a new key.
#[test]
fn a_revising_reviewer_signs_alone_and_keys_open_only_with_their_pin() {
    if !require_tool("pdfsig") || !require_tool("pdftotext") || !require_tool("openssl") {
        return;
    }
    let c = centre_with_a_study_at_each_site(&["chen", "huang", "shen", "dongshan_tech"]);
    let port = c.port();
    let requests = wait_for(port, "/api/requests", &c.admin, "a request per site", |v| (v.as_array()?.len() == 2).then(|| v.clone()));
    let of = |site: &str| requests.as_array().unwrap().iter().find(|r| r["site"] == site).unwrap()["id"].as_i64().unwrap();
    let (ct, cr) = (of("东山县医院"), of("西河县医院"));
    let write = |id: i64, conclusion: &str| {
        ok(port, "POST", &format!("/api/requests/{id}/claim"), c.token("chen"), None);
        ok(port, "POST", &format!("/api/requests/{id}/report"), c.token("chen"), None);
        let text = serde_json::json!({ "findings": "右肺上叶见一 8 mm 实性结节，边缘光整。", "conclusion": conclusion });
        ok(port, "PUT", &format!("/api/requests/{id}/report"), c.token("chen"), Some(&text.to_string()));
    };
    let draft_conclusion = "右肺上叶小结节，建议年度复查。";
    write(ct, draft_conclusion);
    ok(port, "POST", &format!("/api/requests/{ct}/report/sign"), c.token("chen"), Some(&pin("chen")));

    // 黄主任 revises the conclusion and signs it as its editor.
    let revised = "右肺上叶实性结节（8 mm），建议 6–12 个月 CT 复查（Fleischner 2017）。";
    let body = serde_json::json!({ "conclusion": revised, "pin": "pin-huang" }).to_string();
    let finished = ok(port, "POST", &format!("/api/requests/{ct}/report/review"), c.token("huang"), Some(&body));
    assert_eq!((finished["report"]["state"].as_str(), finished["report"]["conclusion"].as_str()), (Some("final"), Some(revised)));
    let dir = c.server.dir.path();
    let fetch = |query: &str, name: &str| {
        let (status, head, pdf) = http_raw(port, &format!("/api/requests/{ct}/report/pdf{query}"), c.token("dongshan_tech"), None);
        assert_eq!(status, 200, "{head}");
        let path = dir.join(name);
        std::fs::write(&path, &pdf).unwrap();
        let text = Command::new("pdftotext").args(["-layout"]).arg(&path).arg("-").output().unwrap();
        (pdf, pdfsig(&path), String::from_utf8_lossy(&text.stdout).into_owned())
    };
    let (edited_pdf, signatures, text) = fetch("", "edited.pdf");
    if let Some(keep) = std::env::var_os("TELEDIAG_KEEP_EDITED_REPORT") {
        std::fs::write(keep, &edited_pdf).unwrap();
    }
    assert_eq!(signatures.matches("Signature is Valid").count(), 1, "the reviewer's alone: {signatures}");
    assert!(
        signatures.contains("黄主任") && !signatures.contains("陈医生"),
        "never the author's key on the reviewer's words: {signatures}"
    );
    assert!(text.contains("建议 6–12 个月 CT 复查") && !text.contains("建议年度复查"), "{text}");
    assert!(text.contains("陈医生（初稿）") && text.contains("黄主任（修改）") && text.contains("修改并签名"), "{text}");
    let (draft_pdf, signatures, text) = fetch("?stage=author", "draft.pdf");
    assert_eq!(signatures.matches("Signature is Valid").count(), 1, "{signatures}");
    assert!(signatures.contains("陈医生") && !signatures.contains("黄主任"), "{signatures}");
    assert!(text.contains("建议年度复查"), "the draft as its author signed it: {text}");
    let token = finished["report"]["verify_token"].as_str().unwrap();
    let verified = api(port, "GET", &format!("/verify/{token}"), None, None).1;
    assert_eq!((verified["status"].as_str(), verified["edited_by_reviewer"].as_bool()), (Some("valid"), Some(true)), "{verified}");
    use sha2::Digest;
    assert_eq!(verified["signers"][0]["draft_sha256"], hex::encode(sha2::Sha256::digest(&draft_pdf)), "{verified}");
    assert!(verified["signers"][1]["role"].as_str().unwrap().contains("修改"), "{verified}");

    // Unlocked for the session, 陈医生 signs without retyping the PIN.
    write(cr, "胸部正位片未见明显异常。");
    let unlocked = ok(port, "POST", "/api/me/signing-unlock", c.token("chen"), Some(r#"{"pin":"pin-chen","minutes":5}"#));
    assert!(unlocked["unlocked_until"].as_i64().is_some(), "{unlocked}");
    let (status, _) = api(port, "POST", "/api/me/signing-unlock", Some(c.token("chen")), Some(r#"{"pin":"pin-chen","minutes":600}"#));
    assert_eq!(status, 400, "an unlock is minutes long, at most the centre's maximum");
    let signed = ok(port, "POST", &format!("/api/requests/{cr}/report/sign"), c.token("chen"), None);
    assert_eq!(signed["state"], "preliminary", "{signed}");

    // Five wrong PINs lock signing; then the right one is refused too.
    for attempt in 1..=5 {
        let (status, reply) = api(port, "POST", "/api/me/signing-unlock", Some(c.token("shen")), Some(r#"{"pin":"000000","minutes":1}"#));
        let want = if attempt < 5 { "signing_pin_wrong" } else { "signing_locked" };
        assert_eq!((status, reply["code"].as_str()), (403, Some(want)), "attempt {attempt}: {reply}");
    }
    let (_, reply) = api(port, "POST", "/api/me/signing-unlock", Some(c.token("shen")), Some(r#"{"pin":"pin-shen","minutes":1}"#));
    assert_eq!(reply["code"], "signing_locked", "{reply}");
    assert!(ok(port, "GET", "/api/me/signing", c.token("shen"), None)["locked_until"].as_i64().is_some());

    // What a copy of the database holds: keys sealed, no PKCS#8 key in the
    // clear, and a sealed key does not open without its PIN.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let rows: Vec<(Vec<u8>, Vec<u8>)> = runtime.block_on(async {
        let db = c.server.database().await;
        sqlx::query_as("SELECT key_sealed, cert_der FROM signing_identities").fetch_all(db.pool()).await.unwrap()
    });
    assert_eq!(rows.len(), 5, "every doctor of the centre chose a PIN");
    // RFC 5915 inside PKCS#8: version 1, then the 32-byte P-256 private key.
    const EC_PRIVATE_KEY: [u8; 7] = [0x04, 0x6D, 0x30, 0x6B, 0x02, 0x01, 0x01];
    let holds_key = |bytes: &[u8]| bytes.windows(EC_PRIVATE_KEY.len()).any(|w| w == EC_PRIVATE_KEY);
    for file in ["index.db", "index.db-wal"].into_iter().filter(|_| c.server.backends.embedded()) {
        let bytes = std::fs::read(c.server.data().join(file)).unwrap_or_default();
        assert!(!holds_key(&bytes), "a private key in the clear in {file}");
    }
    if let common::Backends::Shared { database_url, .. } = &c.server.backends {
        // What a PostgreSQL backup holds: every bytea value of a plain dump,
        // decoded from its \x hex form.
        let dump = Command::new("pg_dump").args(["--data-only", database_url]).output().expect("pg_dump runs");
        assert!(dump.status.success(), "pg_dump: {}", String::from_utf8_lossy(&dump.stderr));
        let text = String::from_utf8_lossy(&dump.stdout);
        let values: Vec<Vec<u8>> = text
            .split("\\x")
            .skip(1)
            .map(|hex| hex.as_bytes().chunks(2).map_while(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()).collect())
            .collect();
        assert!(values.len() >= 10, "the dump holds the sealed keys and certificates: {} bytea values", values.len());
        assert!(!values.iter().any(|v| holds_key(v)), "a private key in the clear in a pg_dump of the database");
    }
    for (sealed, cert) in &rows {
        assert!(telediag_reports::identity::SigningKey::from_pkcs8_der(sealed).is_err());
        for guess in ["", "000000", "123456", "password-chen", "pin-xxxx"] {
            assert!(telediag_reports::sealed::open(sealed, guess, cert).is_err(), "{guess:?} opened a key");
        }
    }

    // An administrator retires 陈医生's certificate: no key, no signature,
    // until he chooses a PIN again (a new key). 黄主任, his PIN forgotten,
    // resets it with his password: a new key, the old certificate retired.
    ok(port, "POST", &format!("/api/users/{}/signing-identity/retire", c.ids["chen"]), &c.admin, Some(r#"{"reason":"离职"}"#));
    let (status, reply) = api(port, "GET", "/api/me/signing", Some(c.token("chen")), None);
    assert_eq!((status, reply["has_pin"].as_bool()), (200, Some(false)), "{reply}");
    // A new key needs the enrolment code the registration officer hands
    // the doctor: an administrator who resets his password and logs in as
    // him cannot obtain one.
    ok(port, "PATCH", &format!("/api/users/{}", c.ids["huang"]), &c.admin, Some(r#"{"password":"admin-knows-this"}"#));
    let as_huang = login(port, "huang", "admin-knows-this");
    let (status, reply) =
        api(port, "PUT", "/api/me/signing-pin", Some(&as_huang), Some(r#"{"password":"admin-knows-this","pin":"admins-pin-1"}"#));
    assert_eq!((status, reply["code"].as_str()), (403, Some("signing_enrolment_required")), "{reply}");
    let guessed = r#"{"password":"admin-knows-this","pin":"admins-pin-1","enrolment_code":"AAAA-BBBB-CCCC"}"#;
    let (status, reply) = api(port, "PUT", "/api/me/signing-pin", Some(&as_huang), Some(guessed));
    assert_eq!((status, reply["code"].as_str()), (403, Some("signing_enrolment_wrong")), "{reply}");
    let (status, reply) = api(port, "POST", "/api/me/signing-unlock", Some(&as_huang), Some(r#"{"pin":"admins-pin-1","minutes":1}"#));
    assert_eq!((status, reply["code"].as_str()), (403, Some("signing_pin_wrong")), "his key opens only with his PIN: {reply}");
    ok(port, "PATCH", &format!("/api/users/{}", c.ids["huang"]), &c.admin, Some(r#"{"password":"password-huang"}"#));
    let huang = login(port, "huang", "password-huang");
    let code = enrolment_code(&c.server, "huang");
    let body = format!(r#"{{"password":"password-huang","pin":"new-pin-huang","enrolment_code":"{}"}}"#, code.to_lowercase());
    let reset = ok(port, "PUT", "/api/me/signing-pin", &huang, Some(&body));
    assert_eq!(reset["change"], "reissued", "{reset}");
    let (status, reply) = api(port, "PUT", "/api/me/signing-pin", Some(&huang), Some(&body));
    assert_eq!((status, reply["code"].as_str()), (403, Some("signing_enrolment_wrong")), "a code is used once: {reply}");
    let (status, reply) = api(port, "PUT", "/api/me/signing-pin", Some(&huang), Some(r#"{"password":"wrong","pin":"another-pin"}"#));
    assert_eq!(status, 403, "choosing a PIN needs the login password: {reply}");
    let retired: i64 = runtime.block_on(async {
        let db = c.server.database().await;
        sqlx::query_scalar("SELECT COUNT(*) FROM retired_certificates").fetch_one(db.pool()).await.unwrap()
    });
    assert_eq!(retired, 2, "chen's and huang's old certificates");
    // Both are on the centre CA's public CRL.
    let retired_serials: Vec<String> = runtime.block_on(async {
        let db = c.server.database().await;
        let ders: Vec<Vec<u8>> = sqlx::query_scalar("SELECT cert_der FROM retired_certificates").fetch_all(db.pool()).await.unwrap();
        ders.iter()
            .map(|der| {
                let path = dir.join("retired.der");
                std::fs::write(&path, der).unwrap();
                let out = Command::new("openssl").args(["x509", "-inform", "DER", "-noout", "-serial", "-in"]).arg(&path).output().unwrap();
                String::from_utf8_lossy(&out.stdout).trim().trim_start_matches("serial=").to_owned()
            })
            .collect()
    });
    let (status, head, crl) = http_raw(port, "/ca.crl", "no-session", None);
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("application/pkix-crl"), "{head}");
    std::fs::write(dir.join("ca.crl"), &crl).unwrap();
    let listed =
        Command::new("openssl").args(["crl", "-inform", "DER", "-noout", "-text", "-in"]).arg(dir.join("ca.crl")).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    for serial in &retired_serials {
        assert!(listed.contains(serial.as_str()), "{serial} not in the CRL:\n{listed}");
    }
    assert_eq!(listed.matches("Serial Number:").count(), 2, "{listed}");
}

/// Credentials (modality and site) gate what a doctor may do, not only what
/// they see: a radiologist credentialed for one site's CT flags nothing at
/// another site, and only an ECG doctor co-signs an ECG.
#[test]
fn credentials_gate_actions_not_only_reads() {
    let c = centre_with_a_study_at_each_site(&["chen", "huang", "liu", "dongshan_tech"]);
    let port = c.port();
    ok(
        port,
        "PUT",
        &format!("/api/users/{}/credentials", c.ids["chen"]),
        &c.admin,
        Some(r#"{"modalities":["CT"],"sites":["东山县医院"]}"#),
    );
    let requests = wait_for(port, "/api/requests", &c.admin, "a request per site", |v| (v.as_array()?.len() == 2).then(|| v.clone()));
    let of = |site: &str| requests.as_array().unwrap().iter().find(|r| r["site"] == site).unwrap()["id"].as_i64().unwrap();
    let (dongshan_ct, xihe_cr) = (of("东山县医院"), of("西河县医院"));

    let flag = r#"{"note":"张力性气胸"}"#;
    let (status, reply) = api(port, "POST", &format!("/api/requests/{xihe_cr}/critical"), Some(c.token("chen")), Some(flag));
    assert_eq!(status, 403, "another site's CR is not in chen's credentials: {reply}");
    assert!(reply["error"].as_str().unwrap().contains("not in your credentials"), "{reply}");
    assert_eq!(api(port, "POST", &format!("/api/requests/{xihe_cr}/claim"), Some(c.token("chen")), None).0, 403);
    assert_eq!(
        api(port, "POST", &format!("/api/requests/{dongshan_ct}/critical"), Some(c.token("liu")), Some(flag)).0,
        403,
        "an ECG doctor flags no CT"
    );
    assert_eq!(api(port, "POST", &format!("/api/requests/{dongshan_ct}/critical"), Some(c.token("chen")), Some(flag)).0, 201);
    // Flagged before any draft existed: the report written after carries it.
    ok(port, "POST", &format!("/api/requests/{dongshan_ct}/claim"), c.token("chen"), None);
    let draft = ok(port, "POST", &format!("/api/requests/{dongshan_ct}/report"), c.token("chen"), None);
    assert_eq!(draft["critical"], true, "{draft}");
    let (status, reply) = api(
        port,
        "POST",
        &format!("/api/requests/{xihe_cr}/assign"),
        Some(&c.admin),
        Some(&format!(r#"{{"reader_id":{}}}"#, c.ids["chen"])),
    );
    assert_eq!(status, 400, "an admin cannot assign outside the reader's credentials: {reply}");

    // An ECG, read and signed by the ECG doctor, awaits review: a reviewer
    // who is a radiologist only may not co-sign it; an ECG doctor may.
    let Some(corpus) = ecg_corpus() else { return };
    let scp = std::fs::read(corpus.join("ecgtoolkit/Example.scp")).unwrap();
    assert_eq!(post_bytes(port, "/api/ecg?name=Example.scp", c.token("dongshan_tech"), "application/octet-stream", &scp).0, 201);
    let ecg =
        wait_for(port, "/api/requests?view=pool", c.token("liu"), "the ECG", |v| v.as_array()?.first().cloned())["id"].as_i64().unwrap();
    ok(port, "POST", &format!("/api/requests/{ecg}/claim"), c.token("liu"), None);
    // The template waits for the pipeline's analysis (409 until then).
    let opened = loop {
        let (status, draft) = api(port, "POST", &format!("/api/requests/{ecg}/report"), Some(c.token("liu")), None);
        if status != 409 {
            break draft;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(opened["template"], "ecg", "{opened}");
    ok(
        port,
        "PUT",
        &format!("/api/requests/{ecg}/report"),
        c.token("liu"),
        Some(r#"{"findings":"窦性心律，心率 72 次/分。","conclusion":"正常心电图。"}"#),
    );
    ok(port, "POST", &format!("/api/requests/{ecg}/report/sign"), c.token("liu"), Some(&pin("liu")));
    let (status, reply) = api(port, "POST", &format!("/api/requests/{ecg}/report/review"), Some(c.token("huang")), None);
    assert_eq!(status, 403, "a radiologist reviewer does not co-sign an ECG: {reply}");
    let body = r#"{"username":"ma","display_name":"马主任","password":"password-ma","roles":["ecg_doctor","reviewer"]}"#;
    ok(port, "POST", "/api/users", &c.admin, Some(body));
    let ma = login(port, "ma", "password-ma");
    choose_pin(&c.server, &ma, "ma");
    let finished = ok(port, "POST", &format!("/api/requests/{ecg}/report/review"), &ma, Some(&pin("ma")));
    assert_eq!(finished["report"]["state"], "final", "{finished}");
}

#[test]
fn every_endpoint_answers_every_role_and_another_sites_objects_are_not_found() {
    let c = centre_with_a_study_at_each_site(&["dongshan_tech", "chen", "liu", "shen"]);
    let port = c.port();
    let admin = c.admin.clone();
    let requests = wait_for(port, "/api/requests", &admin, "a request per site", |v| (v.as_array()?.len() == 2).then(|| v.clone()));
    let of = |site: &str| requests.as_array().unwrap().iter().find(|r| r["site"] == site).unwrap().clone();
    let (own, foreign) = (of("东山县医院"), of("西河县医院"));
    let ids = |r: &Value| -> (String, String, String) {
        let study = r["study_uid"].as_str().unwrap().to_owned();
        let detail = wait_for(port, &format!("/api/studies/{study}"), &admin, "thumbnails", |v| {
            (v["rendering"]["ready"] == true).then(|| v.clone())
        });
        (r["id"].to_string(), study, detail["series"][0]["instances"][0]["sop_instance_uid"].as_str().unwrap().to_owned())
    };
    let own_ids = ids(&own);
    let foreign_ids = ids(&foreign);
    let fill = |path: &str, (req, study, sop): &(String, String, String)| {
        path.replace("{req}", req).replace("{study}", study).replace("{sop}", sop).replace("{user}", &c.ids["chen"].to_string())
    };
    let site_list = ok(port, "GET", "/api/requests", c.token("dongshan_tech"), None);
    assert!(site_list.as_array().unwrap().iter().all(|r| r["site"] == "东山县医院"), "{site_list}");

    let mut failures = Vec::new();
    for (method, path, body, expected, foreign_expected) in TABLE {
        for (role, want) in ROLES.iter().zip(expected) {
            let token = (*role != "anonymous").then(|| if *role == "admin" { admin.as_str() } else { c.token(role) });
            let url = fill(path, &own_ids);
            let (status, reply) = api(port, method, &url, token, *body);
            if status != *want {
                failures.push(format!("{method} {url} as {role}: expected {want}, got {status} {reply}"));
            }
        }
        if let Some(want) = foreign_expected {
            let url = fill(path, &foreign_ids);
            let (status, reply) = api(port, method, &url, Some(c.token("dongshan_tech")), *body);
            if status != *want {
                failures.push(format!("{method} {url} as 东山's site user on 西河's object: expected {want}, got {status} {reply}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of the table's answers differ:\n{}", failures.len(), failures.join("\n"));
    // Every one of those authenticated calls is in the audit log, refusals included.
    let audit = ok(port, "GET", "/api/audit?user=dongshan_tech&limit=1000", &admin, None);
    let outcomes: Vec<i64> = audit.as_array().unwrap().iter().map(|e| e["outcome"].as_i64().unwrap()).collect();
    assert!(outcomes.contains(&404) && outcomes.contains(&403) && outcomes.contains(&200), "{outcomes:?}");
}

#[test]
fn operators_add_users_from_the_cli_and_a_doctors_imported_rsa_certificate_signs_the_report() {
    if !require_tool("openssl") || !require_tool("pdfsig") {
        return;
    }
    let mut server = Server::new();
    server.add_site("南岭乡卫生院", "NANLING", &[]);
    let demo = server.dir.path().join("demo");
    let (_, cr, _) = demo_files(&demo);
    server.cli(&["import", "--site", "南岭乡卫生院", &cr.display().to_string()]);
    let add = |args: &[&str]| {
        let out = server.command().args(args).env("TELEDIAG_NEW_PASSWORD", "password-cli-user").output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    add(&["user", "add", "wang", "--name", "王医生", "--role", "radiologist"]);
    add(&["user", "add", "nanling", "--name", "南岭 赵护士", "--role", "site_user", "--site", "南岭乡卫生院"]);
    let refused = server
        .command()
        .args(["user", "add", "x", "--name", "x", "--role", "superuser"])
        .env("TELEDIAG_NEW_PASSWORD", "password-x")
        .output()
        .unwrap();
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("superuser"));
    server.cli(&["user", "credentials", "wang", "--modality", "CR", "--modality", "DX", "--site", "南岭乡卫生院"]);
    let listed = String::from_utf8_lossy(&server.cli(&["user", "list"]).stdout).into_owned();
    assert!(listed.contains("wang") && listed.contains("reads CR,DX at 南岭乡卫生院"), "{listed}");

    // The doctor's own certificate from an outside CA (RSA 2048), as OpenSSL makes it.
    let dir = server.dir.path().to_path_buf();
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=王医生/O=省CA", "-utf8"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let status = Command::new("openssl")
        .args(["pkcs12", "-export", "-passout", "pass:p12-secret"])
        .arg("-inkey")
        .arg(dir.join("key.pem"))
        .arg("-in")
        .arg(dir.join("cert.pem"))
        .arg("-out")
        .arg(dir.join("wang.p12"))
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    server.start_with(&[("TELEDIAG_STUDY_STABLE_SECS", "1")]);
    let port = server.http_port;
    let admin = login(port, "admin", ADMIN_PASSWORD);
    ok(port, "PATCH", "/api/sites/南岭乡卫生院", &admin, Some(r#"{"single_signature":true}"#));
    let wang = login(port, "wang", "password-cli-user");
    // The doctor brings the PKCS#12 and seals its key under their signing PIN.
    let p12 = std::fs::read(dir.join("wang.p12")).unwrap();
    let code = enrolment_code(&server, "wang");
    let import = |p12_password: &str| {
        let headers = [
            ("X-Password", "password-cli-user"),
            ("X-Pkcs12-Password", p12_password),
            ("X-Signing-Pin", "wang-pin-2026"),
            ("X-Enrolment-Code", code.as_str()),
        ];
        send_bytes(port, "PUT", "/api/me/signing-identity", &wang, &headers, &p12)
    };
    let (status, reply) = import("wrong");
    assert_eq!(status, 400, "a wrong PKCS#12 password is refused: {reply}");
    let (status, reply) = import("p12-secret");
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("CN=王医生"), "{reply}");
    let id = wait_for(port, "/api/requests?view=pool", &wang, "the CR in wang's pool", |v| v.as_array()?.first().map(|r| r["id"].clone()))
        .as_i64()
        .unwrap();
    ok(port, "POST", &format!("/api/requests/{id}/claim"), &wang, None);
    ok(port, "POST", &format!("/api/requests/{id}/report"), &wang, None);
    ok(
        port,
        "PUT",
        &format!("/api/requests/{id}/report"),
        &wang,
        Some(r#"{"findings":"双肺纹理清晰。","conclusion":"胸部正位片未见明显异常。"}"#),
    );
    let signed = ok(port, "POST", &format!("/api/requests/{id}/report/sign"), &wang, Some(r#"{"pin":"wang-pin-2026"}"#));
    assert_eq!(signed["report"]["state"], "final");
    let nanling = login(port, "nanling", "password-cli-user");
    let (status, _, pdf) = http_raw(port, &format!("/api/requests/{id}/report/pdf"), &nanling, None);
    assert_eq!(status, 200);
    std::fs::write(dir.join("cr.pdf"), &pdf).unwrap();
    let report = pdfsig(&dir.join("cr.pdf"));
    assert_eq!(report.matches("Signature is Valid").count(), 1, "{report}");
    assert!(report.contains("O=省CA") || report.contains("省CA"), "signed with the imported certificate: {report}");
    let audit = ok(port, "GET", "/api/audit?contains=signing-identity", &admin, None);
    assert!(audit.as_array().unwrap().iter().any(|e| e["object"] == "/api/me/signing-identity"), "{audit}");
}

#[test]
fn the_dashboard_counts_like_an_upload_board_and_overdue_requests_are_flagged() {
    let mut server = Server::new();
    server.add_site("东山县医院", "DONGSHAN", &[]);
    server.add_site("西河县医院", "XIHE", &[]);
    let demo = server.dir.path().join("demo");
    let (_, cr, us) = demo_files(&demo);
    server.cli(&["import", "--site", "西河县医院", &cr.display().to_string(), &us.display().to_string()]);
    // Routine requests are due the moment their images arrive: both are overdue at once.
    let config = server.dir.path().join("telediag.toml");
    std::fs::write(&config, "[worklist.turnaround]\nroutine = { default = 0 }\n").unwrap();
    server.start_with(&[("TELEDIAG_STUDY_STABLE_SECS", "1"), ("TELEDIAG_CONFIG", config.to_str().unwrap())]);
    let port = server.http_port;
    let admin = login(port, "admin", ADMIN_PASSWORD);
    ok(
        port,
        "POST",
        "/api/users",
        &admin,
        Some(r#"{"username":"ds","display_name":"东山","password":"password-ds","roles":["site_user"],"site":"东山县医院"}"#),
    );
    let ds = login(port, "ds", "password-ds");
    ok(
        port,
        "POST",
        "/api/requests",
        &ds,
        Some(r#"{"patient_name":"李四","patient_id":"D9","requested_exam":"头颅CT","modality":"CT","priority":"urgent"}"#),
    );
    let overdue =
        wait_for(port, "/api/requests?view=overdue", &admin, "two overdue arrivals", |v| (v.as_array()?.len() == 2).then(|| v.clone()));
    assert!(overdue.as_array().unwrap().iter().all(|r| r["overdue"] == true && r["site"] == "西河县医院"), "{overdue}");
    let board = ok(port, "GET", "/api/dashboard", &admin, None);
    let expected_total = serde_json::json!({"received_today": 2, "read_today": 0, "awaiting_report": 2, "awaiting_review": 0,
        "overdue": 2, "images_missing": 1, "unreconciled": 2});
    assert_eq!(board["total"], expected_total, "{board}");
    let xihe = board["sites"].as_array().unwrap().iter().find(|s| s["site"] == "西河县医院").unwrap();
    assert_eq!((xihe["overdue"].as_i64(), xihe["images_missing"].as_i64()), (Some(2), Some(0)), "{board}");
    let own = ok(port, "GET", "/api/dashboard", &ds, None);
    assert_eq!(own["sites"].as_array().unwrap().len(), 1, "a site sees its own counters only: {own}");
    assert_eq!(own["total"]["images_missing"], 1);
    assert_eq!(own["total"]["overdue"], 0);
    // Filters: by modality, priority, site; sorted by deadline.
    assert_eq!(ok(port, "GET", "/api/requests?modality=US", &admin, None).as_array().unwrap().len(), 1);
    assert_eq!(ok(port, "GET", "/api/requests?priority=urgent", &admin, None).as_array().unwrap().len(), 1);
    let by_deadline = ok(port, "GET", "/api/requests", &admin, None);
    let deadlines: Vec<Option<i64>> = by_deadline.as_array().unwrap().iter().map(|r| r["deadline_at"].as_i64()).collect();
    assert_eq!(deadlines.len(), 3);
    assert!(deadlines[0] <= deadlines[1] && deadlines[1].is_some() && deadlines[2].is_none(), "soonest first, undated last: {deadlines:?}");
    let (status, body) = api(port, "GET", "/api/requests?view=everything", Some(&admin), None);
    assert_eq!(status, 400, "{body}");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A copy of `file` as another study of `patient_id`, made today (in the
/// centre's time): new study, series and instance UIDs and accession number,
/// so one demo image can stand for many, whatever the calendar says.
fn variant(file: &Path, dir: &Path, label: &str, patient_id: &str) -> PathBuf {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    let mut obj = dicom_object::open_file(file).unwrap();
    let uid =
        |what: &str| format!("2.25.{}", u128::from_be_bytes(sha2::Sha256::digest(format!("{label}/{what}"))[..16].try_into().unwrap()));
    use sha2::Digest;
    for (tag, vr, value) in [
        (tags::STUDY_INSTANCE_UID, VR::UI, uid("study")),
        (tags::SERIES_INSTANCE_UID, VR::UI, uid("series")),
        (tags::SOP_INSTANCE_UID, VR::UI, uid("instance")),
        (tags::ACCESSION_NUMBER, VR::SH, format!("ACC-{label}")),
        (tags::PATIENT_ID, VR::LO, patient_id.to_owned()),
        (tags::STUDY_DATE, VR::DA, telediag_reports::Timestamp::new(now_ms(), 480).dicom_date()),
    ] {
        obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value.as_str())));
    }
    obj.meta_mut().media_storage_sop_instance_uid = uid("instance");
    let path = dir.join(format!("{label}.dcm"));
    obj.write_to_file(&path).unwrap();
    path
}

#[test]
fn registrations_reconcile_by_patient_date_and_modality_or_after_the_images_and_can_be_cancelled() {
    if !require_tool("storescu") {
        return;
    }
    let c = centre(&[]);
    let port = c.port();
    let demo = c.server.dir.path().join("demo");
    let (_, cr, us) = demo_files(&demo);
    let site = c.token("xihe_tech");
    // The demo CR is dated 2026-11-23; a copy dated today stands in for it.
    let cr_patient = "DEMO0002";
    let cr = variant(&cr, &demo, "cr-today", cr_patient);

    // No accession number given: the chest film is matched by patient ID, today's date and CR.
    let body = format!(
        r#"{{"patient_name":"王芳","patient_id":"{cr_patient}","modality":"CR","requested_exam":"胸部正位片","bed_number":"3床"}}"#
    );
    let registered = ok(port, "POST", "/api/requests", site, Some(&body));
    let id = registered["id"].as_i64().unwrap();
    // A registration for the same patient but another modality must not take it.
    let other = format!(r#"{{"patient_name":"王芳","patient_id":"{cr_patient}","modality":"MR","requested_exam":"头颅MR"}}"#);
    let other_id = ok(port, "POST", "/api/requests", site, Some(&other))["id"].as_i64().unwrap();
    push(c.server.dicom_port, "XIHE", &[cr]);
    let matched = wait_for(port, &format!("/api/requests/{id}"), site, "the CR reconciled", |v| {
        v["request"]["images_at"].as_i64().map(|_| v.clone())
    });
    assert_eq!(matched["request"]["bed_number"], "3床");
    assert_eq!(matched["request"]["identity_mismatch"], "登记：王芳（DEMO0002）；影像：李娜（DEMO0002）", "same ID, another name");
    assert!(matched["history"].to_string().contains("but the patient differs"), "{matched}");
    assert!(matched["history"].to_string().contains("patient ID, date and modality"), "{matched}");
    assert_eq!(ok(port, "GET", &format!("/api/requests/{other_id}"), site, None)["request"]["images_at"], Value::Null);

    // The ultrasound arrives first, unregistered; the registration that follows attaches to it.
    push(c.server.dicom_port, "XIHE", std::slice::from_ref(&us));
    let arrival = wait_for(port, "/api/requests?unreconciled=true", site, "the US arrival", |v| v.as_array()?.first().cloned());
    let accession = accession_of(&us);
    let late = format!(
        r#"{{"patient_name":"赵敏","patient_id":"X1","accession_number":"{accession}","requested_exam":"腹部超声","department":"消化内科","priority":"urgent"}}"#
    );
    // The technician's double click, six times over, at once: the exam is
    // reconciled exactly once; the others are told it is registered.
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let sent: Vec<_> = (0..6).map(|_| scope.spawn(|| api(port, "POST", "/api/requests", Some(site), Some(&late)))).collect();
        sent.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let created: Vec<&Value> = answers.iter().filter(|(status, _)| *status == 201).map(|(_, v)| v).collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    for (status, refused) in answers.iter().filter(|(status, _)| *status != 201) {
        assert_eq!(*status, 409, "{refused}");
        let says = format!("already registered as request {}", arrival["id"]);
        assert!(refused["error"].as_str().unwrap().contains(&says), "{refused}");
    }
    let attached = created[0].clone();
    assert_eq!(attached["id"], arrival["id"], "the registration joined the images' request");
    let history = ok(port, "GET", &format!("/api/requests/{}", arrival["id"]), site, None)["history"].to_string();
    assert_eq!(history.matches("reconciled with images already received").count(), 1, "{history}");
    assert_eq!(
        (attached["reconciled"].as_bool(), attached["priority"].as_str(), attached["department"].as_str()),
        (Some(true), Some("urgent"), Some("消化内科"))
    );
    assert_eq!(attached["identity_mismatch"], "登记：赵敏（X1）；影像：王芳（DEMO0003）", "{attached}");
    let images_at = attached["images_at"].as_i64().unwrap();
    assert_eq!(attached["deadline_at"].as_i64().unwrap() - images_at, 240 * 60_000, "urgent: 4 hours from the images");
    assert!(ok(port, "GET", "/api/requests?unreconciled=true", site, None).as_array().unwrap().is_empty());

    // The site withdraws the MR it will not send.
    let (status, _) = api(port, "POST", &format!("/api/requests/{other_id}/cancel"), Some(c.token("chen")), Some(r#"{"reason":"x"}"#));
    assert_eq!(status, 403);
    let cancelled = ok(port, "POST", &format!("/api/requests/{other_id}/cancel"), site, Some(r#"{"reason":"患者拒绝检查"}"#));
    assert_eq!(cancelled["state"], "cancelled");
    let history = ok(port, "GET", &format!("/api/requests/{other_id}"), &c.admin, None)["history"].to_string();
    assert!(history.contains("患者拒绝检查") && history.contains("西河 王医生"), "who and why: {history}");
    assert_eq!(ok(port, "GET", "/api/dashboard", site, None)["total"]["images_missing"], 0, "a cancelled request awaits no images");
}

#[test]
fn rules_prefer_the_reader_of_the_same_patient_then_the_least_loaded() {
    if !require_tool("storescu") {
        return;
    }
    let c = centre(&[]);
    let port = c.port();
    ok(port, "PATCH", "/api/sites/西河县医院", &c.admin, Some(r#"{"assignment_mode":"auto"}"#));
    for reader in ["chen", "zhou", "huang"] {
        let modalities = if reader == "huang" { r#"{"modalities":["US"]}"# } else { r#"{"modalities":["CR"]}"# };
        ok(port, "PUT", &format!("/api/users/{}/credentials", c.ids[reader]), &c.admin, Some(modalities));
    }
    let demo = c.server.dir.path().join("demo");
    let (_, cr, _) = demo_files(&demo);
    let dir = c.server.dir.path().to_path_buf();
    let assigned_to = |label: &str, patient: &str| -> i64 {
        let file = variant(&cr, &dir, label, patient);
        push(c.server.dicom_port, "XIHE", &[file]);
        let accession = format!("ACC-{label}");
        wait_for(port, "/api/requests", &c.admin, &format!("{label} assigned"), |v| {
            v.as_array()?
                .iter()
                .find(|r| r["accession_number"] == accession.as_str() && r["state"] == "assigned")
                .map(|r| r["assigned_to"].clone())
        })
        .as_i64()
        .unwrap()
    };
    let (chen, zhou) = (c.ids["chen"], c.ids["zhou"]);
    assert_eq!(assigned_to("a", "P1"), chen, "a tie goes to the longest-standing reader");
    assert_eq!(assigned_to("b", "P2"), zhou, "then the least loaded (0 against 1)");
    assert_eq!(assigned_to("c", "P3"), chen, "a tie again (1 and 1)");
    assert_eq!(assigned_to("d", "P1"), chen, "P1's reader, though 陈 holds 2 and 周 1");
    assert_eq!(assigned_to("e", "P5"), zhou, "the least loaded (1 against 3)");
}
