//! PAdES signatures: a CMS SignedData (SHA-256, detached) over the whole
//! file but its own `/Contents`, added as an incremental update.
//!
//! Each signature appends a revision, so the reporting doctor's signature
//! stays valid when the reviewer signs after them: a verifier checks each
//! against the bytes of its own revision. The signature dictionary uses the
//! `ETSI.CAdES.detached` sub-filter with the ESS signing-certificate-v2
//! attribute (PAdES baseline B-B); the signing time is the dictionary's `/M`.

use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
use der::{Decode, Encode};
use lopdf::{Dictionary, IncrementalDocument, Object, ObjectId, StringFormat};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;

use crate::identity::{SigningIdentity, SigningKey};
use crate::time::Timestamp;

/// Bytes reserved for the CMS blob: a P-256 or RSA-4096 signature with a
/// three-certificate chain fits with room to spare.
const SIGNATURE_CAPACITY: usize = 16 * 1024;
/// Written where the byte range goes, then overwritten in place, padded.
const BYTE_RANGE_PLACEHOLDER: i64 = 9_999_999_999;

/// Errors of signing.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("cannot read the PDF to sign: {0}")]
    Parse(String),
    #[error("cannot add the signature revision: {0}")]
    Update(String),
    #[error("cannot build the CMS signature: {0}")]
    Cms(String),
    #[error("no timestamp for the signature: {0}")]
    Timestamp(String),
    #[error("the CMS signature needs {needed} bytes but {SIGNATURE_CAPACITY} are reserved")]
    TooLarge { needed: usize },
}

/// Who signs, why, and when (shown by PDF readers and `pdfsig`).
#[derive(Clone)]
pub struct SignatureRequest<'a> {
    pub identity: &'a SigningIdentity,
    /// The form field's name, unique in the document (e.g. `报告医师`).
    pub field_name: &'a str,
    /// The signer's name as shown (the certificate says it too).
    pub signer_name: &'a str,
    /// E.g. "报告医师签名" / "审核医师签名".
    pub reason: &'a str,
    pub location: &'a str,
    pub time: Timestamp,
    /// What the field shows on the page (a later signer's name and time in
    /// their slot); `None` for an invisible field, when the page content
    /// already prints the signer.
    pub stamp: Option<&'a crate::form::SignatureStamp>,
    /// Where the signature's RFC 3161 timestamp comes from (PAdES B-T);
    /// `None` signs without one (B-B).
    pub timestamper: Option<&'a dyn crate::tsa::Timestamper>,
}

impl std::fmt::Debug for SignatureRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureRequest")
            .field("field_name", &self.field_name)
            .field("signer_name", &self.signer_name)
            .field("time", &self.time)
            .field("timestamped", &self.timestamper.is_some())
            .finish_non_exhaustive()
    }
}

/// Appends a signature revision to `pdf` and returns the signed file.
pub fn sign_pdf(pdf: &[u8], request: &SignatureRequest<'_>) -> Result<Vec<u8>, SignError> {
    let mut out = add_signature_revision(pdf, request)?;
    let (contents_start, contents_end) = find_contents_placeholder(&out, pdf.len())?;
    let byte_range = [0, contents_start, contents_end, out.len() - contents_end];
    write_byte_range(&mut out, pdf.len(), byte_range)?;

    let mut hasher = Sha256::new();
    hasher.update(&out[..contents_start]);
    hasher.update(&out[contents_end..]);
    let digest = hasher.finalize();
    let mut cms = cms_signature(request.identity, &digest)?;
    if let Some(timestamper) = request.timestamper {
        cms = with_signature_timestamp(&cms, timestamper)?;
    }
    if cms.len() * 2 > contents_end - contents_start - 2 {
        return Err(SignError::TooLarge { needed: cms.len() });
    }
    let hex = hex::encode_upper(&cms);
    out[contents_start + 1..contents_start + 1 + hex.len()].copy_from_slice(hex.as_bytes());
    Ok(out)
}

