//! Times the report form and its signatures on one sample report — PAdES
//! B-B as before, and B-LT (an RFC 3161 timestamp from the centre's TSA,
//! then the certificates and CRL in the DSS) as every report is now signed
//! — and writes the unsigned PDF, the doctor's PKCS#12, the CA and TSA
//! certificates, the TSA's key and the CRL, for a peer to sign the same
//! bytes the same way (`bench/reports/run.sh`).
//!
//! Usage: report_bench OUT_DIR [ROUNDS]

use std::time::Instant;

use der::Encode;
use telediag_reports::form::{ReportFont, ReportForm, render};
use telediag_reports::{CentreCa, SignatureRequest, Timestamp, TimestampAuthority, add_validation_data, sign_pdf};

fn median_ms(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(args.next().expect("usage: report_bench OUT_DIR [ROUNDS]"));
    let rounds: usize = args.next().map_or(50, |r| r.parse().expect("ROUNDS is a number"));
    std::fs::create_dir_all(&out).unwrap();
    let started = Instant::now();
    let path = ReportFont::locate(None, std::path::Path::exists).expect("a CJK font");
    let font = ReportFont::from_bytes(std::fs::read(&path).expect("the font reads"), &path).expect("a CJK font");
    let font_ms = started.elapsed().as_secs_f64() * 1000.0;
    let form = ReportForm::specimen("https://telediag.example.cn/verify/0f1e2d3c4b5a69788796a5b4c3d2e1f0");
    let ca = CentreCa::create("云南省远程影像诊断中心").unwrap();
    let reporter = ca.issue("陈医生", "user-2").unwrap();
    let reviewer = ca.issue("黄主任", "user-4").unwrap();
    let time = Timestamp::new(1_795_431_800_000, 480);
    let (mut render_ms, mut sign_ms, mut both_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut pdf = Vec::new();
    let mut signed = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        pdf = render(&form, &font).unwrap();
        render_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let once = sign_pdf(
            &pdf,
            &SignatureRequest {
                identity: &reporter,
                field_name: "报告医师",
                signer_name: "陈医生",
                reason: "签名",
                location: "中心",
                time,
                stamp: None,
                timestamper: None,
            },
        )
        .unwrap();
        sign_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        signed = sign_pdf(
            &once,
            &SignatureRequest {
                identity: &reviewer,
                field_name: "审核医师",
                signer_name: "黄主任",
                reason: "签名",
                location: "中心",
                time,
                stamp: None,
                timestamper: None,
            },
        )
        .unwrap();
        both_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // B-LT: timestamped, then the validation data appended.
    let tsa = TimestampAuthority::create(&ca, "云南省远程影像诊断中心").unwrap();
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let mut lt_ms = Vec::new();
    let mut crl_ms = Vec::new();
    let mut long_term = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let crl = ca.crl(&[], now_ms, std::time::Duration::from_secs(7 * 86_400), 1).unwrap();
        crl_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let stamped = sign_pdf(
            &pdf,
            &SignatureRequest {
                identity: &reporter,
                field_name: "报告医师",
                signer_name: "陈医生",
                reason: "签名",
                location: "中心",
                time,
                stamp: None,
                timestamper: Some(&tsa),
            },
        )
        .unwrap();
        let certificates = [reporter.certificate.to_der().unwrap(), ca.certificate_der(), tsa.certificate_der()];
        long_term = add_validation_data(&stamped, &certificates, &[crl]).unwrap();
        lt_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // Opening the doctor's key with their PIN (Argon2id, then AES-GCM), paid
    // once per signature unless the doctor unlocked signing for the session.
    let cert_der = reporter.certificate.to_der().unwrap();
    let sealed = telediag_reports::sealed::seal(&reporter.key, "802417", &cert_der).unwrap();
    let mut open_ms = Vec::new();
    for _ in 0..rounds.min(20) {
        let t = Instant::now();
        telediag_reports::sealed::open(&sealed, "802417", &cert_der).unwrap();
        open_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    std::fs::write(out.join("telediag-lt.pdf"), &long_term).unwrap();
    std::fs::write(out.join("ca-cert.der"), ca.certificate_der()).unwrap();
    std::fs::write(out.join("tsa-cert.der"), tsa.certificate_der()).unwrap();
    std::fs::write(out.join("tsa-key.der"), tsa.key_pkcs8().unwrap().as_slice()).unwrap();
    std::fs::write(out.join("crl.der"), ca.crl(&[], now_ms, std::time::Duration::from_secs(7 * 86_400), 1).unwrap()).unwrap();
    std::fs::write(out.join("unsigned.pdf"), &pdf).unwrap();
    std::fs::write(out.join("telediag-signed.pdf"), &signed).unwrap();
    std::fs::write(out.join("reporter.p12"), reporter.to_pkcs12("bench-pass").unwrap()).unwrap();
    println!("font load (once per process): {font_ms:.1} ms");
    println!("render form (PDF/A, subset CJK font, QR): median {:.2} ms over {rounds}", median_ms(render_ms));
    println!("sign once (PAdES, P-256, incremental):    median {:.2} ms", median_ms(sign_ms));
    println!("sign twice (reporter + reviewer):         median {:.2} ms", median_ms(both_ms));
    println!("CRL (sign, no entries):                   median {:.3} ms", median_ms(crl_ms));
    println!("sign once B-LT (+ TSA token, + DSS):      median {:.2} ms", median_ms(lt_ms));
    println!("open the sealed key with the PIN:         median {:.1} ms", median_ms(open_ms));
    println!("sizes: unsigned {} bytes, signed twice {} bytes", pdf.len(), signed.len());
}
