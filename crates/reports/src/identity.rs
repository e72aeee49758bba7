//! Who signs: the centre's certificate authority and each doctor's signing
//! identity (a private key and the certificate that names its holder).
//!
//! At first start the centre creates its own CA (ECDSA P-256, ten years) and
//! issues every doctor a certificate (three years) on first signature. A
//! doctor who holds a certificate from an external CA brings it as PKCS#12;
//! RSA (≥ 2048 bits) and P-256 keys are accepted.

use std::str::FromStr;
use std::time::Duration;

use der::{Decode, Encode};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use spki::EncodePublicKey;
use x509_cert::Certificate;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

/// Errors of keys and certificates.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read the centre CA in {path}: {reason}")]
    LoadCa { path: String, reason: String },
    #[error("cannot write the centre CA to {path}: {source}")]
    SaveCa { path: String, source: std::io::Error },
    #[error("cannot issue a certificate: {0}")]
    Issue(String),
    #[error("PKCS#12 file refused: {0}")]
    Pkcs12(String),
    #[error("private key refused: expected a P-256 or RSA (≥ 2048 bit) PKCS#8 key, found {0}")]
    Key(String),
    #[error("certificate refused: {0}")]
    Certificate(String),
}

/// A private key that can sign CMS.
#[derive(Clone)]
pub enum SigningKey {
    P256(p256::ecdsa::SigningKey),
    /// Boxed: an RSA key is several times the size of a P-256 one.
    Rsa(Box<rsa::pkcs1v15::SigningKey<sha2::Sha256>>),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SigningKey::P256(_) => "SigningKey::P256(..)",
            SigningKey::Rsa(_) => "SigningKey::Rsa(..)",
        })
    }
}

impl SigningKey {
    /// Reads a PKCS#8 DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey, IdentityError> {
        if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_der(der) {
            return Ok(SigningKey::P256(key));
        }
        use rsa::traits::PublicKeyParts;
        match rsa::RsaPrivateKey::from_pkcs8_der(der) {
            Ok(key) if key.size() * 8 >= 2048 => Ok(SigningKey::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(key)))),
            Ok(key) => Err(IdentityError::Key(format!("an RSA key of {} bits", key.size() * 8))),
            Err(e) => Err(IdentityError::Key(format!("neither ({e})"))),
        }
    }

    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, IdentityError> {
        let doc = match self {
            SigningKey::P256(key) => key.to_pkcs8_der(),
            SigningKey::Rsa(key) => AsRef::<rsa::RsaPrivateKey>::as_ref(key.as_ref()).to_pkcs8_der(),
        };
        doc.map(|d| d.as_bytes().to_vec()).map_err(|e| IdentityError::Key(e.to_string()))
    }

    /// The DER SubjectPublicKeyInfo of the key's public half.
    pub fn public_key_der(&self) -> Result<Vec<u8>, IdentityError> {
        let doc = match self {
            SigningKey::P256(key) => key.verifying_key().to_public_key_der(),
            SigningKey::Rsa(key) => AsRef::<rsa::RsaPrivateKey>::as_ref(key.as_ref()).to_public_key().to_public_key_der(),
        };
        doc.map(|d| d.as_bytes().to_vec()).map_err(|e| IdentityError::Key(e.to_string()))
    }
}

/// A signing identity as stored: DER throughout.
#[derive(Clone)]
pub struct IdentityDer {
    /// PKCS#8 private key.
    pub key: Vec<u8>,
    pub certificate: Vec<u8>,
    /// The issuers' certificates, concatenated.
    pub chain: Vec<u8>,
}

/// A key and its certificate chain (the holder's certificate first).
#[derive(Debug, Clone)]
pub struct SigningIdentity {
    pub key: SigningKey,
    pub certificate: Certificate,
    /// Issuers above `certificate`, nearest first (may be empty).
    pub chain: Vec<Certificate>,
}

impl SigningIdentity {
    /// Rebuilds an identity from stored DER: PKCS#8 key, certificate, and the
    /// chain as concatenated DER certificates.
    pub fn from_der(key: &[u8], certificate: &[u8], chain: &[u8]) -> Result<SigningIdentity, IdentityError> {
        SigningIdentity::from_parts(SigningKey::from_pkcs8_der(key)?, certificate, chain)
    }

