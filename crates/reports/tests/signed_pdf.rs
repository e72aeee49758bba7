//! The signed report as a verifier sees it: poppler's `pdfsig` checks every
//! signature, and one flipped byte breaks them.

mod common;

use std::path::Path;
use std::process::Command;

use telediag_reports::form::{PrintedSigner, ReportForm, render, reviewer_stamp};
use telediag_reports::{CentreCa, SignatureRequest, Timestamp, sign_pdf};

fn tool(name: &str) -> bool {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().map(|o| o.status.success()).unwrap_or(false);
    if !found {
        assert!(std::env::var_os("CI").is_none(), "{name} is missing: .ci/run installs poppler-utils");
        eprintln!("skipping: {name} is not installed");
    }
    found
}

fn sample_form() -> ReportForm {
    ReportForm::specimen("http://localhost:8080/verify/0f1e2d3c4b5a69788796a5b4c3d2e1f0")
}

/// Dark pixels of page 1 (rendered at 72 dpi, so a pixel is a point) inside
/// `rect` (PDF user space, origin bottom-left).
fn ink_in(pdf: &Path, rect: [f32; 4]) -> usize {
    let root = pdf.with_extension("");
    let status =
        Command::new("pdftoppm").args(["-r", "72", "-gray", "-singlefile", "-f", "1", "-l", "1"]).arg(pdf).arg(&root).status().unwrap();
    assert!(status.success());
    let pgm = std::fs::read(root.with_extension("pgm")).unwrap();
    // "P5\n<w> <h>\n255\n" then one byte per pixel.
    let mut fields = pgm.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty());
    assert_eq!(fields.next(), Some(&b"P5"[..]));
    let number = |f: Option<&[u8]>| std::str::from_utf8(f.unwrap()).unwrap().parse::<usize>().unwrap();
    let (width, height) = (number(fields.next()), number(fields.next()));
    let pixels = &pgm[pgm.len() - width * height..];
    let [x0, y0, x1, y1] = rect.map(|v| v.round() as usize);
    let mut dark = 0;
    for y in (height - y1)..(height - y0) {
        for x in x0..x1 {
            if pixels[y * width + x] < 128 {
                dark += 1;
            }
        }
    }
    dark
}

