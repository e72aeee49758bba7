//! Time evidence for signatures (PAdES B-T): RFC 3161 timestamp tokens.
//!
//! A signature's `/M` is the signing server's clock, which a verifier has
//! no reason to trust. A timestamp token is a timestamp authority's own
//! signature over the hash of the signature value and the time, so a
//! verifier years later knows the signature existed then — before any
//! later revocation of the doctor's certificate.
//!
//! [`TimestampAuthority`] is the centre's own TSA, created at first start
//! beside the CA and certified by it (critical EKU timeStamping). A centre
//! that must use an accredited external TSA implements [`Timestamper`]
//! over its HTTP interface instead (the worklist does, for `tsa_url`).

use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
use der::asn1::{GeneralizedTime, OctetString};
use der::{Decode, Encode};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use crate::identity::{CentreCa, IdentityError};

/// Anything that returns an RFC 3161 TimeStampToken (a DER ContentInfo)
/// for a SHA-256 message imprint.
pub trait Timestamper: Send + Sync {
    fn timestamp(&self, sha256: &[u8; 32]) -> Result<Vec<u8>, String>;
}

/// id-ct-TSTInfo (RFC 3161).
const ID_CT_TST_INFO: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
/// The policy the centre's TSA names in its tokens. Under IANA's enterprise
/// number for documentation (RFC 5612): the centre's TSA claims no
/// registered policy, and its 2.25 UUID arc does not fit const-oid's 32-bit
/// arcs. A centre with its own enterprise number would put it here.
const POLICY: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.32473.3161.1");

/// The centre's timestamp authority.
pub struct TimestampAuthority {
    key: p256::ecdsa::SigningKey,
    certificate: Certificate,
    /// Its issuer, the centre CA, included in each token.
    ca: Certificate,
}

impl std::fmt::Debug for TimestampAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TimestampAuthority")
    }
}

impl TimestampAuthority {
    /// The TSA from its stored key (PKCS#8) and certificate (DER), kept by
    /// the caller beside the CA's.
    pub fn from_der(key_pkcs8: &[u8], certificate: &[u8], ca: &CentreCa) -> Result<TimestampAuthority, IdentityError> {
        let refused = |reason: String| IdentityError::LoadCa { path: "the stored TSA".into(), reason };
        let key = p256::ecdsa::SigningKey::from_pkcs8_der(key_pkcs8).map_err(|e| refused(e.to_string()))?;
        let certificate = Certificate::from_der(certificate).map_err(|e| refused(e.to_string()))?;
        Ok(TimestampAuthority { key, certificate, ca: ca.certificate().clone() })
    }

    /// The TSA's private key as PKCS#8 DER, for the caller to keep.
    pub fn key_pkcs8(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, IdentityError> {
        Ok(zeroize::Zeroizing::new(self.key.to_pkcs8_der().map_err(|e| IdentityError::Issue(e.to_string()))?.as_bytes().to_vec()))
    }

    /// A TSA held in memory only, certified by `ca`.
    pub fn create(ca: &CentreCa, centre_name: &str) -> Result<TimestampAuthority, IdentityError> {
        let (key, certificate) = ca.issue_timestamping(&format!("{centre_name} TSA"))?;
        Ok(TimestampAuthority { key, certificate, ca: ca.certificate().clone() })
    }

    pub fn certificate_der(&self) -> Vec<u8> {
        self.certificate.to_der().expect("a parsed certificate encodes")
    }

    /// A token for `sha256` at `unix_ms` (whole seconds; accuracy one second).
    pub fn stamp_at(&self, sha256: &[u8; 32], unix_ms: i64) -> Result<Vec<u8>, String> {
        let err = |e: &dyn std::fmt::Display| format!("timestamp: {e}");
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_ms.max(0) as u64 / 1000);
        // Positive and minimal in DER: the first byte 0x01..=0x7F.
        let mut serial: [u8; 16] = crate::identity::rand_bytes();
        serial[0] = (serial[0] & 0x7f) | 0x01;
        let info = x509_tsp::TstInfo {
            version: x509_tsp::TspVersion::V1,
            policy: POLICY,
            message_imprint: x509_tsp::MessageImprint {
                hash_algorithm: spki::AlgorithmIdentifier { oid: const_oid::db::rfc5912::ID_SHA_256, parameters: None },
                hashed_message: OctetString::new(sha256.to_vec()).map_err(|e| err(&e))?,
            },
            serial_number: der::asn1::Int::new(&serial[..]).map_err(|e| err(&e))?,
            gen_time: GeneralizedTime::from_system_time(at).map_err(|e| err(&e))?,
            accuracy: Some(x509_tsp::Accuracy { seconds: Some(1), millis: None, micros: None }),
            ordering: false,
            nonce: None,
            tsa: None,
            extensions: None,
        };
        let info_der = info.to_der().map_err(|e| err(&e))?;
        let content = EncapsulatedContentInfo {
            econtent_type: ID_CT_TST_INFO,
            econtent: Some(der::Any::new(der::Tag::OctetString, info_der).map_err(|e| err(&e))?),
        };
        let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: self.certificate.tbs_certificate.issuer.clone(),
            serial_number: self.certificate.tbs_certificate.serial_number.clone(),
        });
        let sha256_alg = spki::AlgorithmIdentifierOwned { oid: const_oid::db::rfc5912::ID_SHA_256, parameters: None };
        let mut builder = SignedDataBuilder::new(&content);
        builder.add_digest_algorithm(sha256_alg.clone()).map_err(|e| err(&e))?;
        builder.add_certificate(CertificateChoices::Certificate(self.certificate.clone())).map_err(|e| err(&e))?;
        builder.add_certificate(CertificateChoices::Certificate(self.ca.clone())).map_err(|e| err(&e))?;
        let mut signer = SignerInfoBuilder::new(&self.key, sid, sha256_alg, &content, None).map_err(|e| err(&e))?;
        signer.add_signed_attribute(crate::sign::signing_certificate_v2(&self.certificate).map_err(|e| err(&e))?).map_err(|e| err(&e))?;
        builder.add_signer_info::<_, p256::ecdsa::DerSignature>(signer).map_err(|e| err(&e))?;
        builder.build().map_err(|e| err(&e))?.to_der().map_err(|e| err(&e))
    }
}

impl Timestamper for TimestampAuthority {
    fn timestamp(&self, sha256: &[u8; 32]) -> Result<Vec<u8>, String> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        self.stamp_at(sha256, now)
    }
}

/// SHA-256 of `bytes`, as a message imprint.
pub fn imprint(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}
