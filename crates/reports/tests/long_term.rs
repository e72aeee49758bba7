//! PAdES B-T and B-LT, checked by verifiers that are not ours: OpenSSL's
//! `ts -verify` for the timestamp token and `verify -crl_check` for the
//! CRL, poppler's `pdfsig`, and pyHanko validating offline from the data
//! embedded in the document.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use der::Encode;
use telediag_reports::form::{ReportForm, render};
use telediag_reports::{CentreCa, SignatureRequest, Timestamp, TimestampAuthority, add_validation_data, sign_pdf};

fn tool(name: &str) -> bool {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().map(|o| o.status.success()).unwrap_or(false);
    if !found {
        assert!(std::env::var_os("CI").is_none(), "CI installs {name}");
        eprintln!("skipping: {name} is not installed");
    }
    found
}

fn pem(path: &Path, der: &[u8]) {
    use std::fmt::Write;
    let b64 = base64_encode(der);
    let mut text = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        let _ = writeln!(text, "{}", std::str::from_utf8(line).unwrap());
    }
    text.push_str("-----END CERTIFICATE-----\n");
    std::fs::write(path, text).unwrap();
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char } else { '=' });
        }
    }
    out
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The signature timestamp token in the CMS of the PDF's first signature.
fn first_timestamp_token(pdf: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let doc = lopdf::Document::load_mem(pdf).unwrap();
    let contents = doc
        .objects
        .values()
        .filter_map(|o| o.as_dict().ok())
        .find(|d| d.get(b"Type").and_then(|t| t.as_name()).ok() == Some(b"Sig".as_slice()))
        .and_then(|d| d.get(b"Contents").ok())
        .and_then(|c| c.as_str().ok())
        .unwrap()
        .to_vec();
    // The /Contents string is zero-padded after the DER value.
    let mut reader = der::SliceReader::new(&contents).unwrap();
    let info = <cms::content_info::ContentInfo as der::Decode>::decode(&mut reader).unwrap();
    let signed: cms::signed_data::SignedData = info.content.decode_as().unwrap();
    let signer = signed.signer_infos.0.as_slice()[0].clone();
    let attribute = signer.unsigned_attrs.expect("unsigned attributes").into_vec().into_iter().next().expect("the timestamp attribute");
    assert_eq!(attribute.oid.to_string(), "1.2.840.113549.1.9.16.2.14");
    (attribute.values.as_slice()[0].to_der().unwrap(), signer.signature.as_bytes().to_vec())
}

