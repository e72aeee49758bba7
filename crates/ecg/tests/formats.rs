//! Every reader on the real files of ../shared/corpus/ecg.

mod common;

use telediag_ecg::{EcgRecord, SourceFormat, read_path};

fn read(name: &str) -> Option<EcgRecord> {
    let root = common::corpus()?;
    Some(read_path(&root.join(name)).unwrap_or_else(|e| panic!("{name}: {e}")))
}

#[test]
fn the_ecgtoolkit_trio_gives_identical_samples_in_three_formats() {
    let (Some(scp), Some(aecg), Some(dicom)) =
        (read("ecgtoolkit/Example.scp"), read("ecgtoolkit/Example.xml"), read("ecgtoolkit/Example.dcm"))
    else {
        return;
    };
    assert_eq!(scp.format, SourceFormat::ScpEcg);
    assert_eq!(aecg.format, SourceFormat::HL7Aecg);
    assert_eq!(dicom.format, SourceFormat::DicomWaveform);
    for record in [&scp, &aecg, &dicom] {
        assert_eq!(record.sampling_rate_hz, 500.0, "{:?}", record.format);
        assert_eq!(record.len(), 5000, "{:?}", record.format);
        let labels: Vec<&str> = record.leads.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, telediag_ecg::leads::STANDARD_LEADS, "{:?}", record.format);
        assert_eq!(record.patient.id.as_deref(), Some("SBJ-123"), "{:?}", record.format);
        assert_eq!(record.device.measurements.pr_ms, Some(148.0), "{:?}", record.format);
        assert_eq!(record.device.measurements.qrs_ms, Some(120.0), "{:?}", record.format);
        assert_eq!(record.device.measurements.qt_ms, Some(420.0), "{:?}", record.format);
        assert_eq!(record.device.measurements.qrs_axis_deg, Some(-61.0), "{:?}", record.format);
    }
    for (a, b) in [(&scp, &aecg), (&scp, &dicom)] {
        for (la, lb) in a.leads.iter().zip(&b.leads) {
            let differing = la.samples_uv.iter().zip(&lb.samples_uv).filter(|(x, y)| x != y).count();
            assert_eq!(differing, 0, "lead {}: {:?} vs {:?}", la.label, a.format, b.format);
        }
    }
    // The signal is a real ECG, not zeros: lead II swings over a millivolt.
    let ii = &scp.lead("II").unwrap().samples_uv;
    let (min, max) = ii.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(max - min > 800.0, "lead II spans {min}..{max} µV");
    assert_eq!(scp.patient.name.as_deref(), Some("Clark"));
    assert_eq!(dicom.device.model.as_deref(), Some("ELI250"));
}

#[test]
fn pydicom_waveform_ecg_reads_with_its_device_statements() {
    let Some(record) = read("dicom/waveform_ecg.dcm") else { return };
    assert_eq!(record.leads.len(), 12);
    assert_eq!(record.device.measurements.pr_ms, Some(161.0));
    assert_eq!(record.device.measurements.qrs_ms, Some(75.0));
    assert_eq!(record.device.measurements.qt_ms, Some(368.0));
    assert_eq!(record.device.measurements.rr_ms, Some(982.0));
    assert!(record.device.statements.iter().any(|s| s == "RITMO SINUSALE"), "{:?}", record.device.statements);
    println!("{} Hz, {} samples, {:?}", record.sampling_rate_hz, record.len(), record.device);
}

#[test]
fn wfdb_records_read_in_formats_212_and_16() {
    let Some(mitdb) = read("wfdb/100.hea") else { return };
    assert_eq!(mitdb.sampling_rate_hz, 360.0);
    assert_eq!(mitdb.len(), 650_000);
    assert_eq!(mitdb.leads.iter().map(|l| l.label.as_str()).collect::<Vec<_>>(), ["V5", "MLII"]);
    assert_eq!(mitdb.patient.age_years, Some(69));
    // First MLII sample: stored 995, baseline 1024, gain 200/mV → −145 µV.
    assert_eq!(mitdb.lead("MLII").unwrap().samples_uv[0], -145.0);
    let Some(ptb) = read("wfdb/s0010_re.hea") else { return };
    assert_eq!(ptb.sampling_rate_hz, 1000.0);
    assert_eq!(ptb.leads.len(), 15);
    assert_eq!(&ptb.leads[0].label, "I");
    assert_eq!(ptb.patient.sex.as_deref(), Some("F"));
}