fn add_signature_revision(pdf: &[u8], request: &SignatureRequest<'_>) -> Result<Vec<u8>, SignError> {
    let previous = lopdf::Document::load_mem(pdf).map_err(|e| SignError::Parse(e.to_string()))?;
    let root_id =
        previous.trailer.get(b"Root").and_then(Object::as_reference).map_err(|e| SignError::Parse(format!("trailer /Root: {e}")))?;
    let page_id = *previous.get_pages().get(&1).ok_or_else(|| SignError::Parse("expected at least one page, found none".into()))?;
    let update = |e: lopdf::Error| SignError::Update(e.to_string());
    let mut doc = IncrementalDocument::create_from(pdf.to_vec(), previous);

    let mut signature = Dictionary::new();
    signature.set("Type", Object::Name(b"Sig".to_vec()));
    signature.set("Filter", Object::Name(b"Adobe.PPKLite".to_vec()));
    signature.set("SubFilter", Object::Name(b"ETSI.CAdES.detached".to_vec()));
    signature.set(
        "ByteRange",
        Object::Array(vec![
            Object::Integer(0),
            Object::Integer(BYTE_RANGE_PLACEHOLDER),
            Object::Integer(BYTE_RANGE_PLACEHOLDER),
            Object::Integer(BYTE_RANGE_PLACEHOLDER),
        ]),
    );
    signature.set("Contents", Object::String(vec![0u8; SIGNATURE_CAPACITY], StringFormat::Hexadecimal));
    signature.set("M", Object::string_literal(request.time.pdf_date()));
    signature.set("Name", text_string(request.signer_name));
    signature.set("Reason", text_string(request.reason));
    signature.set("Location", text_string(request.location));
    let signature_id = doc.new_document.add_object(signature);

    let mut widget = Dictionary::new();
    widget.set("Type", Object::Name(b"Annot".to_vec()));
    widget.set("Subtype", Object::Name(b"Widget".to_vec()));
    widget.set("FT", Object::Name(b"Sig".to_vec()));
    widget.set("T", text_string(request.field_name));
    widget.set("V", Object::Reference(signature_id));
    match request.stamp {
        Some(stamp) => {
            let [x0, y0, x1, y1] = stamp.rect;
            widget.set("Rect", Object::Array(stamp.rect.iter().map(|&v| Object::Real(v)).collect()));
            let mut form = Dictionary::new();
            form.set("Type", Object::Name(b"XObject".to_vec()));
            form.set("Subtype", Object::Name(b"Form".to_vec()));
            form.set("BBox", Object::Array(vec![0.into(), 0.into(), Object::Real(x1 - x0), Object::Real(y1 - y0)]));
            form.set("Resources", Object::Dictionary(Dictionary::new()));
            let appearance = doc.new_document.add_object(lopdf::Stream::new(form, stamp.content.clone()));
            let mut normal = Dictionary::new();
            normal.set("N", Object::Reference(appearance));
            widget.set("AP", Object::Dictionary(normal));
        }
        None => widget.set("Rect", Object::Array(vec![0.into(), 0.into(), 0.into(), 0.into()])),
    }
    // Print + Locked: an invisible field that cannot be edited away.
    widget.set("F", Object::Integer(4 | 128));
    widget.set("P", Object::Reference(page_id));
    let widget_id = doc.new_document.add_object(widget);

    doc.opt_clone_object_to_new_document(page_id).map_err(update)?;
    append_to_array(&mut doc, page_id, b"Annots", widget_id)?;

    doc.opt_clone_object_to_new_document(root_id).map_err(update)?;
    let acroform = doc.new_document.get_dictionary(root_id).map_err(update)?.get(b"AcroForm").ok().cloned();
    let mut form = match acroform {
        Some(Object::Reference(id)) => doc.get_prev_documents().get_dictionary(id).map_err(update)?.clone(),
        Some(Object::Dictionary(d)) => d,
        _ => Dictionary::new(),
    };
    let mut fields = match form.get(b"Fields") {
        Ok(Object::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    fields.push(Object::Reference(widget_id));
    form.set("Fields", Object::Array(fields));
    form.set("SigFlags", Object::Integer(3));
    let form_id = doc.new_document.add_object(form);
    doc.new_document.get_dictionary_mut(root_id).map_err(update)?.set("AcroForm", Object::Reference(form_id));

    let mut out = Vec::with_capacity(pdf.len() + 2 * SIGNATURE_CAPACITY + 4096);
    doc.save_to(&mut out).map_err(|e| SignError::Update(e.to_string()))?;
    Ok(out)
}

/// Adds `item` to the array under `key` of object `owner` (already cloned
/// into the new revision), whether that array is direct or referenced.
fn append_to_array(doc: &mut IncrementalDocument, owner: ObjectId, key: &[u8], item: ObjectId) -> Result<(), SignError> {
    let update = |e: lopdf::Error| SignError::Update(e.to_string());
    let existing = doc.new_document.get_dictionary(owner).map_err(update)?.get(key).ok().cloned();
    let mut items = match existing {
        Some(Object::Array(a)) => a,
        Some(Object::Reference(id)) => doc.get_prev_documents().get_object(id).and_then(Object::as_array).map_err(update)?.clone(),
        _ => Vec::new(),
    };
    items.push(Object::Reference(item));
    doc.new_document.get_dictionary_mut(owner).map_err(update)?.set(key.to_vec(), Object::Array(items));
    Ok(())
}

/// A PDF text string: PDFDocEncoding-safe ASCII as is, anything else UTF-16BE with a BOM.
fn text_string(text: &str) -> Object {
    if text.is_ascii() {
        return Object::string_literal(text);
    }
    let mut bytes = vec![0xfe, 0xff];
    for unit in text.encode_utf16() {
        bytes.extend_from_slice(&unit.to_be_bytes());
    }
    Object::String(bytes, StringFormat::Hexadecimal)
}

/// Where the reserved hex string sits in the new revision: (offset of `<`, offset after `>`).
fn find_contents_placeholder(out: &[u8], revision_start: usize) -> Result<(usize, usize), SignError> {
    let zeros = vec![b'0'; SIGNATURE_CAPACITY * 2];
    let tail = &out[revision_start..];
    let at = tail
        .windows(zeros.len() + 1)
        .position(|w| w[0] == b'<' && w[1..] == zeros[..])
        .ok_or_else(|| SignError::Update("the reserved /Contents string was not written as expected".into()))?;
    let start = revision_start + at;
    let end = start + 1 + zeros.len();
    if out.get(end) != Some(&b'>') {
        return Err(SignError::Update("the reserved /Contents string is longer than reserved".into()));
    }
    Ok((start, end + 1))
}

/// Overwrites the placeholder byte range in place, padding with spaces so no offset moves.
fn write_byte_range(out: &mut [u8], revision_start: usize, range: [usize; 4]) -> Result<(), SignError> {
    let tail = &out[revision_start..];
    let key = b"/ByteRange";
    let at = tail.windows(key.len()).position(|w| w == key).ok_or_else(|| SignError::Update("no /ByteRange in the new revision".into()))?;
    let open = revision_start + at + key.len() + tail[at + key.len()..].iter().position(|&b| b == b'[').unwrap_or(0);
    let close = open + out[open..].iter().position(|&b| b == b']').ok_or_else(|| SignError::Update("unterminated /ByteRange".into()))?;
    let text = format!("[{} {} {} {}", range[0], range[1], range[2], range[3]);
    let width = close - open;
    if text.len() > width {
        return Err(SignError::Update("the byte range does not fit its placeholder".into()));
    }
    out[open..close].copy_from_slice(format!("{text:<width$}").as_bytes());
    Ok(())
}

/// id-aa-signingCertificateV2 (RFC 5035).
const ID_AA_SIGNING_CERTIFICATE_V2: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");

fn sha256_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid: const_oid::db::rfc5912::ID_SHA_256, parameters: None }
}

