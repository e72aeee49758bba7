//! The final report as DICOM, filed into the study it reads: a Basic Text
//! SR (TID 2000, VERIFIED by the reviewing doctor) that any PACS can show
//! and query, and an Encapsulated PDF of the signed form itself.
//!
//! UIDs are derived from the report's verification token, so exporting the
//! same report again yields the same instances (which the archive treats as
//! duplicates), and an amended report can name its predecessor's SR.

use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use sha2::{Digest, Sha256};

use crate::time::Timestamp;

/// The study the report belongs to, as indexed.
#[derive(Debug, Clone, Default)]
pub struct StudyContext {
    pub study_uid: String,
    pub patient_name: String,
    pub patient_id: String,
    pub patient_sex: String,
    pub patient_birth_date: String,
    pub accession_number: String,
    pub study_date: String,
    pub study_time: String,
    pub referring_physician: String,
    pub institution: String,
}

/// A signed report's content and signers.
#[derive(Debug, Clone)]
pub struct SignedReport {
    /// The report's verification token: the seed of its UIDs.
    pub token: String,
    /// The token of the version this one replaces, if amended.
    pub supersedes_token: Option<String>,
    pub title: String,
    pub method: String,
    pub findings: String,
    pub conclusion: String,
    pub author: String,
    pub author_signed_at: Timestamp,
    /// The reviewing doctor; the author again for single-signature sites.
    pub verifier: String,
    pub verified_at: Timestamp,
    pub organisation: String,
    pub version: u32,
}

/// Errors of the DICOM export.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the report as DICOM ({what}): {reason}")]
pub struct ExportError {
    what: &'static str,
    reason: String,
}

/// The UIDs one report's objects get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportUids {
    pub sr_series: String,
    pub sr_instance: String,
    pub pdf_series: String,
    pub pdf_instance: String,
}

impl ReportUids {
    pub fn for_token(token: &str) -> ReportUids {
        ReportUids {
            sr_series: derived_uid(token, "sr-series"),
            sr_instance: derived_uid(token, "sr-instance"),
            pdf_series: derived_uid(token, "pdf-series"),
            pdf_instance: derived_uid(token, "pdf-instance"),
        }
    }
}

/// `2.25.<128 bits of SHA-256(token, purpose)>`.
fn derived_uid(token: &str, purpose: &str) -> String {
    let hash = Sha256::digest(format!("telediag-report\0{token}\0{purpose}").as_bytes());
    format!("2.25.{}", u128::from_be_bytes(hash[..16].try_into().expect("16 bytes")))
}

fn put(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
}

fn sequence(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED))
}

fn code(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    let mut c = InMemDicomObject::new_empty();
    put(&mut c, tags::CODE_VALUE, VR::SH, value);
    put(&mut c, tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme);
    put(&mut c, tags::CODE_MEANING, VR::LO, meaning);
    c
}

/// Patient, study and general equipment attributes both objects share.
fn common(ctx: &StudyContext, sop_class: &str, sop_instance: &str, series_uid: &str, modality: &str, at: &Timestamp) -> InMemDicomObject {
    let mut obj = InMemDicomObject::new_empty();
    put(&mut obj, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
    put(&mut obj, tags::SOP_CLASS_UID, VR::UI, sop_class);
    put(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, sop_instance);
    put(&mut obj, tags::STUDY_DATE, VR::DA, &ctx.study_date);
    put(&mut obj, tags::STUDY_TIME, VR::TM, &ctx.study_time);
    put(&mut obj, tags::CONTENT_DATE, VR::DA, &at.dicom_date());
    put(&mut obj, tags::CONTENT_TIME, VR::TM, &at.dicom_time());
    put(&mut obj, tags::ACCESSION_NUMBER, VR::SH, &ctx.accession_number);
    put(&mut obj, tags::MODALITY, VR::CS, modality);
    put(&mut obj, tags::MANUFACTURER, VR::LO, "Telediag");
    put(&mut obj, tags::INSTITUTION_NAME, VR::LO, &ctx.institution);
    put(&mut obj, tags::REFERRING_PHYSICIAN_NAME, VR::PN, &ctx.referring_physician);
    put(&mut obj, tags::PATIENT_NAME, VR::PN, &ctx.patient_name);
    put(&mut obj, tags::PATIENT_ID, VR::LO, &ctx.patient_id);
    put(&mut obj, tags::PATIENT_BIRTH_DATE, VR::DA, &ctx.patient_birth_date);
    put(&mut obj, tags::PATIENT_SEX, VR::CS, &ctx.patient_sex);
    put(&mut obj, tags::STUDY_INSTANCE_UID, VR::UI, &ctx.study_uid);
    put(&mut obj, tags::SERIES_INSTANCE_UID, VR::UI, series_uid);
    put(&mut obj, tags::STUDY_ID, VR::SH, "");
    put(&mut obj, tags::SERIES_NUMBER, VR::IS, "9901");
    put(&mut obj, tags::INSTANCE_NUMBER, VR::IS, "1");
    obj
}

fn part10(obj: InMemDicomObject, sop_class: &str, sop_instance: &str, what: &'static str) -> Result<Vec<u8>, ExportError> {
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(sop_class)
        .media_storage_sop_instance_uid(sop_instance)
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .implementation_class_uid("2.25.181367470011399419396196474386213405977")
        .implementation_version_name("TELEDIAG_RPT")
        .build()
        .map_err(|e| ExportError { what, reason: e.to_string() })?;
    let mut out = Vec::new();
    obj.with_exact_meta(meta).write_all(&mut out).map_err(|e| ExportError { what, reason: e.to_string() })?;
    Ok(out)
}

fn text_item(relationship: &str, concept: InMemDicomObject, text: &str) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put(&mut item, tags::RELATIONSHIP_TYPE, VR::CS, relationship);
    put(&mut item, tags::VALUE_TYPE, VR::CS, "TEXT");
    item.put(sequence(tags::CONCEPT_NAME_CODE_SEQUENCE, vec![concept]));
    put(&mut item, tags::TEXT_VALUE, VR::UT, text);
    item
}