#[test]
fn aecg_samples_from_the_fda_examples() {
    let Some(record) = read("aecg/subject1_0.xml") else { return };
    assert!(record.leads.len() >= 8, "{} leads", record.leads.len());
    println!("{} Hz {} samples {:?}", record.sampling_rate_hz, record.len(), record.leads.iter().map(|l| &l.label).collect::<Vec<_>>());
}

#[test]
fn bad_input_is_refused_with_the_reason() {
    let Some(root) = common::corpus() else { return };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty aECG", std::fs::read(root.join("aecg/empty.xml")).unwrap(), "no <component><series>"),
        ("broken XML", b"<AnnotatedECG><component>".to_vec(), "broken XML"),
        ("unknown", b"hello".to_vec(), "not an ECG"),
        ("truncated SCP", std::fs::read(root.join("ecgtoolkit/Example.scp")).unwrap()[..20000].to_vec(), "record says it is 34144 bytes"),
        (
            "damaged SCP",
            {
                let mut b = std::fs::read(root.join("ecgtoolkit/Example.scp")).unwrap();
                b[5000] ^= 0x55;
                b
            },
            "section 6 CRC",
        ),
        ("truncated DICOM", std::fs::read(root.join("ecgtoolkit/Example.dcm")).unwrap()[..60000].to_vec(), "DICOM"),
    ];
    for (what, bytes, want) in cases {
        let err = telediag_ecg::read_bytes(&bytes).expect_err(what).to_string();
        assert!(err.contains(want), "{what}: {err}");
    }
}

#[test]
fn converted_to_dicom_the_ecg_reads_back_sample_for_sample_with_device_data() {
    use telediag_ecg::dicom_writer::{Provenance, to_dicom};
    let Some(root) = common::corpus() else { return };
    for name in [
        "ecgtoolkit/Example.scp",
        "ecgtoolkit/Example.xml",
        "wfdb/s0010_re.hea",
        "muse/muse_example1.xml",
        "philips/129DYPRG.XML",
        "philips/2020-5-18_15-48-11.xml",
    ] {
        let record = read_path(&root.join(name)).unwrap();
        let source = std::fs::read(root.join(name)).unwrap();
        let mut provenance = Provenance::from_source(&source);
        provenance.institution = Some("黄山县人民医院".into());
        let bytes = to_dicom(&record, &provenance).unwrap();
        assert_eq!(to_dicom(&record, &provenance).unwrap(), bytes, "{name}: conversion is deterministic");
        let back = telediag_ecg::read_bytes(&bytes).unwrap();
        assert_eq!(back.format, SourceFormat::DicomWaveform);
        assert_eq!(back.received_as, Some(record.format), "{name}: the conversion names the cart's format");
        assert_eq!(back.sampling_rate_hz, record.sampling_rate_hz, "{name}");
        assert_eq!(back.leads.len(), record.leads.len(), "{name}");
        for (a, b) in record.leads.iter().zip(&back.leads) {
            assert_eq!(a.label, b.label, "{name}");
            let worst = a.samples_uv.iter().zip(&b.samples_uv).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            assert!(worst <= 0.01, "{name} lead {}: differs by {worst} µV", a.label);
        }
        assert_eq!(back.patient.id, record.patient.id, "{name}");
        // Every global measurement but the P duration, which the conversion does not write.
        let without_p = |m: &telediag_ecg::DeviceMeasurements| telediag_ecg::DeviceMeasurements { p_ms: None, ..m.clone() };
        assert_eq!(without_p(&back.device.measurements), without_p(&record.device.measurements), "{name}");
        assert_eq!(back.device.statements, record.device.statements, "{name}");
    }
}
