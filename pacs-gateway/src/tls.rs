//! DICOM TLS (PS3.15 Annex B.1, secure transport connection profiles) on a
//! port of its own, with client certificates pinned to sites.
//!
//! A county hospital's devices present a client certificate, from the
//! hospital's own PKI or self-signed; the administrator pins it to the site
//! (`telediag site cert`, by the SHA-256 of its DER encoding). The TLS
//! handshake refuses a certificate pinned to no site, so an unknown device
//! never reaches association negotiation; once associated, the calling AE
//! title must belong to the certificate's site (`SiteDirectory::
//! authorize_with_certificate`), so one hospital's certificate cannot send
//! as another hospital's AE. TLS 1.2 and 1.3 only, rustls's safe defaults.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::DigitallySignedStruct;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};
use telediag_archive::SiteDirectory;

/// Why the DICOM TLS port cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain {path}: {reason}")]
    Certificate { path: String, reason: String },
    #[error("cannot read the private key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The lower-case hex SHA-256 of a certificate's DER encoding: how a
/// certificate is pinned.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The first certificate of a PEM file (a device's client certificate).
pub fn read_pem_certificate(path: &Path) -> Result<Vec<u8>, TlsError> {
    let failed = |reason: String| TlsError::Certificate { path: path.display().to_string(), reason };
    let first = CertificateDer::pem_file_iter(path).map_err(|e| failed(e.to_string()))?.next();
    match first {
        Some(Ok(der)) => Ok(der.to_vec()),
        Some(Err(e)) => Err(failed(e.to_string())),
        None => Err(failed("no certificate in the file".into())),
    }
}

/// The server side of DICOM TLS: our certificate, and the pinned clients.
#[derive(Clone)]
pub struct DicomTls {
    pub(crate) server: Arc<rustls::ServerConfig>,
    pins: Arc<PinnedClients>,
}

impl std::fmt::Debug for DicomTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DicomTls").finish_non_exhaustive()
    }
}

/// A server's certificate chain and private key from PEM files: what the
/// DICOM TLS port and the HTTPS service (the binary) both serve with.
pub fn read_pem_identity(chain: &Path, key: &Path) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let certs = CertificateDer::pem_file_iter(chain)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificate { path: chain.display().to_string(), reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate { path: chain.display().to_string(), reason: "no certificate in the file".into() });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key { path: key.display().to_string(), reason: e.to_string() })?;
    Ok((certs, key))
}

impl DicomTls {
    /// The server certificate chain and key (PEM files).
    pub fn from_pem_files(chain: &Path, key: &Path) -> Result<DicomTls, TlsError> {
        let (certs, key) = read_pem_identity(chain, key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let pins = Arc::new(PinnedClients { provider: provider.clone(), pins: RwLock::default() });
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(pins.clone())
            .with_single_cert(certs, key)?;
        Ok(DicomTls { server: Arc::new(server), pins })
    }

    /// Takes the pinned certificates of a fresh site directory.
    pub(crate) fn refresh(&self, directory: &SiteDirectory) {
        *self.pins.pins.write().expect("pins lock") = directory.pinned_certificates().map(str::to_owned).collect();
    }
}

/// Requires a client certificate, checks that its holder signed the
/// handshake, and accepts it only when it is pinned to a site.
#[derive(Debug)]
struct PinnedClients {
    provider: Arc<CryptoProvider>,
    pins: RwLock<HashSet<String>>,
}

impl ClientCertVerifier for PinnedClients {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let print = fingerprint(end_entity);
        if self.pins.read().expect("pins lock").contains(&print) {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!("client certificate {print} is pinned to no site (telediag site cert)")))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