fn section(concept: InMemDicomObject, entry_concept: InMemDicomObject, text: &str) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put(&mut item, tags::RELATIONSHIP_TYPE, VR::CS, "CONTAINS");
    put(&mut item, tags::VALUE_TYPE, VR::CS, "CONTAINER");
    item.put(sequence(tags::CONCEPT_NAME_CODE_SEQUENCE, vec![concept]));
    put(&mut item, tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
    item.put(sequence(tags::CONTENT_SEQUENCE, vec![text_item("CONTAINS", entry_concept, text)]));
    item
}

/// A Basic Text SR of the report: TID 2000 with the procedure, findings and
/// conclusion sections, the author as observer context, VERIFIED by the verifier.
pub fn basic_text_sr(ctx: &StudyContext, report: &SignedReport) -> Result<Vec<u8>, ExportError> {
    let ids = ReportUids::for_token(&report.token);
    let class = uids::BASIC_TEXT_SR_STORAGE;
    let mut obj = common(ctx, class, &ids.sr_instance, &ids.sr_series, "SR", &report.verified_at);
    put(&mut obj, tags::SERIES_DESCRIPTION, VR::LO, "诊断报告 (SR)");
    put(&mut obj, tags::INSTANCE_NUMBER, VR::IS, &report.version.to_string());
    obj.put(sequence(tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE, vec![]));
    obj.put(sequence(tags::PERFORMED_PROCEDURE_CODE_SEQUENCE, vec![]));
    put(&mut obj, tags::COMPLETION_FLAG, VR::CS, "COMPLETE");
    put(&mut obj, tags::VERIFICATION_FLAG, VR::CS, "VERIFIED");
    let mut verifier = InMemDicomObject::new_empty();
    put(&mut verifier, tags::VERIFYING_OBSERVER_NAME, VR::PN, &report.verifier);
    put(&mut verifier, tags::VERIFYING_ORGANIZATION, VR::LO, &report.organisation);
    put(&mut verifier, tags::VERIFICATION_DATE_TIME, VR::DT, &report.verified_at.dicom_datetime());
    verifier.put(sequence(tags::VERIFYING_OBSERVER_IDENTIFICATION_CODE_SEQUENCE, vec![]));
    obj.put(sequence(tags::VERIFYING_OBSERVER_SEQUENCE, vec![verifier]));
    if let Some(previous) = &report.supersedes_token {
        let before = ReportUids::for_token(previous);
        let mut sop = InMemDicomObject::new_empty();
        put(&mut sop, tags::REFERENCED_SOP_CLASS_UID, VR::UI, class);
        put(&mut sop, tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, &before.sr_instance);
        let mut series = InMemDicomObject::new_empty();
        put(&mut series, tags::SERIES_INSTANCE_UID, VR::UI, &before.sr_series);
        series.put(sequence(tags::REFERENCED_SOP_SEQUENCE, vec![sop]));
        let mut study = InMemDicomObject::new_empty();
        put(&mut study, tags::STUDY_INSTANCE_UID, VR::UI, &ctx.study_uid);
        study.put(sequence(tags::REFERENCED_SERIES_SEQUENCE, vec![series]));
        obj.put(sequence(tags::PREDECESSOR_DOCUMENTS_SEQUENCE, vec![study]));
    }

    // The content tree (TID 2000 Basic Diagnostic Imaging Report).
    put(&mut obj, tags::VALUE_TYPE, VR::CS, "CONTAINER");
    obj.put(sequence(tags::CONCEPT_NAME_CODE_SEQUENCE, vec![code("18748-4", "LN", "Diagnostic Imaging Report")]));
    put(&mut obj, tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
    let mut template = InMemDicomObject::new_empty();
    put(&mut template, tags::MAPPING_RESOURCE, VR::CS, "DCMR");
    put(&mut template, tags::TEMPLATE_IDENTIFIER, VR::CS, "2000");
    obj.put(sequence(tags::CONTENT_TEMPLATE_SEQUENCE, vec![template]));
    let mut language = InMemDicomObject::new_empty();
    put(&mut language, tags::RELATIONSHIP_TYPE, VR::CS, "HAS CONCEPT MOD");
    put(&mut language, tags::VALUE_TYPE, VR::CS, "CODE");
    language.put(sequence(tags::CONCEPT_NAME_CODE_SEQUENCE, vec![code("121049", "DCM", "Language of Content Item and Descendants")]));
    language.put(sequence(tags::CONCEPT_CODE_SEQUENCE, vec![code("zh", "RFC5646", "Chinese")]));
    let mut observer_type = InMemDicomObject::new_empty();
    put(&mut observer_type, tags::RELATIONSHIP_TYPE, VR::CS, "HAS OBS CONTEXT");
    put(&mut observer_type, tags::VALUE_TYPE, VR::CS, "CODE");
    observer_type.put(sequence(tags::CONCEPT_NAME_CODE_SEQUENCE, vec![code("121005", "DCM", "Observer Type")]));
    observer_type.put(sequence(tags::CONCEPT_CODE_SEQUENCE, vec![code("121006", "DCM", "Person")]));
    let mut observer = InMemDicomObject::new_empty();
    put(&mut observer, tags::RELATIONSHIP_TYPE, VR::CS, "HAS OBS CONTEXT");
    put(&mut observer, tags::VALUE_TYPE, VR::CS, "PNAME");
    observer.put(sequence(tags::CONCEPT_NAME_CODE_SEQUENCE, vec![code("121008", "DCM", "Person Observer Name")]));
    put(&mut observer, tags::PERSON_NAME, VR::PN, &report.author);
    let mut content = vec![language, observer_type, observer];
    for (text, section_code, entry_code) in [
        (&report.method, code("121064", "DCM", "Current Procedure Descriptions"), code("121065", "DCM", "Procedure Description")),
        (&report.findings, code("121070", "DCM", "Findings"), code("121071", "DCM", "Finding")),
        (&report.conclusion, code("121076", "DCM", "Conclusions"), code("121077", "DCM", "Conclusion")),
    ] {
        if !text.trim().is_empty() {
            content.push(section(section_code, entry_code, text.trim()));
        }
    }
    obj.put(sequence(tags::CONTENT_SEQUENCE, content));
    part10(obj, class, &ids.sr_instance, "Basic Text SR")
}

/// The signed PDF, byte for byte, as an Encapsulated PDF instance.
pub fn encapsulated_pdf(ctx: &StudyContext, report: &SignedReport, pdf: &[u8]) -> Result<Vec<u8>, ExportError> {
    let ids = ReportUids::for_token(&report.token);
    let class = uids::ENCAPSULATED_PDF_STORAGE;
    let mut obj = common(ctx, class, &ids.pdf_instance, &ids.pdf_series, "DOC", &report.verified_at);
    put(&mut obj, tags::SERIES_DESCRIPTION, VR::LO, "诊断报告 (PDF)");
    put(&mut obj, tags::INSTANCE_NUMBER, VR::IS, &report.version.to_string());
    put(&mut obj, tags::CONVERSION_TYPE, VR::CS, "WSD");
    put(&mut obj, tags::ACQUISITION_DATE_TIME, VR::DT, &report.verified_at.dicom_datetime());
    put(&mut obj, tags::BURNED_IN_ANNOTATION, VR::CS, "YES");
    put(&mut obj, tags::DOCUMENT_TITLE, VR::ST, &report.title);
    obj.put(sequence(tags::CONCEPT_NAME_CODE_SEQUENCE, vec![code("18748-4", "LN", "Diagnostic Imaging Report")]));
    put(&mut obj, tags::MIME_TYPE_OF_ENCAPSULATED_DOCUMENT, VR::LO, "application/pdf");
    obj.put(DataElement::new(tags::ENCAPSULATED_DOCUMENT_LENGTH, VR::UL, PrimitiveValue::from(pdf.len() as u32)));
    let mut bytes = pdf.to_vec();
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    obj.put(DataElement::new(tags::ENCAPSULATED_DOCUMENT, VR::OB, PrimitiveValue::from(bytes)));
    part10(obj, class, &ids.pdf_instance, "Encapsulated PDF")
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_object::from_reader;

    fn report() -> (StudyContext, SignedReport) {
        let ctx = StudyContext {
            study_uid: "1.2.3.4".into(),
            patient_name: "张^三丰".into(),
            patient_id: "P1".into(),
            institution: "禄劝县人民医院".into(),
            ..Default::default()
        };
        let t = Timestamp::new(1_795_431_800_000, 480);
        let report = SignedReport {
            token: "abc".into(),
            supersedes_token: Some("old".into()),
            title: "CT 检查报告单".into(),
            method: "胸部CT平扫".into(),
            findings: "右肺上叶结节。".into(),
            conclusion: "考虑周围型肺癌。".into(),
            author: "陈医生".into(),
            author_signed_at: t,
            verifier: "黄主任".into(),
            verified_at: t,
            organisation: "远程诊断中心".into(),
            version: 2,
        };
        (ctx, report)
    }

    #[test]
    fn the_sr_reads_back_verified_with_three_sections_and_its_predecessor() {
        let (ctx, report) = report();
        let bytes = basic_text_sr(&ctx, &report).unwrap();
        let obj = from_reader(&bytes[128..]).unwrap();
        let text = |tag| obj.element(tag).unwrap().to_str().unwrap().trim().to_string();
        assert_eq!(text(tags::SOP_CLASS_UID), uids::BASIC_TEXT_SR_STORAGE);
        assert_eq!(text(tags::VERIFICATION_FLAG), "VERIFIED");
        assert_eq!(text(tags::STUDY_INSTANCE_UID), "1.2.3.4");
        assert_eq!(text(tags::PATIENT_NAME), "张^三丰");
        let verifier = &obj.element(tags::VERIFYING_OBSERVER_SEQUENCE).unwrap().items().unwrap()[0];
        assert_eq!(verifier.element(tags::VERIFYING_OBSERVER_NAME).unwrap().to_str().unwrap(), "黄主任");
        let content = obj.element(tags::CONTENT_SEQUENCE).unwrap().items().unwrap();
        let sections: Vec<String> = content
            .iter()
            .filter(|i| i.element(tags::VALUE_TYPE).unwrap().to_str().unwrap().trim() == "CONTAINER")
            .map(|i| {
                i.element(tags::CONTENT_SEQUENCE).unwrap().items().unwrap()[0]
                    .element(tags::TEXT_VALUE)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(sections, ["胸部CT平扫", "右肺上叶结节。", "考虑周围型肺癌。"]);
        let predecessor = &obj.element(tags::PREDECESSOR_DOCUMENTS_SEQUENCE).unwrap().items().unwrap()[0];
        let series = &predecessor.element(tags::REFERENCED_SERIES_SEQUENCE).unwrap().items().unwrap()[0];
        let sop = &series.element(tags::REFERENCED_SOP_SEQUENCE).unwrap().items().unwrap()[0];
        assert_eq!(sop.element(tags::REFERENCED_SOP_INSTANCE_UID).unwrap().to_str().unwrap(), ReportUids::for_token("old").sr_instance);
        assert_eq!(basic_text_sr(&ctx, &report).unwrap(), bytes, "the same report gives the same instance");
    }

    #[test]
    fn the_encapsulated_pdf_keeps_the_bytes_and_their_length() {
        let (ctx, report) = report();
        let pdf = b"%PDF-1.7 odd".to_vec();
        let bytes = encapsulated_pdf(&ctx, &report, &pdf).unwrap();
        let obj = from_reader(&bytes[128..]).unwrap();
        let doc = obj.element(tags::ENCAPSULATED_DOCUMENT).unwrap().to_bytes().unwrap();
        let len = obj.element(tags::ENCAPSULATED_DOCUMENT_LENGTH).unwrap().to_int::<u32>().unwrap() as usize;
        assert_eq!(&doc[..len], &pdf[..]);
        assert_eq!(obj.element(tags::MODALITY).unwrap().to_str().unwrap().trim(), "DOC");
    }
}