/// The ESS signing-certificate-v2 attribute (RFC 5035): binds the signature
/// to the signer's certificate by its SHA-256, as PAdES requires.
pub(crate) fn signing_certificate_v2(certificate: &x509_cert::Certificate) -> Result<x509_cert::attr::Attribute, SignError> {
    let cert_der = certificate.to_der().map_err(|e| SignError::Cms(e.to_string()))?;
    let hash = Sha256::digest(&cert_der);
    // SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2 }
    // ESSCertIDv2 ::= SEQUENCE { certHash OCTET STRING } (hashAlgorithm defaults to SHA-256)
    let mut cert_id = vec![0x04, 0x20];
    cert_id.extend_from_slice(&hash);
    let wrap = |inner: Vec<u8>| {
        let mut v = vec![0x30, inner.len() as u8];
        v.extend(inner);
        v
    };
    let value_der = wrap(wrap(wrap(cert_id)));
    let value = der::Any::from_der(&value_der).map_err(|e| SignError::Cms(e.to_string()))?;
    let mut values = der::asn1::SetOfVec::new();
    values.insert(value).map_err(|e| SignError::Cms(e.to_string()))?;
    Ok(x509_cert::attr::Attribute { oid: ID_AA_SIGNING_CERTIFICATE_V2, values })
}