    /// An identity from a key already opened (a sealed key, see
    /// [`crate::sealed`]) and its stored certificate and chain DER.
    pub fn from_parts(key: SigningKey, certificate: &[u8], chain: &[u8]) -> Result<SigningIdentity, IdentityError> {
        let certificate = Certificate::from_der(certificate).map_err(|e| IdentityError::Certificate(e.to_string()))?;
        let mut issuers = Vec::new();
        if !chain.is_empty() {
            use der::Reader;
            let cert_err = |e: der::Error| IdentityError::Certificate(e.to_string());
            let mut reader = der::SliceReader::new(chain).map_err(cert_err)?;
            while !reader.is_finished() {
                issuers.push(<Certificate as der::Decode>::decode(&mut reader).map_err(cert_err)?);
            }
        }
        let identity = SigningIdentity { key, certificate, chain: issuers };
        identity.check_key_matches()?;
        Ok(identity)
    }

    /// The DER forms, for storage.
    pub fn to_der(&self) -> Result<IdentityDer, IdentityError> {
        let certificate = self.certificate.to_der().map_err(|e| IdentityError::Certificate(e.to_string()))?;
        let mut chain = Vec::new();
        for c in &self.chain {
            chain.extend(c.to_der().map_err(|e| IdentityError::Certificate(e.to_string()))?);
        }
        Ok(IdentityDer { key: self.key.to_pkcs8_der()?, certificate, chain })
    }

    /// The certificate's subject, as RFC 4514 text.
    pub fn subject(&self) -> String {
        self.certificate.tbs_certificate.subject.to_string()
    }

    /// The subject of a stored certificate (DER), as RFC 4514 text.
    pub fn subject_of(certificate_der: &[u8]) -> Option<String> {
        Certificate::from_der(certificate_der).ok().map(|c| c.tbs_certificate.subject.to_string())
    }

    /// The holder's certificate's SHA-256 (hex), a stable fingerprint.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(self.certificate.to_der().unwrap_or_default()))
    }

    fn check_key_matches(&self) -> Result<(), IdentityError> {
        let in_cert =
            self.certificate.tbs_certificate.subject_public_key_info.to_der().map_err(|e| IdentityError::Certificate(e.to_string()))?;
        if in_cert != self.key.public_key_der()? {
            return Err(IdentityError::Certificate("the private key does not belong to the certificate".into()));
        }
        Ok(())
    }

    /// Reads a PKCS#12 (.p12 / .pfx) file holding one private key and its chain.
    pub fn from_pkcs12(data: &[u8], password: &str) -> Result<SigningIdentity, IdentityError> {
        let store = p12_keystore::KeyStore::from_pkcs12(data, password).map_err(|e| IdentityError::Pkcs12(e.to_string()))?;
        let (_, entry) = store
            .private_key_chain()
            .ok_or_else(|| IdentityError::Pkcs12("expected a private key with its certificate, found none".into()))?;
        let key = SigningKey::from_pkcs8_der(entry.key())?;
        let mut certs =
            entry.chain().iter().map(|c| Certificate::from_der(c.as_der()).map_err(|e| IdentityError::Certificate(e.to_string())));
        let certificate = certs.next().ok_or_else(|| IdentityError::Pkcs12("the key has no certificate".into()))??;
        let chain = certs.collect::<Result<Vec<_>, _>>()?;
        let identity = SigningIdentity { key, certificate, chain };
        identity.check_key_matches()?;
        Ok(identity)
    }

    /// Writes the identity as PKCS#12 (for a doctor taking their key away,
    /// and for tests of the import).
    pub fn to_pkcs12(&self, password: &str) -> Result<Vec<u8>, IdentityError> {
        let IdentityDer { key, certificate: cert, .. } = self.to_der()?;
        let mut chain = vec![p12_keystore::Certificate::from_der(&cert).map_err(|e| IdentityError::Pkcs12(e.to_string()))?];
        for c in &self.chain {
            let der = c.to_der().map_err(|e| IdentityError::Certificate(e.to_string()))?;
            chain.push(p12_keystore::Certificate::from_der(&der).map_err(|e| IdentityError::Pkcs12(e.to_string()))?);
        }
        let mut store = p12_keystore::KeyStore::new();
        let local_key_id: [u8; 20] = rand_bytes();
        store.add_entry(
            "telediag",
            p12_keystore::KeyStoreEntry::PrivateKeyChain(p12_keystore::PrivateKeyChain::new(key, local_key_id, chain)),
        );
        store.writer(password).write().map_err(|e| IdentityError::Pkcs12(e.to_string()))
    }
}

