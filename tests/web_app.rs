//! The web application (`viewer/`, built into `viewer/dist`) served by the
//! real binary with its demo centre, driven in headless Chromium by
//! tests/web_app/reading_room.mjs: sign-in, the reader's pool, 抢单 seen
//! from a second reader's browser, the demo CT read (scroll, window drag,
//! lung preset, each changing the canvas), Chinese and English, sign-out;
//! patient text that is HTML stays text. Over raw HTTP: the Content-Security-Policy,
//! caching of hashed assets, the API's 404s, and cookie-authenticated
//! changes refused without the application's header. And a report from
//! claim to the county hospital's download (tests/web_app/report_flow.mjs).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const HOSTILE_NAME: &str = "<img src=x onerror=alert(1)>";

/// The built application and the browser tools (`.ci/run` builds and installs them).
fn web_app_toolchain() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dist = root.join("viewer/dist");
    require_all(&[
        (dist.join("index.html").is_file(), "the built application (npm ci && npm run build --workspace viewer)"),
        (root.join("node_modules/playwright-core").is_dir(), "playwright-core (npm ci)"),
        (Path::new("/usr/bin/chromium").is_file(), "chromium (apt-get install chromium)"),
    ])
    .then_some(dist)
}

/// Runs `tests/web_app/<script>` with `args` against `server`, its
/// screenshots kept in `target/tmp/web_app`; what it observed, as JSON.
fn journey(server: &Server, script: &str, args: &[&str]) -> serde_json::Value {
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web_app");
    let output = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web_app").join(script))
        .args(["--url", &format!("http://127.0.0.1:{}", server.http_port)])
        .args(["--screenshots", screenshots.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{script} failed: {}\n{}", String::from_utf8_lossy(&output.stderr), server.log());
    eprintln!("{script}: screenshots in {}", screenshots.display());
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A one-slice CT whose Patient Name is HTML, as a careless or hostile
/// sender could write it (UTF-8).
fn hostile_ct(dir: &Path) -> Vec<CorpusFile> {
    std::fs::create_dir_all(dir).unwrap();
    let sop = "2.25.770000000000000000000000000000000001";
    let study = "2.25.770000000000000000000000000000000000";
    let mut ds = Vec::new();
    explicit_element(&mut ds, 0x0008, 0x0005, b"CS", b"ISO_IR 192");
    explicit_element(&mut ds, 0x0008, 0x0016, b"UI", b"1.2.840.10008.5.1.4.1.1.2");
    explicit_element(&mut ds, 0x0008, 0x0018, b"UI", sop.as_bytes());
    explicit_element(&mut ds, 0x0008, 0x0060, b"CS", b"CT");
    explicit_element(&mut ds, 0x0008, 0x1030, b"LO", "<script>alert(2)</script>胸部CT".as_bytes());
    explicit_element(&mut ds, 0x0010, 0x0010, b"PN", HOSTILE_NAME.as_bytes());
    explicit_element(&mut ds, 0x0010, 0x0020, b"LO", b"XSS-1");
    explicit_element(&mut ds, 0x0020, 0x000D, b"UI", study.as_bytes());
    explicit_element(&mut ds, 0x0020, 0x000E, b"UI", format!("{study}.1").as_bytes());
    explicit_element(&mut ds, 0x0028, 0x0002, b"US", &1u16.to_le_bytes());
    explicit_element(&mut ds, 0x0028, 0x0004, b"CS", b"MONOCHROME2");
    explicit_element(&mut ds, 0x0028, 0x0010, b"US", &32u16.to_le_bytes());
    explicit_element(&mut ds, 0x0028, 0x0011, b"US", &32u16.to_le_bytes());
    explicit_element(&mut ds, 0x0028, 0x0100, b"US", &16u16.to_le_bytes());
    explicit_element(&mut ds, 0x0028, 0x0101, b"US", &12u16.to_le_bytes());
    explicit_element(&mut ds, 0x0028, 0x0102, b"US", &11u16.to_le_bytes());
    explicit_element(&mut ds, 0x0028, 0x0103, b"US", &0u16.to_le_bytes());
    let pixels: Vec<u8> = (0..32 * 32u16).flat_map(|v| (v * 3).to_le_bytes()).collect();
    explicit_element(&mut ds, 0x7FE0, 0x0010, b"OW", &pixels);
    write_ct_part10(&dir.join("hostile.dcm"), sop, &ds);
    part10_files(dir)
}

#[test]
fn readers_sign_in_claim_from_the_pool_and_patient_text_stays_text() {
    if !require_tool("storescu") || !require_tool("node") {
        return;
    }
    let Some(dist) = web_app_toolchain() else { return };
    let mut server = Server::new();
    server.start_demo(&[("TELEDIAG_WEB_APP", dist.to_str().unwrap()), ("TELEDIAG_STUDY_STABLE_SECS", "1")]);
    let port = server.http_port;
    let files = hostile_ct(&server.dir.path().join("hostile"));
    let profile = server.dir.path().join("hostile.cfg");
    storescu_profile(&files, &profile);
    storescu(server.dicom_port, "DEMO_CT", &files, &profile);

    // The application's page: a strict CSP, revalidated; its hashed assets cached for a year.
    let (status, head) = http_head(port, "GET", "/", "");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-security-policy: default-src 'self'; script-src 'self' 'wasm-unsafe-eval';"), "{head}");
    assert!(head.contains("cache-control: no-cache") && head.contains("x-content-type-options: nosniff"), "{head}");
    let index = std::fs::read_to_string(dist.join("index.html")).unwrap();
    let script = index.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("a script in index.html");
    assert!(script.starts_with("/assets/"), "{script}");
    let (status, head) = http_head(port, "GET", script, "");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("cache-control: public, max-age=31536000, immutable"), "{head}");
    // A missing asset is 404 (never index.html under a year's cache); an application path is the page.
    let (status, head) = http_head(port, "GET", "/assets/index-00000000.js", "");
    assert_eq!(status, 404, "{head}");
    assert!(!head.contains("immutable") && !head.contains("text/html"), "{head}");
    assert_eq!(http_head(port, "GET", "/requests/12", "").0, 200);
    // A path segment no file can have is the page (or a missing asset), not a 500.
    let long = "a".repeat(8000);
    assert_eq!(http_head(port, "GET", &format!("/{long}"), "").0, 200);
    assert_eq!(http_head(port, "GET", &format!("/assets/{long}.js"), "").0, 404);
    // The API's own unknown paths stay JSON 404s.
    let (status, head) = http_head(port, "GET", "/api/nothing", "");
    assert_eq!(status, 404);
    assert!(head.contains("application/json"), "{head}");

    // A change made with the session cookie needs the application's header
    // (or the browser's Sec-Fetch-Site: same-origin); a bearer token does not.
    let password = server.demo_password("demo_radiologist");
    let token = login(port, "demo_radiologist", &password);
    let cookie = format!("Cookie: telediag_session={token}\r\n");
    let (status, head) = http_head(port, "POST", "/api/logout", &cookie);
    assert_eq!(status, 403, "{head}");
    let (status, _) = http_head(port, "POST", "/api/logout", &format!("{cookie}Sec-Fetch-Site: cross-site\r\n"));
    assert_eq!(status, 403, "a cross-site request is refused");
    let (status, head) = http_head(port, "POST", "/api/logout", &format!("{cookie}X-Telediag-Request: 1\r\n"));
    assert_eq!(status, 204, "{head}");

    // The hostile study's request must be in the pool before the browser looks.
    let reviewer_token = login(port, "demo_reviewer", &server.demo_password("demo_reviewer"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, pool) = http(port, "GET", "/api/requests?view=pool", Some(&reviewer_token), None);
        if pool.contains("XSS-1") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the hostile CT never reached the pool: {pool}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    let second = format!("demo_reviewer:{}", server.demo_password("demo_reviewer"));
    let reader = format!("demo_radiologist:{password}");
    let seen = journey(&server, "reading_room.mjs", &["--reader", &reader, "--second", &second, "--claim", HOSTILE_NAME]);
    let step = |name: &str| seen["steps"][name].clone();

    assert_eq!(step("loginTitle"), "登录");
    assert_eq!(step("wrongPassword"), "用户名或密码错误。");
    assert_eq!(step("signedInAs"), "放射科 陈医生");
    assert_eq!(step("tabs"), serde_json::json!(["我的", "待抢单", "已超时", "全部"]));
    // The name is shown as the characters it is; no element and no script came of it.
    assert_eq!(step("claimRowText"), HOSTILE_NAME);
    assert_eq!(step("injectedImages"), 0);
    assert_eq!(seen["dialogs"], serde_json::json!([]), "a script ran: {seen}");
    // 抢单: the claimed case left the other reader's pool within 2 s, without
    // a reload, told by the change feed (/api/events), not by polling.
    assert!(step("leftOtherPoolMs").as_u64().unwrap() <= 2000, "{seen}");
    let streams = seen["eventStreams"].as_array().unwrap();
    assert!(!streams.is_empty() && streams.iter().all(|s| s == "200 text/event-stream"), "{seen}");
    eprintln!("the claimed case left the other pool after {} ms", step("leftOtherPoolMs"));
    assert!(step("landedOn").as_str().unwrap().starts_with("/read/"), "the winner opens the case: {seen}");
    assert_eq!(step("afterClaimTab"), "我的");
    assert_eq!(step("mineRowState"), "阅片中", "opening the case starts the reading");
    assert!(step("backInOtherPoolMs").as_u64().unwrap() <= 2000, "a released case returns to the pool at once: {seen}");
    // Reading the demo CT: drawn, 24 slices; scrolling, dragging the window
    // and the lung preset each change what is on screen.
    let lit = |name: &str| step(name)["lit"].as_f64().unwrap_or(0.0);
    let sum = |name: &str| step(name)["sum"].as_u64().unwrap();
    assert!(lit("firstImage") > 0.05, "the first image is blank: {seen}");
    assert_eq!(step("stackSize"), "24");
    assert_eq!(step("indexAfterScroll"), "5", "five ArrowDowns are image 6");
    assert_ne!(sum("afterScroll"), sum("firstImage"), "scrolling changed nothing on screen");
    let drag = step("windowDrag");
    assert_ne!(drag["before"], drag["after"], "dragging did not change the window: {seen}");
    assert_ne!(sum("afterDrag"), sum("afterScroll"), "the new window changed nothing on screen");
    assert_eq!(step("lungPreset"), serde_json::json!({"width": "1500", "center": "-600"}));
    assert_ne!(sum("afterPreset"), sum("afterDrag"));
    eprintln!("the CT's first image was on screen {} ms after Read was clicked", step("firstImageMs"));
    // The length across 128 pixels of 1.367 mm reads 175.0 mm, within the
    // placement error of a mouse on whole screen pixels (a pixel at each end).
    let length = step("length");
    let tolerance = 2.0 * 1.367 / length["screenPixelsPerImagePixel"].as_f64().unwrap() + 0.05;
    assert_eq!(length["unit"], "mm", "{length}");
    assert!((length["value"].as_f64().unwrap() - 174.98).abs() <= tolerance, "{length}, ±{tolerance:.2}");
    assert!(length["text"].as_str().unwrap().ends_with(" mm"), "{length}");
    // English, remembered; sign-out; a deep link survives the login.
    assert_eq!(step("tabsAfterReload"), serde_json::json!(["Mine", "Pool", "Overdue", "All"]));
    assert_eq!(step("afterLogout"), "Sign in");
    assert_eq!(step("deepLink"), "This page does not exist.");
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
}

/// The report from claim to the county hospital through the application
/// (tests/web_app/report_flow.mjs): written with the template, a phrase and
/// a key image, a conflicting save from another tab shown, signed with a
/// signing PIN chosen there (after a wrong password is refused), revised
/// and signed as its editor by the reviewer in another browser, previewed
/// in the page, downloaded by the site (then 已打印), its PDF verified by
/// poppler's pdfsig; a new request registered by the site.
#[test]
fn a_report_is_written_signed_revised_by_the_reviewer_and_the_hospital_downloads_it() {
    if !require_tool("node") || !require_tool("pdfsig") {
        return;
    }
    let Some(dist) = web_app_toolchain() else { return };
    let mut server = Server::new();
    server.start_demo(&[("TELEDIAG_WEB_APP", dist.to_str().unwrap())]);
    let pdf = server.dir.path().join("downloaded.pdf");
    let credentials = |user: &str| format!("{user}:{}", server.demo_password(user));
    let (reader, reviewer, site) = (credentials("demo_radiologist"), credentials("demo_reviewer"), credentials("demo_site"));
    let seen = journey(
        &server,
        "report_flow.mjs",
        &[
            "--reader",
            &reader,
            "--reviewer",
            &reviewer,
            "--site",
            &site,
            "--exam",
            "胸部CT平扫",
            "--pdf",
            pdf.to_str().unwrap(),
            "--reader-enrolment",
            &server.demo_enrolment_code("demo_radiologist"),
            "--reviewer-enrolment",
            &server.demo_enrolment_code("demo_reviewer"),
        ],
    );
    let step = |name: &str| seen["steps"][name].clone();

    // The winner of the claim is in the case, with the chest CT template's draft.
    assert!(step("landedOn").as_str().unwrap().starts_with("/read/"), "{seen}");
    assert_eq!(step("template")["method"], "胸部 CT 平扫，层厚 5 mm，肺窗及纵隔窗观察。");
    assert_eq!(step("template")["state"], "draft");
    assert_eq!((step("keyImages"), step("keyButtonPressed")), (serde_json::json!(1), serde_json::json!("true")));
    assert_eq!(step("conclusionAfterPhrase"), "右肺上叶小结节，建议复查。");
    // The other tab's newer save won and was shown, not overwritten.
    assert!(step("conflict").as_str().unwrap().contains("另一个窗口已保存"), "{seen}");
    assert_eq!(step("findingsAfterReload"), "右肺上叶见一结节影，直径约 8 mm，边缘光整，邻近胸膜未见牵拉。");
    assert_eq!(step("wrongPassword"), "密码错误。多次输错将锁定账户。");
    assert_eq!(step("afterSign")["editable"], false, "signed text is no longer editable");
    assert!(step("afterSign")["signatures"][0].as_str().unwrap().contains("报告医师 放射科 陈医生"), "{seen}");
    // The reviewer saw the signed text, co-signed, and the PDF is shown in the page.
    assert_eq!(step("reviewerSees"), step("findingsAfterReload"));
    let preview = step("preview");
    assert_eq!((preview["status"].as_u64(), preview["type"].as_str()), (Some(200), Some("application/pdf")), "{preview}");
    assert!(preview["disposition"].as_str().unwrap().starts_with("inline"), "{preview}");
    // The reviewer revised the conclusion and signed it alone, as its editor.
    assert_eq!(step("reviewerMayTypeBefore"), false, "a reviewer types only after choosing to revise");
    assert!(step("finalSignatures")[0].as_str().unwrap().contains("Reviewer (revised and signed) 审核 黄主任"), "{seen}");
    assert!(step("finalSignatures")[0].as_str().unwrap().contains("Reporting doctor (signed the draft) 放射科 陈医生"), "{seen}");
    assert!(step("finalConclusion").as_str().unwrap().contains("建议 6–12 个月后 CT 复查"), "{seen}");
    // The hospital: final, then printed once downloaded; the QR code drawn.
    assert_eq!((step("siteStatusBefore"), step("siteStatusAfter")), (serde_json::json!("final"), serde_json::json!("printed")));
    assert_eq!(step("siteStatusText"), "已打印");
    assert!(step("qrWidth").as_u64().unwrap() > 0);
    let verified = Command::new("pdfsig").arg(&pdf).output().unwrap();
    let verified = String::from_utf8_lossy(&verified.stdout);
    assert_eq!(verified.matches("Signature is Valid").count(), 1, "the editor's signature alone: {verified}");
    assert!(verified.contains("黄主任") && !verified.contains("陈医生"), "never the author's key on the reviewer's words: {verified}");
    // A registration ahead of the images.
    assert!(step("registered").as_str().unwrap().contains("DX20261205001"), "{seen}");
    assert_eq!(step("registeredRow")["status"], "received");
    assert_eq!(step("siteStatusEnglish"), "Printed");
    assert_eq!(seen["dialogs"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
}

/// The ECG doctor reads the demo ECG (tests/web_app/ecg_reading.mjs): the
/// tracing is drawn from the samples, calipers placed on two R peaks of the
/// rhythm strip read the interval the samples give, the measurements sit
/// beside the cart's, and the report is signed.
#[test]
fn an_ecg_doctor_measures_rr_with_calipers_and_signs() {
    if !require_tool("node") {
        return;
    }
    let Some(dist) = web_app_toolchain() else { return };
    let mut server = Server::new();
    server.start_demo(&[("TELEDIAG_WEB_APP", dist.to_str().unwrap())]);
    let reader = format!("demo_ecg:{}", server.demo_password("demo_ecg"));
    let seen = journey(&server, "ecg_reading.mjs", &["--reader", &reader, "--reader-enrolment", &server.demo_enrolment_code("demo_ecg")]);
    let step = |name: &str| seen["steps"][name].clone();

    assert!(step("paperLit").as_f64().unwrap() > 0.005, "the traces are drawn: {seen}");
    // The clicks landed within a screen pixel or two of the peaks, and the
    // calipers, moved onto the peak samples, read exactly their interval.
    let peaks: Vec<i64> = serde_json::from_value(step("peaks")).unwrap();
    let rate = step("rate").as_f64().unwrap();
    let clicked = step("clicked");
    let per_sample = clicked["pixelsPerSample"].as_f64().unwrap();
    for (placed, peak) in [(&clicked["first"], peaks[1]), (&clicked["second"], peaks[2])] {
        assert!((placed.as_i64().unwrap() - peak).abs() as f64 * per_sample <= 2.0, "a click far from its peak: {clicked}");
    }
    let calipers = step("calipers");
    assert_eq!(calipers["samples"], format!("{},{}", peaks[1], peaks[2]));
    let rr = (peaks[2] - peaks[1]) as f64 * 1000.0 / rate;
    assert_eq!(calipers["ms"].as_f64().unwrap(), rr, "{calipers}");
    assert!((calipers["bpm"].as_f64().unwrap() - 60_000.0 / rr).abs() < 0.1, "{calipers}");
    assert!((700.0..=950.0).contains(&rr), "a demo RR of about 833 ms, found {rr}");
    // Both columns of the table, the cart's statements; 12 strips in 12×1.
    let rows = step("measurements");
    let pr = rows.as_array().unwrap().iter().find(|r| r[0] == "PR 间期").unwrap_or_else(|| panic!("{rows}"));
    assert!(pr[1].as_str().unwrap().ends_with(" ms") && pr[2] == "168 ms", "{pr}");
    assert_eq!(step("statements"), serde_json::json!(["窦性心律", "正常心电图"]));
    assert_eq!(step("layout12"), 12);
    assert!(step("prefilled").as_str().unwrap().contains("机器分析：窦性心律"), "{seen}");
    assert_eq!(step("signedState"), "preliminary");
    assert!(step("signingCertificate").as_str().unwrap().contains("刘医生"), "the key issued at the first signature: {seen}");
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
}

/// The administrator's screens (tests/web_app/administration.mjs): the
/// dashboard counts a registration made meanwhile without a reload; a
/// hospital is added and set to single signature and assignment by rules;
/// a user is added, credentialed and disabled (and then cannot log in);
/// the audit log finds what was done and its chain checks intact.
#[test]
fn an_administrator_runs_the_centre_from_the_browser() {
    if !require_tool("node") {
        return;
    }
    let Some(dist) = web_app_toolchain() else { return };
    let mut server = Server::new();
    server.start_demo(&[("TELEDIAG_WEB_APP", dist.to_str().unwrap())]);
    let admin = format!("admin:{ADMIN_PASSWORD}");
    let seen = journey(&server, "administration.mjs", &["--admin", &admin, "--site-name", telediag_sample_data::DEMO_INSTITUTION]);
    let step = |name: &str| seen["steps"][name].clone();

    assert_eq!(step("landedOn"), "/", "an administrator who reads nothing lands in administration");
    assert_eq!(step("registerStatus"), 201);
    let dashboard = step("dashboard");
    assert!(dashboard["liveMs"].as_u64().unwrap() <= 3000, "the dashboard followed the change feed: {dashboard}");
    let site = step("site");
    assert_eq!((site["single_signature"].as_bool(), site["assignment_mode"].as_str()), (Some(true), Some("auto")), "{site}");
    assert_eq!(site["ae_titles"], serde_json::json!(["CT_DONGSHAN", "DR_DONGSHAN"]));
    assert_eq!(site["networks"], serde_json::json!(["10.12.0.0/16"]));
    assert!(step("badSite").as_str().unwrap().contains("AE title must be 1 to 16 characters"), "{seen}");
    assert_eq!(step("credentials"), "CT · 东山县人民医院");
    assert_eq!(step("userState"), "已停用");
    assert_eq!(step("disabledLogin"), 401, "a disabled user cannot log in");
    let rows = step("auditRows");
    assert!(rows.as_array().unwrap().iter().any(|r| r[0] == "POST /api/sites" && r[2] == "201"), "{rows}");
    assert_eq!(step("chain")["intact"], "true", "{seen}");
    assert_eq!(step("englishTabs"), serde_json::json!(["Dashboard", "Hospitals", "Users", "Audit log"]));
    assert_eq!(seen["dialogs"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
}

/// The demo CT as it was a year earlier: the same slices (new instance
/// UIDs) in a study dated 2025-11-20, as the demo CT scanner sends it.
fn prior_of_the_demo_ct(dir: &Path) -> Vec<CorpusFile> {
    let plain = dir.join("plain");
    let prior = dir.join("prior");
    std::fs::create_dir_all(&prior).unwrap();
    for file in telediag_sample_data::write_demo_studies(&plain).unwrap() {
        let name = file.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.starts_with("ct_") {
            continue;
        }
        let copy = prior.join(&name);
        std::fs::copy(&file, &copy).unwrap();
        let status = Command::new("dcmodify")
            .args(["-nb", "-gin", "-m", "(0020,000D)=2.25.880000000000000000000000000000000001"])
            .args(["-m", "(0020,000E)=2.25.880000000000000000000000000000000002", "-m", "(0008,0020)=20251120"])
            .args(["-m", "(0008,0050)=CT20251120001"])
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success(), "dcmodify {name}");
    }
    part10_files(&prior)
}

/// The read request of the study matching `wanted`, once the centre has made it.
fn request_where(port: u16, token: &str, what: &str, wanted: impl Fn(&serde_json::Value) -> bool) -> i64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, body) = http(port, "GET", "/api/requests?limit=500", Some(token), None);
        let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if let Some(found) = list.as_array().and_then(|l| l.iter().find(|r| wanted(r))) {
            return found["id"].as_i64().unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "no request for {what}: {body}");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

/// Beyond one stack (tests/web_app/image_reading.mjs): the patient's prior
/// CT beside the current one, scrolled with it once linked; a series dragged
/// into 2×2; the ultrasound clip played at its frame rate, in colour; a
/// rectangle ROI on the CR in mm² "at detector"; a MONOCHROME1 radiograph
/// (pydicom-data RG1_UNCR, 7 MB) drawn as the centre renders it; the
/// shortcut panel.
#[test]
fn priors_link_cine_plays_and_projection_rois_are_at_the_detector() {
    if !require_tool("node") || !require_tool("storescu") || !require_tool("dcmodify") {
        return;
    }
    let Some(dist) = web_app_toolchain() else { return };
    let mut server = Server::new();
    server.start_demo(&[("TELEDIAG_WEB_APP", dist.to_str().unwrap()), ("TELEDIAG_STUDY_STABLE_SECS", "1")]);
    let port = server.http_port;
    let prior = prior_of_the_demo_ct(&server.dir.path().join("prior-ct"));
    let profile = server.dir.path().join("prior.cfg");
    storescu_profile(&prior, &profile);
    storescu(server.dicom_port, "DEMO_CT", &prior, &profile);
    let mono1 = pydicom_corpus().map(|root| {
        let file = root.join("pydicom-data/RG1_UNCR.dcm");
        let dir = server.dir.path().join("mono1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&file, dir.join("RG1_UNCR.dcm")).unwrap();
        let files = part10_files(&dir);
        let profile = server.dir.path().join("mono1.cfg");
        storescu_profile(&files, &profile);
        storescu(server.dicom_port, "DEMO_CR", &files, &profile);
    });

    let token = login(port, "demo_reviewer", &server.demo_password("demo_reviewer"));
    let is = |modality: &str, patient: &'static str| {
        let modality = modality.to_owned();
        move |r: &serde_json::Value| r["modality"] == modality.as_str() && r["patient_id"] == patient
    };
    let ct = request_where(port, &token, "the demo CT", |r| is("CT", "DEMO0001")(r) && r["study_date"] == "20261123");
    request_where(port, &token, "the prior CT", |r| is("CT", "DEMO0001")(r) && r["study_date"] == "20251120");
    let us = request_where(port, &token, "the demo US", is("US", "DEMO0003"));
    let cr = request_where(port, &token, "the demo CR", is("CR", "DEMO0002"));
    let mono1 = mono1.map(|()| request_where(port, &token, "RG1_UNCR", |r| r["patient_id"] == "9RG1"));

    let reader = format!("demo_radiologist:{}", server.demo_password("demo_radiologist"));
    let (ct, us, cr) = (ct.to_string(), us.to_string(), cr.to_string());
    let mono1_id = mono1.map(|id| id.to_string()).unwrap_or_default();
    let mut args = vec!["--reader", &reader, "--ct", &ct, "--us", &us, "--cr", &cr];
    if mono1.is_some() {
        args.extend(["--mono1", mono1_id.as_str()]);
    }
    let seen = journey(&server, "image_reading.mjs", &args);
    let step = |name: &str| seen["steps"][name].clone();

    // The prior, beside the current study, followed it while linked and not after.
    assert!(step("priorSummary").as_str().unwrap().contains("2025/11/20"), "{seen}");
    assert_eq!(step("viewports"), 2);
    assert!(step("priorDate").as_str().unwrap().starts_with("2025/11/20"), "{seen}");
    assert_eq!(step("linked"), serde_json::json!({"current": "5", "prior": "5"}));
    assert_eq!(step("unlinked"), serde_json::json!({"current": "8", "prior": "5"}));
    assert_eq!(step("grid"), serde_json::json!(["viewport-0", "viewport-1", "viewport-3"]), "the dragged series fills the fourth");
    assert!(step("helpRows").as_u64().unwrap() >= 18, "{seen}");
    // The clip: 15 fps from its Frame Time of 66.7 ms; frames advance while playing and not after.
    assert_eq!(step("clipFps"), "15");
    let cine = step("cine");
    assert_eq!(cine["frames"], "16");
    assert_ne!(cine["during"], cine["before"], "cine did not advance: {cine}");
    assert_eq!(cine["after"], cine["stopped"], "cine did not stop: {cine}");
    assert!(step("colourPixels").as_u64().unwrap() > 100, "the colour Doppler is not in colour: {seen}");
    // 200 × 200 image pixels of 0.5 mm at the detector: 10,000 mm², within a pixel's placement at each edge.
    let roi = step("roi");
    assert_eq!((roi["unit"].as_str(), roi["atDetector"].as_str()), (Some("mm"), Some("true")), "{roi}");
    let edge = 2.0 * 0.5 / roi["screenPixelsPerImagePixel"].as_f64().unwrap();
    let area = roi["area"].as_f64().unwrap();
    assert!((area - 10_000.0).abs() <= 2.0 * 100.0 * edge + 1.0, "{roi}");
    assert!(roi["text"].as_str().unwrap().contains("mm²") && roi["text"].as_str().unwrap().contains("探测器"), "{roi}");
    assert!(roi["sd"].as_f64().unwrap() > 0.0, "{roi}");
    if mono1.is_some() {
        let shown = step("mono1");
        assert!(shown["correlation"].as_f64().unwrap() > 0.9, "MONOCHROME1 drawn unlike the centre's rendering: {shown}");
    }
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
}