/// A detached CMS SignedData over `digest`, with the signer's chain.
fn cms_signature(identity: &SigningIdentity, digest: &[u8]) -> Result<Vec<u8>, SignError> {
    let cms_err = |e: &dyn std::fmt::Display| SignError::Cms(e.to_string());
    let content = EncapsulatedContentInfo { econtent_type: const_oid::db::rfc5911::ID_DATA, econtent: None };
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: identity.certificate.tbs_certificate.issuer.clone(),
        serial_number: identity.certificate.tbs_certificate.serial_number.clone(),
    });
    let mut builder = SignedDataBuilder::new(&content);
    builder.add_digest_algorithm(sha256_algorithm()).map_err(|e| cms_err(&e))?;
    builder.add_certificate(CertificateChoices::Certificate(identity.certificate.clone())).map_err(|e| cms_err(&e))?;
    for issuer in &identity.chain {
        builder.add_certificate(CertificateChoices::Certificate(issuer.clone())).map_err(|e| cms_err(&e))?;
    }
    let attribute = signing_certificate_v2(&identity.certificate)?;
    match &identity.key {
        SigningKey::P256(key) => {
            let mut signer = SignerInfoBuilder::new(key, sid, sha256_algorithm(), &content, Some(digest)).map_err(|e| cms_err(&e))?;
            signer.add_signed_attribute(attribute).map_err(|e| cms_err(&e))?;
            builder.add_signer_info::<_, p256::ecdsa::DerSignature>(signer).map_err(|e| cms_err(&e))?;
        }
        SigningKey::Rsa(key) => {
            let mut signer =
                SignerInfoBuilder::new(key.as_ref(), sid, sha256_algorithm(), &content, Some(digest)).map_err(|e| cms_err(&e))?;
            signer.add_signed_attribute(attribute).map_err(|e| cms_err(&e))?;
            builder.add_signer_info::<_, rsa::pkcs1v15::Signature>(signer).map_err(|e| cms_err(&e))?;
        }
    }
    builder.build().map_err(|e| cms_err(&e))?.to_der().map_err(|e| cms_err(&e))
}

/// id-aa-signatureTimeStampToken (RFC 3161 appendix A).
const ID_AA_SIGNATURE_TIME_STAMP_TOKEN: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");