pub(crate) fn rand_bytes<const N: usize>() -> [u8; N] {
    use p256::elliptic_curve::rand_core::{OsRng, RngCore};
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A positive 16-byte serial number, as RFC 5280 asks (≤ 20 octets, unique).
pub(crate) fn new_serial() -> Result<SerialNumber, IdentityError> {
    let mut bytes: [u8; 16] = rand_bytes();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::new(&bytes).map_err(|e| IdentityError::Issue(e.to_string()))
}

/// Quotes a value for an RFC 4514 distinguished name.
pub(crate) fn dn_value(value: &str) -> String {
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') || (i == 0 && matches!(c, '#' | ' '));
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out.trim_end().to_owned()
}

/// The centre's certificate authority.
#[derive(Debug, Clone)]
pub struct CentreCa {
    key: p256::ecdsa::SigningKey,
    certificate: Certificate,
}

impl CentreCa {
    /// The CA from its stored key (PKCS#8) and certificate (DER); the
    /// caller keeps them (the worklist, under `data/ca/`, key 0600).
    pub fn from_der(key_pkcs8: &[u8], certificate: &[u8]) -> Result<CentreCa, IdentityError> {
        let refused = |reason: String| IdentityError::LoadCa { path: "the stored CA".into(), reason };
        let key = p256::ecdsa::SigningKey::from_pkcs8_der(key_pkcs8).map_err(|e| refused(e.to_string()))?;
        let certificate = Certificate::from_der(certificate).map_err(|e| refused(e.to_string()))?;
        Ok(CentreCa { key, certificate })
    }

    /// The CA's private key as PKCS#8 DER, for the caller to keep.
    pub fn key_pkcs8(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, IdentityError> {
        Ok(zeroize::Zeroizing::new(self.key.to_pkcs8_der().map_err(|e| IdentityError::Issue(e.to_string()))?.as_bytes().to_vec()))
    }

    /// A new CA held in memory only.
    pub fn create(centre_name: &str) -> Result<CentreCa, IdentityError> {
        let key = p256::ecdsa::SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let subject = Name::from_str(&format!("CN={} CA,O={}", dn_value(centre_name), dn_value(centre_name)))
            .map_err(|e| IdentityError::Issue(format!("CA name: {e}")))?;
        let spki = spki::SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).map_err(|e| IdentityError::Issue(e.to_string()))?;
        let validity = Validity::from_now(Duration::from_secs(10 * 365 * 86_400)).map_err(|e| IdentityError::Issue(e.to_string()))?;
        let builder = CertificateBuilder::new(Profile::Root, new_serial()?, validity, subject, spki, &key)
            .map_err(|e| IdentityError::Issue(e.to_string()))?;
        let certificate = builder.build::<p256::ecdsa::DerSignature>().map_err(|e| IdentityError::Issue(e.to_string()))?;
        Ok(CentreCa { key, certificate })
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    pub fn certificate_der(&self) -> Vec<u8> {
        self.certificate.to_der().expect("a parsed certificate encodes")
    }

    /// Issues a doctor a new P-256 key and a three-year signing certificate
    /// naming them (`CN=<name>, OU=<user id>`).
    pub fn issue(&self, display_name: &str, user_ref: &str) -> Result<SigningIdentity, IdentityError> {
        let key = p256::ecdsa::SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let organisation = self
            .certificate
            .tbs_certificate
            .subject
            .0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .find(|atv| atv.oid == const_oid_o())
            .and_then(|atv| atv.value.decode_as::<der::asn1::Utf8StringRef<'_>>().ok().map(|s| s.as_str().to_owned()))
            .unwrap_or_default();
        let mut dn = format!("CN={},OU={}", dn_value(display_name), dn_value(user_ref));
        if !organisation.is_empty() {
            dn.push_str(&format!(",O={}", dn_value(&organisation)));
        }
        let subject = Name::from_str(&dn).map_err(|e| IdentityError::Issue(format!("subject {dn:?}: {e}")))?;
        let spki = spki::SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).map_err(|e| IdentityError::Issue(e.to_string()))?;
        let validity = Validity::from_now(Duration::from_secs(3 * 365 * 86_400)).map_err(|e| IdentityError::Issue(e.to_string()))?;
        let profile = Profile::Leaf {
            issuer: self.certificate.tbs_certificate.subject.clone(),
            enable_key_agreement: false,
            enable_key_encipherment: false,
        };
        let builder = CertificateBuilder::new(profile, new_serial()?, validity, subject, spki, &self.key)
            .map_err(|e| IdentityError::Issue(e.to_string()))?;
        let certificate = builder.build::<p256::ecdsa::DerSignature>().map_err(|e| IdentityError::Issue(e.to_string()))?;
        Ok(SigningIdentity { key: SigningKey::P256(key), certificate, chain: vec![self.certificate.clone()] })
    }
}

impl CentreCa {
    /// Issues the centre's timestamp authority its certificate: P-256, the
    /// CA's lifetime, and the critical extended key usage timeStamping
    /// alone that RFC 3161 §2.3 asks of a TSA.
    pub fn issue_timestamping(&self, name: &str) -> Result<(p256::ecdsa::SigningKey, Certificate), IdentityError> {
        let key = p256::ecdsa::SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let subject = Name::from_str(&format!("CN={},O={}", dn_value(name), dn_value(name)))
            .map_err(|e| IdentityError::Issue(format!("TSA name: {e}")))?;
        let spki = spki::SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).map_err(|e| IdentityError::Issue(e.to_string()))?;
        let validity = Validity::from_now(Duration::from_secs(10 * 365 * 86_400)).map_err(|e| IdentityError::Issue(e.to_string()))?;
        let profile = Profile::Leaf {
            issuer: self.certificate.tbs_certificate.subject.clone(),
            enable_key_agreement: false,
            enable_key_encipherment: false,
        };
        let mut builder = CertificateBuilder::new(profile, new_serial()?, validity, subject, spki, &self.key)
            .map_err(|e| IdentityError::Issue(e.to_string()))?;
        builder.add_extension(&TimeStampingOnly).map_err(|e| IdentityError::Issue(e.to_string()))?;
        let certificate = builder.build::<p256::ecdsa::DerSignature>().map_err(|e| IdentityError::Issue(e.to_string()))?;
        Ok((key, certificate))
    }

    /// The CA's certificate revocation list (RFC 5280 §5, v2, with a CRL
    /// number): `revoked` lists the serial numbers (big-endian bytes) of
    /// certificates it issued that are revoked, with when. Valid from
    /// `now_unix_ms` for `valid_for`; verifiers fetch a newer one after.
    pub fn crl(&self, revoked: &[(Vec<u8>, i64)], now_unix_ms: i64, valid_for: Duration, number: u64) -> Result<Vec<u8>, IdentityError> {
        use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
        use x509_cert::ext::Extension;
        let issue = |e: &dyn std::fmt::Display| IdentityError::Issue(format!("CRL: {e}"));
        let time = |ms: i64| -> Result<x509_cert::time::Time, IdentityError> {
            let at = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
            x509_cert::time::Time::try_from(at).map_err(|e| issue(&e))
        };
        let entries = revoked
            .iter()
            .map(|(serial, at)| {
                Ok(RevokedCert {
                    serial_number: SerialNumber::new(serial).map_err(|e| issue(&e))?,
                    revocation_date: time(*at)?,
                    crl_entry_extensions: None,
                })
            })
            .collect::<Result<Vec<_>, IdentityError>>()?;
        let algorithm = spki::AlgorithmIdentifierOwned { oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_256, parameters: None };
        let crl_number = der::asn1::Uint::new(&number.to_be_bytes()).map_err(|e| issue(&e))?.to_der().map_err(|e| issue(&e))?;
        let tbs = TbsCertList {
            version: x509_cert::Version::V2,
            signature: algorithm.clone(),
            issuer: self.certificate.tbs_certificate.subject.clone(),
            this_update: time(now_unix_ms)?,
            next_update: Some(time(now_unix_ms + valid_for.as_millis() as i64)?),
            revoked_certificates: (!entries.is_empty()).then_some(entries),
            crl_extensions: Some(vec![
                Extension {
                    extn_id: const_oid::db::rfc5280::ID_CE_CRL_NUMBER,
                    critical: false,
                    extn_value: der::asn1::OctetString::new(crl_number).map_err(|e| issue(&e))?,
                },
                // RFC 5280 §5.2.1: the issuer's key, as its certificate's SKI names it.
                Extension {
                    extn_id: const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
                    critical: false,
                    extn_value: der::asn1::OctetString::new(self.authority_key_identifier()?).map_err(|e| issue(&e))?,
                },
            ]),
        };
        let tbs_der = tbs.to_der().map_err(|e| issue(&e))?;
        use p256::ecdsa::signature::Signer;
        let signature: p256::ecdsa::DerSignature = self.key.sign(&tbs_der);
        let list = CertificateList {
            tbs_cert_list: tbs,
            signature_algorithm: algorithm,
            signature: der::asn1::BitString::from_bytes(signature.as_bytes()).map_err(|e| issue(&e))?,
        };
        list.to_der().map_err(|e| issue(&e))
    }
}

impl CentreCa {
    /// The DER of an AuthorityKeyIdentifier naming this CA's key: its
    /// certificate's SubjectKeyIdentifier.
    fn authority_key_identifier(&self) -> Result<Vec<u8>, IdentityError> {
        use x509_cert::ext::pkix::{AuthorityKeyIdentifier, SubjectKeyIdentifier};
        let ski = self
            .certificate
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER)
            .ok_or_else(|| IdentityError::Issue("the CA certificate has no subject key identifier".into()))?;
        let ski = SubjectKeyIdentifier::from_der(ski.extn_value.as_bytes()).map_err(|e| IdentityError::Issue(e.to_string()))?;
        let aki = AuthorityKeyIdentifier { key_identifier: Some(ski.0), authority_cert_issuer: None, authority_cert_serial_number: None };
        aki.to_der().map_err(|e| IdentityError::Issue(e.to_string()))
    }
}

