//! Transport security with real clients: curl over HTTPS (HSTS, a Secure
//! session cookie) and DCMTK's `storescu +tls` on the DICOM TLS port with
//! client certificates pinned to sites. OpenSSL plays the hospital's PKI.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A self-signed certificate and key (PEM) for `cn`, valid for localhost.
fn certificate(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj"])
        .arg(format!("/CN={cn}"))
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

fn part10(dir: &Path, sop: &str, study: &str) -> PathBuf {
    ct_part10_file(&dir.join(format!("{sop}.dcm")), sop, study)
}

#[test]
fn https_and_dicom_tls_with_pinned_client_certificates() {
    if !require_tool("openssl") || !require_tool("curl") || !require_tool("storescu") {
        return;
    }
    let mut server = Server::new();
    server.add_site("城关镇卫生院", "CHENGGUAN", &[]);
    server.add_site("二号县医院", "ERYUAN", &[]);
    let pki = tempfile::tempdir().unwrap();
    let (server_cert, server_key) = certificate(pki.path(), "server", "localhost");
    let (device_cert, device_key) = certificate(pki.path(), "chengguan-ct", "城关镇卫生院 CT");
    let (stranger_cert, stranger_key) = certificate(pki.path(), "stranger", "somebody");
    let pinned = server.cli(&["site", "cert", "城关镇卫生院", device_cert.to_str().unwrap(), "--label", "CT room"]);
    assert!(pinned.status.success(), "{}", String::from_utf8_lossy(&pinned.stderr));
    let tls_port = free_port();
    server.start_with(&[
        ("TELEDIAG_HTTP_TLS_CERT", server_cert.to_str().unwrap()),
        ("TELEDIAG_HTTP_TLS_KEY", server_key.to_str().unwrap()),
        ("TELEDIAG_DICOM_TLS_PORT", &tls_port.to_string()),
        ("TELEDIAG_PUBLIC_URL", "https://telediag.example.cn"),
    ]);

    // HTTPS: the certificate verifies, HSTS is sent, the cookie is Secure.
    let url = |path: &str| format!("https://localhost:{}{path}", server.http_port);
    let curl = |args: &[&str]| {
        let out = Command::new("curl").args(["-s", "-i", "--cacert", server_cert.to_str().unwrap()]).args(args).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (ok, health) = curl(&[&url("/api/health")]);
    assert!(ok && health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.to_ascii_lowercase().contains("strict-transport-security: max-age=31536000"), "{health}");
    let body = format!(r#"{{"username":"admin","password":"{ADMIN_PASSWORD}"}}"#);
    let (_, login) = curl(&["-H", "content-type: application/json", "-d", &body, &url("/api/login")]);
    let cookie = login.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).unwrap_or_default();
    assert!(cookie.contains("HttpOnly") && cookie.contains("; Secure"), "{login}");
    let plain = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{}/api/health", server.http_port))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200", "plain HTTP is not served on the HTTPS port");

    // DICOM TLS: the pinned device stores; a certificate pinned to no site
    // fails the handshake; the pinned device calling as another site's AE
    // is refused.
    let files = tempfile::tempdir().unwrap();
    let store = |calling: &str, cert: &Path, key: &Path, file: &Path| {
        let out = Command::new("storescu")
            .args(["-v", "+tls"])
            .args([key, cert])
            .arg("+cf")
            .arg(&server_cert)
            .args(["-aet", calling, "-aec", AE, "localhost", &tls_port.to_string()])
            .arg(file)
            .output()
            .unwrap();
        (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    };
    let (ok, out) = store("CHENGGUAN", &device_cert, &device_key, &part10(files.path(), "1.2.3.900", "1.2.3.9"));
    assert!(ok && out.contains("Received Store Response (Success)"), "{out}");
    let (_, out) = store("CHENGGUAN", &stranger_cert, &stranger_key, &part10(files.path(), "1.2.3.901", "1.2.3.9"));
    assert!(!out.contains("Received Store Response"), "an unpinned certificate gets nothing stored: {out}");
    let (_, out) = store("ERYUAN", &device_cert, &device_key, &part10(files.path(), "1.2.3.902", "1.2.3.10"));
    assert!(!out.contains("Received Store Response (Success)"), "another site's AE over this certificate: {out}");
    // A site with pinned certificates sends over TLS only.
    let plain = Command::new("storescu")
        .args(["-aet", "CHENGGUAN", "-aec", AE, "127.0.0.1", &server.dicom_port.to_string()])
        .arg(part10(files.path(), "1.2.3.903", "1.2.3.9"))
        .output()
        .unwrap();
    assert!(!plain.status.success(), "the plain port refuses a TLS-only site");
    assert!(server.wait_for_log(&["this site sends over DICOM TLS only"]));
    assert!(server.wait_for_log(&["pinned to no site"]), "the stranger is logged");
    assert!(server.wait_for_log(&["TLS association refused", "but the TLS certificate is"]), "the AE mismatch is logged");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = server.database().await;
        assert_eq!(db.versions_of(&"1.2.3.900".parse().unwrap()).await.unwrap().len(), 1);
        assert!(db.versions_of(&"1.2.3.901".parse().unwrap()).await.unwrap().is_empty());
        assert!(db.versions_of(&"1.2.3.902".parse().unwrap()).await.unwrap().is_empty());
        assert!(db.versions_of(&"1.2.3.903".parse().unwrap()).await.unwrap().is_empty());
    });
    server.stop();
}
