//! What reports are made with, kept on disk: the CJK font, and the
//! centre's CA and timestamp authority (created at first start, their keys
//! readable by the owner only). `telediag-reports` takes them as bytes and
//! reads no files; this is where they are read and written.

use std::path::Path;

use telediag_reports::form::{FormError, ReportFont};
use telediag_reports::identity::IdentityError;
use telediag_reports::{CentreCa, TimestampAuthority};

const CA_KEY_FILE: &str = "ca-key.der";
const CA_CERT_FILE: &str = "ca-cert.der";
const TSA_KEY_FILE: &str = "tsa-key.der";
const TSA_CERT_FILE: &str = "tsa-cert.der";

/// The report font: `configured`, or the first CJK font installed.
pub fn load_font(configured: Option<&Path>) -> Result<ReportFont, FormError> {
    let path = ReportFont::locate(configured, Path::exists)?;
    let bytes = std::fs::read(&path).map_err(|e| FormError::Font { path: path.clone(), reason: e.to_string() })?;
    ReportFont::from_bytes(bytes, &path)
}

/// The centre's CA and TSA kept in `dir`, each created when absent.
pub fn load_or_create_authorities(dir: &Path, centre_name: &str) -> Result<(CentreCa, TimestampAuthority), IdentityError> {
    let ca = match read_pair(dir, CA_KEY_FILE, CA_CERT_FILE)? {
        Some((key, cert)) => CentreCa::from_der(&key, &cert)?,
        None => {
            let ca = CentreCa::create(centre_name)?;
            write_pair(dir, CA_KEY_FILE, &ca.key_pkcs8()?, CA_CERT_FILE, &ca.certificate_der())?;
            ca
        }
    };
    let tsa = match read_pair(dir, TSA_KEY_FILE, TSA_CERT_FILE)? {
        Some((key, cert)) => TimestampAuthority::from_der(&key, &cert, &ca)?,
        None => {
            let tsa = TimestampAuthority::create(&ca, centre_name)?;
            write_pair(dir, TSA_KEY_FILE, &tsa.key_pkcs8()?, TSA_CERT_FILE, &tsa.certificate_der())?;
            tsa
        }
    };
    Ok((ca, tsa))
}

/// A stored key (PKCS#8) and certificate (DER).
type KeyAndCertificate = (Vec<u8>, Vec<u8>);

fn read_pair(dir: &Path, key_file: &str, cert_file: &str) -> Result<Option<KeyAndCertificate>, IdentityError> {
    let key_path = dir.join(key_file);
    if !key_path.exists() {
        return Ok(None);
    }
    let read =
        |path: &Path| std::fs::read(path).map_err(|e| IdentityError::LoadCa { path: path.display().to_string(), reason: e.to_string() });
    Ok(Some((read(&key_path)?, read(&dir.join(cert_file))?)))
}

/// Writes a key (owner-readable only, created new: never over another) and
/// its certificate, both synced.
fn write_pair(dir: &Path, key_file: &str, key: &[u8], cert_file: &str, cert: &[u8]) -> Result<(), IdentityError> {
    use std::io::Write;
    let save_err = |source| IdentityError::SaveCa { path: dir.display().to_string(), source };
    std::fs::create_dir_all(dir).map_err(save_err)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(dir.join(key_file)).map_err(save_err)?;
    file.write_all(key).and_then(|()| file.sync_all()).map_err(save_err)?;
    std::fs::write(dir.join(cert_file), cert).map_err(save_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorities_are_created_once_and_their_keys_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, tsa) = load_or_create_authorities(dir.path(), "远程诊断中心").unwrap();
        let (again, tsa_again) = load_or_create_authorities(dir.path(), "ignored").unwrap();
        assert_eq!(ca.certificate_der(), again.certificate_der());
        assert_eq!(tsa.certificate_der(), tsa_again.certificate_der());
        #[cfg(unix)]
        for key in [CA_KEY_FILE, TSA_KEY_FILE] {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(dir.path().join(key)).unwrap().permissions().mode() & 0o777, 0o600, "{key}");
        }
    }
}