/// Extended key usage id-kp-timeStamping, critical, alone (RFC 3161 §2.3).
struct TimeStampingOnly;

impl TimeStampingOnly {
    fn usage() -> x509_cert::ext::pkix::ExtendedKeyUsage {
        x509_cert::ext::pkix::ExtendedKeyUsage(vec![const_oid::db::rfc5280::ID_KP_TIME_STAMPING])
    }
}

impl const_oid::AssociatedOid for TimeStampingOnly {
    const OID: const_oid::ObjectIdentifier = const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE;
}

impl der::Encode for TimeStampingOnly {
    fn encoded_len(&self) -> der::Result<der::Length> {
        Self::usage().encoded_len()
    }
    fn encode(&self, writer: &mut impl der::Writer) -> der::Result<()> {
        Self::usage().encode(writer)
    }
}

impl x509_cert::ext::AsExtension for TimeStampingOnly {
    fn critical(&self, _subject: &Name, _extensions: &[x509_cert::ext::Extension]) -> bool {
        true
    }
}

fn const_oid_o() -> der::asn1::ObjectIdentifier {
    der::asn1::ObjectIdentifier::new_unwrap("2.5.4.10")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_issues_doctors_certificates_that_round_trip() {
        let ca = CentreCa::create("远程诊断中心").unwrap();
        let again = CentreCa::from_der(&ca.key_pkcs8().unwrap(), &ca.certificate_der()).unwrap();
        assert_eq!(ca.certificate_der(), again.certificate_der(), "the CA round-trips through its stored form");
        let doctor = ca.issue("陈医生", "user-3").unwrap();
        assert!(doctor.subject().contains("CN=陈医生"), "{}", doctor.subject());
        assert_eq!(doctor.certificate.tbs_certificate.issuer, ca.certificate().tbs_certificate.subject);
        let der = doctor.to_der().unwrap();
        let back = SigningIdentity::from_der(&der.key, &der.certificate, &der.chain).unwrap();
        assert_eq!(back.fingerprint(), doctor.fingerprint());
        assert_eq!(back.chain.len(), 1);
    }

    #[test]
    fn pkcs12_round_trips_and_a_wrong_password_is_refused() {
        let ca = CentreCa::create("中心").unwrap();
        let doctor = ca.issue("刘医生", "user-4").unwrap();
        let p12 = doctor.to_pkcs12("s3cret-pass").unwrap();
        let back = SigningIdentity::from_pkcs12(&p12, "s3cret-pass").unwrap();
        assert_eq!(back.fingerprint(), doctor.fingerprint());
        assert!(SigningIdentity::from_pkcs12(&p12, "wrong").is_err());
    }

    #[test]
    fn a_key_from_another_certificate_is_refused() {
        let ca = CentreCa::create("中心").unwrap();
        let a = ca.issue("甲", "1").unwrap();
        let b = ca.issue("乙", "2").unwrap();
        let err = SigningIdentity::from_der(&a.to_der().unwrap().key, &b.to_der().unwrap().certificate, &[]).unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
    }
}