#[test]
fn a_timestamped_signature_with_embedded_crl_validates_offline() {
    let Some(font) = common::font() else { return };
    if !tool("openssl") || !tool("pdfsig") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = CentreCa::create("远程诊断中心").unwrap();
    let tsa = TimestampAuthority::create(&ca, "远程诊断中心").unwrap();
    let doctor = ca.issue("陈医生", "user-2").unwrap();
    let revoked = ca.issue("离职医生", "user-9").unwrap();
    let now = Timestamp::new(1_795_430_000_000, 480);
    let pdf = render(&ReportForm::specimen("http://localhost:8080/verify/0f1e2d3c4b5a69788796a5b4c3d2e1f0"), &font).unwrap();
    let signed = sign_pdf(
        &pdf,
        &SignatureRequest {
            identity: &doctor,
            field_name: "报告医师",
            signer_name: "陈医生",
            reason: "报告医师签名",
            location: "远程诊断中心",
            time: now,
            stamp: None,
            timestamper: Some(&tsa),
        },
    )
    .unwrap();
    // The CRL lists the revoked doctor, not this one.
    let revoked_serial = revoked.certificate.tbs_certificate.serial_number.as_bytes().to_vec();
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let crl = ca.crl(&[(revoked_serial, now_ms - 60_000)], now_ms, Duration::from_secs(7 * 86_400), 1).unwrap();
    let doctor_der = doctor.certificate.to_der().unwrap();
    let with_ltv =
        add_validation_data(&signed, &[ca.certificate_der(), doctor_der.clone(), tsa.certificate_der()], std::slice::from_ref(&crl))
            .unwrap();
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, &with_ltv).unwrap();
    if let Some(out) = std::env::var_os("TELEDIAG_SAMPLE_LTV_REPORT") {
        std::fs::write(out, &with_ltv).unwrap();
    }

    // poppler: the signature is intact after the validation-data revision.
    let report = run(Command::new("pdfsig").arg(&path));
    assert_eq!(report.matches("Signature is Valid").count(), 1, "{report}");

    // OpenSSL: the token is a valid RFC 3161 token over this signature's value.
    let (token, signature_value) = first_timestamp_token(&with_ltv);
    std::fs::write(dir.path().join("token.der"), &token).unwrap();
    pem(&dir.path().join("ca.pem"), &ca.certificate_der());
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&signature_value));
    let verified = run(Command::new("openssl")
        .args(["ts", "-verify", "-token_in", "-digest", &digest, "-in"])
        .arg(dir.path().join("token.der"))
        .arg("-CAfile")
        .arg(dir.path().join("ca.pem")));
    assert!(verified.contains("Verification: OK"), "{verified}");
    let wrong = run(Command::new("openssl")
        .args(["ts", "-verify", "-token_in", "-digest", &"00".repeat(32), "-in"])
        .arg(dir.path().join("token.der"))
        .arg("-CAfile")
        .arg(dir.path().join("ca.pem")));
    assert!(!wrong.contains("Verification: OK"), "a token vouches for one signature only: {wrong}");

    // OpenSSL: the CRL revokes the one and not the other.
    std::fs::write(dir.path().join("crl.der"), &crl).unwrap();
    let listed = run(Command::new("openssl").args(["crl", "-inform", "DER", "-noout", "-text", "-in"]).arg(dir.path().join("crl.der")));
    let serial_hex = hex::encode_upper(revoked.certificate.tbs_certificate.serial_number.as_bytes());
    assert!(listed.contains(&serial_hex) && listed.contains("X509v3 CRL Number"), "{listed}");
    run(Command::new("openssl")
        .args(["crl", "-inform", "DER", "-out"])
        .arg(dir.path().join("crl.pem"))
        .arg("-in")
        .arg(dir.path().join("crl.der")));
    for (who, identity, expect) in [("doctor", &doctor, "OK"), ("revoked", &revoked, "certificate revoked")] {
        let cert = dir.path().join(format!("{who}.pem"));
        pem(&cert, &identity.certificate.to_der().unwrap());
        let out = run(Command::new("openssl")
            .args(["verify", "-crl_check", "-CAfile"])
            .arg(dir.path().join("ca.pem"))
            .arg("-CRLfile")
            .arg(dir.path().join("crl.pem"))
            .arg(&cert));
        assert!(out.contains(expect), "{who}: {out}");
    }

    // pyHanko, offline, trusting only the CA: intact, trusted, timestamped,
    // and long-term valid from the embedded certificates and CRL.
    let has_pyhanko = Command::new("python3").args(["-c", "import pyhanko"]).status().map(|s| s.success()).unwrap_or(false);
    if !has_pyhanko {
        assert!(std::env::var_os("CI").is_none(), "CI installs pyHanko");
        eprintln!("skipping pyHanko: not installed");
        return;
    }
    std::fs::write(dir.path().join("ca.der"), ca.certificate_der()).unwrap();
    let validate = |pdf: &Path| -> serde_json::Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pades_validate.py");
        let out = Command::new("python3").arg(script).arg(pdf).arg(dir.path().join("ca.der")).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_str(text.lines().next().unwrap()).unwrap()
    };
    // Without the validation data (B-T alone) the revocation status is unknown.
    let bare = dir.path().join("timestamped-only.pdf");
    std::fs::write(&bare, &signed).unwrap();
    let seen = validate(&bare);
    assert_ne!(seen["ltv"]["valid"], true, "no CRL, no long-term validation: {seen}");
    let seen = validate(&path);
    assert_eq!(
        (seen["intact"].as_bool(), seen["valid"].as_bool(), seen["trusted"].as_bool()),
        (Some(true), Some(true), Some(true)),
        "{seen}"
    );
    assert_eq!(seen["timestamp"]["valid"], true, "{seen}");
    assert_eq!(seen["timestamp"]["trusted"], true, "{seen}");
    assert_eq!(seen["ltv"]["valid"], true, "long-term validation from the embedded data: {seen}");
}