fn pdfsig(path: &Path) -> String {
    let out = Command::new("pdfsig").arg(path).output().expect("pdfsig runs");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn two_doctors_sign_and_pdfsig_finds_both_valid_until_one_byte_changes() {
    let Some(font) = common::font() else { return };
    if !tool("pdfsig") {
        return;
    }
    // As the reporting doctor signs it: the reviewer's slot is empty.
    let form = ReportForm { reviewing_doctor: None, ..sample_form() };
    let pdf = render(&form, &font).unwrap();
    let ca = CentreCa::create("云南省远程影像诊断中心").unwrap();
    let reporter = ca.issue("陈医生", "user-2").unwrap();
    let reviewer = ca.issue("黄主任", "user-4").unwrap();
    let once = sign_pdf(
        &pdf,
        &SignatureRequest {
            identity: &reporter,
            field_name: "报告医师",
            signer_name: "陈医生",
            reason: "报告医师签名",
            location: "远程诊断中心",
            time: Timestamp::new(1_795_430_000_000, 480),
            stamp: None,
            timestamper: None,
        },
    )
    .unwrap();
    let stamp = reviewer_stamp(&font, &PrintedSigner { name: "黄主任".into(), signed_at: Timestamp::new(1_795_431_800_000, 480) });
    let twice = sign_pdf(
        &once,
        &SignatureRequest {
            identity: &reviewer,
            field_name: "审核医师",
            signer_name: "黄主任",
            reason: "审核医师签名",
            location: "远程诊断中心",
            time: Timestamp::new(1_795_431_800_000, 480),
            stamp: Some(&stamp),
            timestamper: None,
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, &twice).unwrap();
    if let Some(out) = std::env::var_os("TELEDIAG_SAMPLE_REPORT") {
        std::fs::write(out, &twice).unwrap();
    }
    let report = pdfsig(&path);
    eprintln!("{report}");
    assert_eq!(report.matches("Signature is Valid").count(), 2, "{report}");
    assert!(report.contains("陈医生") && report.contains("黄主任"), "{report}");
    assert!(report.contains("Total document signed"), "the reviewer's signature covers the whole file: {report}");
    assert!(report.contains("ETSI.CAdES.detached"), "{report}");

    // The reviewer's name and time appear in their slot only with their signature.
    if tool("pdftoppm") {
        let once_path = dir.path().join("once.pdf");
        std::fs::write(&once_path, &once).unwrap();
        let (before, after) = (ink_in(&once_path, stamp.rect), ink_in(&path, stamp.rect));
        assert!(after > before + 200, "dark pixels in the reviewer's slot: {before} before (its label), {after} after signing");
        if let Some(out) = std::env::var_os("TELEDIAG_SAMPLE_REPORT_PNG") {
            let status = Command::new("pdftoppm").args(["-r", "110", "-png", "-singlefile"]).arg(&path).arg(out).status().unwrap();
            assert!(status.success());
        }
    }

    // One byte inside the first revision's page content, outside any /Contents.
    let mut tampered = twice.clone();
    let at = pdf.len() / 2;
    tampered[at] ^= 0x01;
    let bad = dir.path().join("tampered.pdf");
    std::fs::write(&bad, &tampered).unwrap();
    let report = pdfsig(&bad);
    assert_eq!(report.matches("Signature is Valid").count(), 0, "{report}");
    assert!(report.contains("Digest Mismatch") || report.contains("Signature is Invalid"), "{report}");
}

#[test]
fn the_printed_qr_code_reads_back_as_the_verification_url() {
    let Some(font) = common::font() else { return };
    if !tool("pdftoppm") || !tool("zbarimg") {
        return;
    }
    let form = sample_form();
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("report.pdf");
    std::fs::write(&pdf, render(&form, &font).unwrap()).unwrap();
    let status = Command::new("pdftoppm")
        .args(["-r", "150", "-png", "-f", "1", "-l", "1", "-singlefile"])
        .arg(&pdf)
        .arg(dir.path().join("page"))
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new("zbarimg").args(["-q", "--raw"]).arg(dir.path().join("page.png")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), form.verify_url);
}

#[test]
fn pdffonts_finds_one_embedded_subset_cjk_font() {
    let Some(font) = common::font() else { return };
    if !tool("pdffonts") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("report.pdf");
    std::fs::write(&pdf, render(&sample_form(), &font).unwrap()).unwrap();
    let out = Command::new("pdffonts").arg(&pdf).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let fonts: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(fonts.len(), 1, "{text}");
    // name+SUBSET, embedded yes, subset yes, unicode map yes
    assert!(fonts[0].contains('+') && fonts[0].contains("yes yes yes"), "{text}");
}

#[test]
fn with_the_centre_ca_trusted_pdfsig_validates_both_certificate_chains() {
    let Some(font) = common::font() else { return };
    if !tool("pdfsig") || !tool("certutil") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = CentreCa::create("云南省远程影像诊断中心").unwrap();
    let reporter = ca.issue("陈医生", "user-2").unwrap();
    let reviewer = ca.issue("黄主任", "user-4").unwrap();
    let time = Timestamp::new(1_795_430_000_000, 480);
    let pdf = render(&sample_form(), &font).unwrap();
    let once = sign_pdf(
        &pdf,
        &SignatureRequest {
            identity: &reporter,
            field_name: "报告医师",
            signer_name: "陈医生",
            reason: "报告医师签名",
            location: "中心",
            time,
            stamp: None,
            timestamper: None,
        },
    )
    .unwrap();
    let twice = sign_pdf(
        &once,
        &SignatureRequest {
            identity: &reviewer,
            field_name: "审核医师",
            signer_name: "黄主任",
            reason: "审核医师签名",
            location: "中心",
            time,
            stamp: None,
            timestamper: None,
        },
    )
    .unwrap();
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, &twice).unwrap();
    // A relying party's NSS store that trusts the centre's CA (as a hospital's PCs would).
    let store = dir.path().join("nss");
    std::fs::create_dir(&store).unwrap();
    let db = format!("sql:{}", store.display());
    assert!(Command::new("certutil").args(["-N", "-d", &db, "--empty-password"]).status().unwrap().success());
    std::fs::write(dir.path().join("ca.der"), ca.certificate_der()).unwrap();
    let added = Command::new("certutil")
        .args(["-A", "-d", &db, "-n", "centre-ca", "-t", "C,C,C", "-i"])
        .arg(dir.path().join("ca.der"))
        .status()
        .unwrap();
    assert!(added.success());
    let out = Command::new("pdfsig").args(["-nssdir", &db]).arg(&path).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(report.matches("Signature is Valid").count(), 2, "{report}");
    assert_eq!(report.matches("Certificate is Trusted").count(), 2, "the doctors' certificates chain to the CA: {report}");
}