/// Adds to the (one) SignerInfo of `cms` the unsigned attribute
/// signatureTimeStampToken: a token over the SHA-256 of its signature value.
fn with_signature_timestamp(cms: &[u8], timestamper: &dyn crate::tsa::Timestamper) -> Result<Vec<u8>, SignError> {
    let cms_err = |e: &dyn std::fmt::Display| SignError::Cms(e.to_string());
    let mut info = cms::content_info::ContentInfo::from_der(cms).map_err(|e| cms_err(&e))?;
    let mut signed: cms::signed_data::SignedData = info.content.decode_as().map_err(|e| cms_err(&e))?;
    let mut signers = signed.signer_infos.0.into_vec();
    let signer = signers.first_mut().ok_or_else(|| SignError::Cms("expected one SignerInfo, found none".into()))?;
    let token = timestamper.timestamp(&crate::tsa::imprint(signer.signature.as_bytes())).map_err(SignError::Timestamp)?;
    let mut values = der::asn1::SetOfVec::new();
    values.insert(der::Any::from_der(&token).map_err(|e| cms_err(&e))?).map_err(|e| cms_err(&e))?;
    let attribute = x509_cert::attr::Attribute { oid: ID_AA_SIGNATURE_TIME_STAMP_TOKEN, values };
    let mut unsigned = signer.unsigned_attrs.take().unwrap_or_default();
    unsigned.insert(attribute).map_err(|e| cms_err(&e))?;
    signer.unsigned_attrs = Some(unsigned);
    signed.signer_infos = cms::signed_data::SignerInfos(der::asn1::SetOfVec::try_from(signers).map_err(|e| cms_err(&e))?);
    info.content = der::Any::encode_from(&signed).map_err(|e| cms_err(&e))?;
    info.to_der().map_err(|e| cms_err(&e))
}

/// Appends a revision holding validation data (PAdES B-LT): the
/// certificates and CRLs a verifier needs, offline, years later, in the
/// catalog's Document Security Store. Signatures before it stay valid (a
/// DSS is a permitted change). `certificates` and `crls` are DER.
pub fn add_validation_data(pdf: &[u8], certificates: &[Vec<u8>], crls: &[Vec<u8>]) -> Result<Vec<u8>, SignError> {
    let previous = lopdf::Document::load_mem(pdf).map_err(|e| SignError::Parse(e.to_string()))?;
    let root_id =
        previous.trailer.get(b"Root").and_then(Object::as_reference).map_err(|e| SignError::Parse(format!("trailer /Root: {e}")))?;
    // What an earlier signer's revision stored stays: the new store holds
    // it and adds to it.
    let earlier = |key: &[u8]| -> Vec<Object> {
        let dss = previous.get_dictionary(root_id).ok().and_then(|root| root.get(b"DSS").ok()).and_then(|dss| match dss {
            Object::Reference(id) => previous.get_dictionary(*id).ok(),
            Object::Dictionary(d) => Some(d),
            _ => None,
        });
        dss.and_then(|d| d.get(key).ok()).and_then(|a| a.as_array().ok()).cloned().unwrap_or_default()
    };
    let (earlier_certs, earlier_crls) = (earlier(b"Certs"), earlier(b"CRLs"));
    let update = |e: lopdf::Error| SignError::Update(e.to_string());
    let mut doc = IncrementalDocument::create_from(pdf.to_vec(), previous);
    let mut streams = |items: &[Vec<u8>]| -> Vec<Object> {
        items.iter().map(|der| Object::Reference(doc.new_document.add_object(lopdf::Stream::new(Dictionary::new(), der.clone())))).collect()
    };
    let certs: Vec<Object> = earlier_certs.into_iter().chain(streams(certificates)).collect();
    let crl_refs: Vec<Object> = earlier_crls.into_iter().chain(streams(crls)).collect();
    let mut dss = Dictionary::new();
    dss.set("Type", Object::Name(b"DSS".to_vec()));
    dss.set("Certs", Object::Array(certs));
    if !crl_refs.is_empty() {
        dss.set("CRLs", Object::Array(crl_refs));
    }
    let dss_id = doc.new_document.add_object(dss);
    doc.opt_clone_object_to_new_document(root_id).map_err(update)?;
    doc.new_document.get_dictionary_mut(root_id).map_err(update)?.set("DSS", Object::Reference(dss_id));
    let mut out = Vec::with_capacity(pdf.len() + 8192);
    doc.save_to(&mut out).map_err(|e| SignError::Update(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_strings_are_ascii_or_utf16_with_bom() {
        assert_eq!(text_string("abc"), Object::string_literal("abc"));
        let Object::String(bytes, _) = text_string("医") else { panic!() };
        assert_eq!(bytes, vec![0xfe, 0xff, 0x53, 0x3b]);
    }
}