#[test]
fn long_findings_flow_onto_further_pages_and_the_signatures_close_the_last() {
    let Some(font) = common::font() else { return };
    if !tool("pdftotext") || !tool("pdfinfo") {
        return;
    }
    let mut form = sample_form();
    form.findings = (1..=60).map(|n| format!("{n}. 第{n}层面见多发小结节影，最大者约 {n} mm，边界清楚。")).collect::<Vec<_>>().join("\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.pdf");
    std::fs::write(&path, render(&form, &font).unwrap()).unwrap();
    if let Some(keep) = std::env::var_os("TELEDIAG_SAMPLE_LONG_REPORT") {
        std::fs::copy(&path, keep).unwrap();
    }
    let info = String::from_utf8_lossy(&Command::new("pdfinfo").arg(&path).output().unwrap().stdout).into_owned();
    let pages: usize = info.lines().find_map(|l| l.strip_prefix("Pages:")).unwrap().trim().parse().unwrap();
    assert!(pages >= 2, "{info}");
    let page_text = |n: usize| {
        let out = Command::new("pdftotext").args(["-f", &n.to_string(), "-l", &n.to_string()]).arg(&path).arg("-").output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for n in 1..pages {
        let text = page_text(n);
        assert!(text.contains("续下页") && !text.contains("报告医师"), "page {n} continues: {text}");
        assert!(text.contains("张三丰"), "every page names the patient: {text}");
    }
    let last = page_text(pages);
    assert!(
        last.contains("报告医师") && last.contains("检查结论") && last.contains("主动脉硬化"),
        "the conclusion stays with the signatures: {last}"
    );
    let all: String = (1..=pages).map(page_text).collect();
    for n in 1..=60 {
        assert!(all.contains(&format!("{n}. 第{n}层面")), "line {n} is missing");
    }
}

/// Long values in the patient block are set smaller and wrapped, never cut
/// off; the clinical history and the exam's date and time are labelled.
#[test]
fn long_patient_values_are_printed_whole_with_the_clinical_history() {
    let Some(font) = common::font() else { return };
    if !tool("pdftotext") || !tool("pdftoppm") {
        return;
    }
    let mut form = sample_form();
    form.patient_name = "Zhangsanfeng Xiaodongbeizhou Maximilian".into();
    form.exam_name = "胸部、上腹部及盆腔 CT 平扫加三期增强扫描（含冠状位及矢状位多平面重建）".into();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long-names.pdf");
    std::fs::write(&path, render(&form, &font).unwrap()).unwrap();
    if let Some(keep) = std::env::var_os("TELEDIAG_SAMPLE_LONG_NAMES") {
        std::fs::copy(&path, keep).unwrap();
    }
    let out = Command::new("pdftotext").args(["-raw"]).arg(&path).arg("-").output().unwrap();
    let text: String = String::from_utf8_lossy(&out.stdout).chars().filter(|c| !c.is_whitespace()).collect();
    for whole in [&form.patient_name, &form.exam_name] {
        let wanted: String = whole.chars().filter(|c| !c.is_whitespace()).collect();
        assert!(text.contains(&wanted), "{wanted} is printed whole: {text}");
    }
    assert!(!text.contains('…'), "nothing is cut off: {text}");
    assert!(text.contains("临床资料：咳嗽、咳痰两周"), "{text}");
    assert!(text.contains("检查日期：2026-11-23") && text.contains("检查时间：09:41"), "{text}");
}
