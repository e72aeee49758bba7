//! The carts' own XML formats — GE MUSE, Philips and GE CardioSoft — read
//! from the shared corpus and checked against what each file says of
//! itself; and their damaged or hostile forms refused with the reason.

mod common;

use telediag_ecg::{EcgRecord, SourceFormat, read_bytes};

fn corpus_file(name: &str) -> Option<Vec<u8>> {
    Some(std::fs::read(common::corpus()?.join(name)).unwrap_or_else(|e| panic!("{name}: {e}")))
}

fn read_ok(what: &str, bytes: &[u8]) -> EcgRecord {
    read_bytes(bytes).unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn refused(what: &str, bytes: &[u8]) -> String {
    read_bytes(bytes).map(|_| ()).expect_err(what).to_string()
}

fn labels(record: &EcgRecord) -> Vec<&str> {
    record.leads.iter().map(|l| l.label.as_str()).collect()
}

/// The base64 text of the first `<WaveFormData>` after `<LeadID>{lead}` in
/// the `kind` (Rhythm or Median) waveform, decoded to its 16-bit samples.
fn muse_raw_samples(text: &str, kind: &str, lead: &str) -> Vec<i16> {
    use base64::Engine;
    let waveform = &text[text.find(&format!("<WaveformType>{kind}</WaveformType>")).unwrap()..];
    let lead_at = waveform.find(&format!("<LeadID>{lead}</LeadID>")).unwrap();
    let data = &waveform[lead_at..];
    let start = data.find("<WaveFormData>").unwrap() + "<WaveFormData>".len();
    let end = data.find("</WaveFormData>").unwrap();
    let encoded: String = data[start..end].chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    bytes.chunks_exact(2).map(|p| i16::from_le_bytes([p[0], p[1]])).collect()
}

#[test]
fn muse_exports_read_with_their_strip_median_and_measurements() {
    for (name, rate, pr, qrs, qt, qtc, axes) in [
        ("muse/muse_example1.xml", 48.0, 138.0, 96.0, 452.0, 403.0, (51.0, 20.0, 40.0)),
        ("muse/muse_example2.xml", 65.0, 184.0, 100.0, 420.0, 437.0, (42.0, -2.0, 12.0)),
    ] {
        let Some(bytes) = corpus_file(name) else { return };
        let record = read_ok(name, &bytes);
        assert_eq!(record.format, SourceFormat::GeMuse);
        assert_eq!((record.sampling_rate_hz, record.len()), (500.0, 5000), "{name}: 10 s at 500 Hz");
        assert_eq!(labels(&record), ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]);
        let derived: Vec<&str> = record.leads.iter().filter(|l| l.derived).map(|l| l.label.as_str()).collect();
        assert_eq!(derived, ["III", "aVR", "aVL", "aVF"], "{name}: the cart stores 8 leads");

        // Samples are the file's integers times 4.88 µV.
        let text = String::from_utf8_lossy(&bytes);
        for lead in ["I", "V3"] {
            let raw = muse_raw_samples(&text, "Rhythm", lead);
            let read = &record.lead(lead).unwrap().samples_uv;
            assert_eq!(raw.len(), read.len());
            assert!(raw.iter().zip(read).all(|(r, v)| (f64::from(*r) * 4.88 - f64::from(*v)).abs() < 1e-3), "{name} lead {lead}");
        }
        let (i, ii, iii) = (record.lead("I").unwrap(), record.lead("II").unwrap(), record.lead("III").unwrap());
        assert!((0..5000).all(|k| (iii.samples_uv[k] - (ii.samples_uv[k] - i.samples_uv[k])).abs() < 1e-2));

        let median = record.device.median.as_ref().expect("the cart's median beat");
        assert_eq!((median.sampling_rate_hz, median.leads.len(), median.leads[0].samples_uv.len()), (500.0, 8, 600));
        let raw = muse_raw_samples(&text, "Median", "II");
        assert_eq!(median.leads[1].samples_uv[300], (f64::from(raw[300]) * 4.88) as f32);

        let m = &record.device.measurements;
        assert_eq!((m.hr_bpm, m.pr_ms, m.qrs_ms, m.qt_ms, m.qtc_ms), (Some(rate), Some(pr), Some(qrs), Some(qt), Some(qtc)), "{name}");
        assert_eq!((m.p_axis_deg, m.qrs_axis_deg, m.t_axis_deg), (Some(axes.0), Some(axes.1), Some(axes.2)), "{name}");
        assert_eq!(record.device.manufacturer.as_deref(), Some("GE Healthcare"));
        assert_eq!(record.device.filters.as_deref(), Some("high-pass 0.16 Hz, low-pass 150 Hz, mains 60 Hz"));
        let beats = &record.device.qrs_times_ms;
        assert!(!beats.is_empty() && beats.windows(2).all(|w| w[0] < w[1]) && beats[beats.len() - 1] < 10_000.0, "{name}: {beats:?}");
    }
}

/// A MUSE export from a Chinese installation: demographics, the
/// acquisition, the interpretation — written as GE's DTD lays them out, in
/// the GB2312 the export declares.
#[test]
fn a_chinese_muse_export_reads_its_patient_acquisition_and_statements() {
    let Some(bytes) = corpus_file("muse/muse_example1.xml") else { return };
    let text = String::from_utf8(bytes).unwrap();
    let full = text.replacen("encoding=\"ISO-8859-1\"", "encoding=\"GB2312\"", 1).replacen(
        "<RestingECG>",
        "<RestingECG>
   <PatientDemographics>
      <PatientID>0012345</PatientID>
      <PatientAge>67</PatientAge>
      <AgeUnits>YEARS</AgeUnits>
      <DateofBirth>03-09-1957</DateofBirth>
      <Gender>FEMALE</Gender>
      <PatientLastName>王</PatientLastName>
      <PatientFirstName>秀英</PatientFirstName>
   </PatientDemographics>
   <TestDemographics>
      <DataType>RESTING</DataType>
      <Site>12</Site>
      <SiteName>县人民医院</SiteName>
      <AcquisitionDevice>MAC5500</AcquisitionDevice>
      <AcquisitionTime>08:31:05</AcquisitionTime>
      <AcquisitionDate>11-28-2024</AcquisitionDate>
   </TestDemographics>
   <Diagnosis>
      <Modality>RESTING</Modality>
      <DiagnosisStatement><StmtFlag>USERINSERT</StmtFlag><StmtText>窦性心动过缓</StmtText></DiagnosisStatement>
      <DiagnosisStatement><StmtFlag>ENDSLINE</StmtFlag><StmtText>伴窦性心律不齐</StmtText></DiagnosisStatement>
      <DiagnosisStatement><StmtFlag>ENDSLINE</StmtFlag><StmtText>Otherwise normal ECG</StmtText></DiagnosisStatement>
      <DiagnosisStatement><StmtText>When compared with ECG of</StmtText></DiagnosisStatement>
      <DiagnosisStatement><StmtText>21-NOV-2024 07:55,</StmtText></DiagnosisStatement>
   </Diagnosis>",
        1,
    );
    let (encoded, _, unmappable) = encoding_rs::GBK.encode(&full);
    assert!(!unmappable);
    let record = read_ok("GB2312 MUSE", &encoded);
    let p = &record.patient;
    assert_eq!(p.name.as_deref(), Some("王秀英"));
    assert_eq!(
        (p.id.as_deref(), p.sex.as_deref(), p.birth_date.as_deref(), p.age_years),
        (Some("0012345"), Some("F"), Some("19570309"), Some(67))
    );
    assert_eq!(record.acquired.as_deref(), Some("2024-11-28T08:31:05"));
    assert_eq!(record.device.model.as_deref(), Some("MAC5500"));
    assert_eq!(
        record.device.statements,
        ["窦性心动过缓 伴窦性心律不齐", "Otherwise normal ECG", "When compared with ECG of 21-NOV-2024 07:55,"],
        "statements join until ENDSLINE"
    );
}

#[test]
fn damaged_and_hostile_muse_files_are_refused_with_the_reason() {
    let Some(bytes) = corpus_file("muse/muse_example1.xml") else { return };
    let text = String::from_utf8(bytes.clone()).unwrap();
    // One sample changed inside lead I's rhythm data: its CRC-32 no longer matches.
    let rhythm = text.find("<WaveformType>Rhythm").unwrap();
    let data = rhythm + text[rhythm..].find("<WaveFormData>").unwrap() + "<WaveFormData>".len() + 400;
    let mut damaged = text.clone().into_bytes();
    damaged[data] = if damaged[data] == b'A' { b'B' } else { b'A' };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("one sample changed", damaged, "rhythm lead I is damaged: <LeadDataCRC32> says"),
        ("truncated", bytes[..bytes.len() / 2].to_vec(), "GE MUSE XML: broken XML"),
        (
            "no rhythm strip",
            text.replace("<WaveformType>Rhythm</WaveformType>", "<WaveformType>Other</WaveformType>").into_bytes(),
            "no <Waveform> of <WaveformType>Rhythm",
        ),
        (
            "byte count that lies",
            text.replacen("<LeadByteCountTotal>10000<", "<LeadByteCountTotal>99999999<", 1).into_bytes(),
            "<LeadByteCountTotal> says 99999999 bytes, <WaveFormData> holds 10000",
        ),
        ("not base64", text.replacen("<WaveFormData>", "<WaveFormData>*", 1).into_bytes(), "is not base64"),
        (
            "no amplitude step",
            text.replacen("<LeadAmplitudeUnitsPerBit>4.88</LeadAmplitudeUnitsPerBit>", "", 1).into_bytes(),
            "has no <LeadAmplitudeUnitsPerBit>",
        ),
        (
            "a baseline that is not a number",
            text.replacen("<FirstSampleBaseline>0<", "<FirstSampleBaseline>inf<", 1).into_bytes(),
            "<FirstSampleBaseline> must be a number, found \"inf\"",
        ),
        (
            "an external entity",
            text.replacen("\"restecg.dtd\">", "\"restecg.dtd\" [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>", 1)
                .replacen("<MuseVersion>", "<MuseVersion>&x;", 1)
                .into_bytes(),
            "declares entities",
        ),
        (
            "another vendor's root",
            b"<?xml version=\"1.0\"?><Holter/>".to_vec(),
            "expected <AnnotatedECG> (HL7 aECG), <RestingECG> (GE MUSE)",
        ),
    ];
    for (what, bytes, want) in cases {
        let err = refused(what, &bytes);
        assert!(err.contains(want), "{what}: {err}");
    }
}

/// A billion laughs in MUSE's clothing: refused before parsing, never
/// expanded.
#[test]
fn an_entity_expansion_bomb_is_refused_unexpanded() {
    let mut entities = String::from("<!ENTITY l0 \"lol\">");
    for level in 1..10 {
        entities.push_str(&format!("<!ENTITY l{level} \"{}\">", format!("&l{};", level - 1).repeat(10)));
    }
    let bomb = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE RestingECG SYSTEM \"restecg.dtd\" [{entities}]><RestingECG><MuseInfo>&l9;</MuseInfo></RestingECG>"
    );
    // Refused by the scan before parsing: nothing was expanded.
    let err = refused("bomb", bomb.as_bytes());
    assert!(err.contains("declares entities") && err.contains("refused unexpanded"), "{err}");
}

/// A CardioSoft 6.7x export, laid out element for element as the real
/// exports are (GE CardioSoft V6.71; no such file may be redistributed
/// here), carrying MUSE example 1's ECG requantised to CardioSoft's
/// 5 µV, and its measurements, in ISO8859-1 as CardioSoft declares.
fn cardiosoft_from(muse: &EcgRecord) -> Vec<u8> {
    let waveforms = |leads: &[telediag_ecg::Lead], indent: &str| -> String {
        leads
            .iter()
            .map(|l| {
                let values: Vec<String> = l.samples_uv.iter().map(|v| ((v / 5.0).round() as i32).to_string()).collect();
                let lines: Vec<String> = values.chunks(300).map(|c| c.join(",")).collect();
                format!("{indent}<WaveformData lead=\"{}\">{indent}\t{}</WaveformData>\n", l.label, lines.join(&format!(",\n{indent}\t")))
            })
            .collect()
    };
    let median = muse.device.median.as_ref().unwrap();
    let (i, ii) = (&median.leads[0].samples_uv, &median.leads[1].samples_uv);
    let derived = |label: &str, f: fn(f32, f32) -> f32| telediag_ecg::Lead {
        label: label.into(),
        samples_uv: i.iter().zip(ii).map(|(a, b)| f(*a, *b)).collect(),
        derived: true,
    };
    let mut median_leads = vec![median.leads[0].clone(), median.leads[1].clone()];
    median_leads.extend([
        derived("III", |a, b| b - a),
        derived("aVR", |a, b| -(a + b) / 2.0),
        derived("aVL", |a, b| a - b / 2.0),
        derived("aVF", |a, b| b - a / 2.0),
    ]);
    median_leads.extend(median.leads[2..].iter().cloned());
    let beats: String = muse
        .device
        .qrs_times_ms
        .iter()
        .map(|t| format!("\t\t\t<Time units=\"ms\">{t}</Time>\n\t\t\t<BeatClass>dominant</BeatClass>\n"))
        .collect();
    let text = format!(
        "<?xml version=\"1.0\" encoding=\"ISO8859-1\" ?>
<CardiologyXML>
\t<ObservationType>RestECG</ObservationType>
\t<ObservationDateTime>
\t\t<Hour>15</Hour>
\t\t<Minute>21</Minute>
\t\t<Second>27</Second>
\t\t<Day>11</Day>
\t\t<Month>12</Month>
\t\t<Year>2018</Year>
\t</ObservationDateTime>
\t<UID>
\t\t<DICOMStudyUID>1.2.840.113619.2.235.1</DICOMStudyUID>
\t</UID>
\t<ClinicalInfo>
\t\t<ReasonForStudy></ReasonForStudy>
\t\t<ObservationComment></ObservationComment>
\t\t<DeviceInfo>
\t\t\t<Desc>CS</Desc>
\t\t\t<SoftwareVer>V6.71</SoftwareVer>
\t\t\t<AnalysisVer>12SL V21</AnalysisVer>
\t\t</DeviceInfo>
\t</ClinicalInfo>
\t<PatientInfo>
\t\t<PID>0034567</PID>
\t\t<Name>
\t\t\t<FamilyName>Müller </FamilyName>
\t\t\t<GivenName>Zoë</GivenName>
\t\t</Name>
\t\t<Age units=\"YEARS\">61</Age>
\t\t<BirthDateTime>
\t\t\t<Day>3</Day>
\t\t\t<Month>2</Month>
\t\t\t<Year>1957</Year>
\t\t</BirthDateTime>
\t\t<Gender>MALE</Gender>
\t\t<Race>UNKNOWN</Race>
\t\t<PaceMaker>no</PaceMaker>
\t</PatientInfo>
\t<FilterSetting>
\t\t<CubicSpline>No</CubicSpline>
\t\t<Filter50Hz>Yes</Filter50Hz>
\t\t<Filter60Hz>No</Filter60Hz>
\t\t<LowPass units=\"Hz\">150</LowPass>
\t\t<HighPass units=\"Hz\">0.16</HighPass>
\t</FilterSetting>
\t<Device-Type>2</Device-Type>
\t<Interpretation>
\t\t<Diagnosis>
\t\t\t<DiagnosisText>Sinus bradycardia</DiagnosisText>
\t\t\t<DiagnosisText>---</DiagnosisText>
\t\t\t<DiagnosisText>ST &amp; T wave abnormality, consider lateral ischemia</DiagnosisText>
\t\t</Diagnosis>
\t\t<Conclusion>
\t\t\t<ConclusionText>Abnormal ECG</ConclusionText>
\t\t</Conclusion>
\t</Interpretation>
\t<RestingECGMeasurements>
\t\t<DiagnosisVersion>12SL V21</DiagnosisVersion>
\t\t<VentricularRate units=\"BPM\">48</VentricularRate>
\t\t<PQInterval units=\"ms\">138</PQInterval>
\t\t<PDuration units=\"ms\">106</PDuration>
\t\t<QRSDuration units=\"ms\">96</QRSDuration>
\t\t<QTInterval units=\"ms\">452</QTInterval>
\t\t<QTCInterval units=\"ms\">403</QTCInterval>
\t\t<RRInterval units=\"ms\">1242</RRInterval>
\t\t<PPInterval units=\"ms\">1250</PPInterval>
\t\t<SokolovLVHIndex units=\"mV\">2.6</SokolovLVHIndex>
\t\t<PAxis units=\"degrees\">51</PAxis>
\t\t<RAxis units=\"degrees\">20</RAxis>
\t\t<TAxis units=\"degrees\">40</TAxis>
\t\t<QRSNum>8</QRSNum>
\t\t<POnset units=\"ms\">294</POnset>
\t\t<POffset units=\"ms\">400</POffset>
\t\t<QOnset units=\"ms\">432</QOnset>
\t\t<QOffset units=\"ms\">528</QOffset>
\t\t<TOffset units=\"ms\">884</TOffset>
\t\t<MedianSamples>
\t\t\t<NumberOfLeads>12</NumberOfLeads>
\t\t\t<SampleRate units=\"Hz\">500</SampleRate>
\t\t\t<ChannelSampleCountTotal>600</ChannelSampleCountTotal>
\t\t\t<Resolution units=\"uVperLsb\">5</Resolution>
\t\t\t<FirstValid units=\"Sample\">0</FirstValid>
\t\t\t<LastValid units=\"Sample\">520</LastValid>
{}\t\t</MedianSamples>
\t</RestingECGMeasurements>
\t<StripData>
\t\t<NumberOfLeads>12</NumberOfLeads>
\t\t<SampleRate units=\"Hz\">500</SampleRate>
\t\t<ChannelSampleCountTotal>5000</ChannelSampleCountTotal>
\t\t<Resolution units=\"uVperLsb\">5</Resolution>
{}\t\t<ArrhythmiaResults>
{beats}\t\t</ArrhythmiaResults>
\t</StripData>
\t<Export></Export>
</CardiologyXML>
",
        waveforms(&median_leads, "\t\t\t"),
        waveforms(&muse.leads, "\t\t"),
    );
    let (latin1, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&text);
    assert!(!unmappable);
    latin1.into_owned()
}

#[test]
fn a_cardiosoft_export_reads_with_its_strip_median_and_statements() {
    let Some(bytes) = corpus_file("muse/muse_example1.xml") else { return };
    let muse = read_ok("MUSE", &bytes);
    let file = cardiosoft_from(&muse);
    assert!(file.contains(&0xFC), "ü is one ISO8859-1 byte");
    let record = read_ok("CardioSoft", &file);
    assert_eq!(record.format, SourceFormat::GeCardioSoft);
    assert_eq!((record.sampling_rate_hz, record.len()), (500.0, 5000));
    assert_eq!(labels(&record), ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]);
    assert!(record.leads.iter().all(|l| !l.derived), "CardioSoft stores all twelve leads");
    for (ours, theirs) in record.leads.iter().zip(&muse.leads) {
        let worst = ours.samples_uv.iter().zip(&theirs.samples_uv).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst <= 2.5, "lead {}: within half of CardioSoft's 5 µV step, found {worst}", ours.label);
    }
    let median = record.device.median.as_ref().unwrap();
    assert_eq!((median.sampling_rate_hz, median.leads.len(), median.leads[0].samples_uv.len()), (500.0, 12, 600));

    let p = &record.patient;
    assert_eq!((p.name.as_deref(), p.id.as_deref(), p.sex.as_deref()), (Some("Müller Zoë"), Some("0034567"), Some("M")));
    assert_eq!((p.birth_date.as_deref(), p.age_years), (Some("19570203"), Some(61)));
    assert_eq!(record.acquired.as_deref(), Some("2018-12-11T15:21:27"));
    assert_eq!(record.device.model.as_deref(), Some("CardioSoft V6.71"));
    assert_eq!(record.device.filters.as_deref(), Some("high-pass 0.16 Hz, low-pass 150 Hz, mains 50 Hz"));
    assert_eq!(
        record.device.statements,
        ["Sinus bradycardia", "ST & T wave abnormality, consider lateral ischemia", "Abnormal ECG"],
        "the --- separator is not a statement"
    );
    let m = &record.device.measurements;
    assert_eq!((m.hr_bpm, m.rr_ms, m.pr_ms, m.p_ms, m.qrs_ms), (Some(48.0), Some(1242.0), Some(138.0), Some(106.0), Some(96.0)));
    assert_eq!(
        (m.qt_ms, m.qtc_ms, m.p_axis_deg, m.qrs_axis_deg, m.t_axis_deg),
        (Some(452.0), Some(403.0), Some(51.0), Some(20.0), Some(40.0))
    );
    assert_eq!(record.device.qrs_times_ms, muse.device.qrs_times_ms);
}

#[test]
fn damaged_cardiosoft_files_are_refused_with_the_reason() {
    let Some(bytes) = corpus_file("muse/muse_example1.xml") else { return };
    let file = String::from_utf8_lossy(&cardiosoft_from(&read_ok("MUSE", &bytes))).into_owned();
    let strip = file.find("<StripData>").unwrap();
    let (head, tail) = file.split_at(strip);
    // Lead I's second value removed, with its comma.
    let first = tail.find(',').unwrap();
    let second = first + 1 + tail[first + 1..].find(',').unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "a sample missing",
            format!("{head}{}{}", &tail[..first], &tail[second..]),
            "strip lead I: <ChannelSampleCountTotal> says 5000 samples, the lead holds 4999",
        ),
        ("a sample that is not a number", format!("{head}{}", tail.replacen(",", ",x", 1)), "strip lead I: value 2 is \"x"),
        ("no resolution", file.replacen("<Resolution units=\"uVperLsb\">5</Resolution>", "", 2), "has no <Resolution>"),
        ("truncated", file[..file.len() / 2].to_owned(), "GE CardioSoft XML: broken XML"),
        ("no strip", format!("{head}</CardiologyXML>"), "no <StripData>"),
        ("a lead without its name", file.replacen("<WaveformData lead=\"V2\">", "<WaveformData>", 1), "has no lead attribute"),
    ];
    for (what, text, want) in cases {
        let err = refused(what, text.as_bytes());
        assert!(err.contains(want), "{what}: {err}");
    }

    // Units: any spelling of the ones CardioSoft writes is read as that unit;
    // a measurement in another unit is left out with a warning.
    let other_units = file
        .replace("<Resolution units=\"uVperLsb\">5</Resolution>", "<Resolution units=\"MVPERLSB\">0,005</Resolution>")
        .replace("<QTInterval units=\"ms\">452", "<QTInterval units=\"s\">0.452")
        .replace("<PAxis units=\"degrees\">51", "<PAxis units=\"grad\">57");
    let record = read_ok("other units", other_units.as_bytes());
    let original = read_ok("CardioSoft", file.as_bytes());
    assert_eq!(record.leads[0].samples_uv, original.leads[0].samples_uv, "0,005 mV per step is 5 µV");
    assert_eq!((record.device.measurements.qt_ms, record.device.measurements.p_axis_deg), (Some(452.0), None));
    assert!(record.warnings.iter().any(|w| w.contains("<PAxis> in \"grad\" is left out")), "{:?}", record.warnings);
}

/// Philips files of the three schema versions, decoded sample for sample
/// as sierra-ecg-tools' reference decoders decode them (sums and first
/// samples computed by its Python port with C's truncating division).
#[test]
fn philips_files_of_three_schema_versions_decode_sample_for_sample() {
    struct Expected {
        name: &'static str,
        ecg_samples: usize,
        sums: [i64; 12],
        first: [[i32; 10]; 3],
        device: (f64, f64, f64, f64, f64, (f64, f64, f64)),
        statements: &'static [&'static str],
        model: &'static str,
        acquired: &'static str,
        median: Option<(f64, usize)>,
    }
    let files = [
        Expected {
            name: "philips/129DYPRG.XML",
            ecg_samples: 5264,
            sums: [-4169, -6716, -1513, 5083, 197, -4049, 855, 1612, -18, -432, -1260, -1256],
            first: [
                [48, 44, 40, 34, 31, 28, 25, 23, 21, 20],
                [117, 115, 111, 107, 105, 103, 99, 94, 91, 88],
                [69, 70, 71, 72, 73, 74, 73, 70, 69, 68],
            ],
            device: (41.0, 151.0, 135.0, 476.0, 393.0, (66.0, -21.0, 59.0)),
            statements: &[
                "Sinus bradycardia (rate< 50)",
                "Nonspecific intraventricular conduction delay (QRSd >115mS, not LBBB/RBBB)",
                "Inferior infarct, acute (LCx) (ST>0.10mV, II III aVF, STd V1-V3)",
                ">>> Acute MI <<<",
                "ABNORMAL ECG",
            ],
            model: "HeartstartMRx",
            acquired: "2011-12-01T07:27:34",
            median: None,
        },
        Expected {
            name: "philips/3191723_ZZDEMOPTONLY_1-04_orig.xml",
            ecg_samples: 5300,
            sums: [-7816, -132595, -124779, 69452, 57697, -129269, -646, -5209, 38436, -78110, 20705, 20945],
            first: [[33, 33, 30, 30, 30, 30, 29, 28, 29, 30], [38, 38, 34, 35, 35, 35, 37, 35, 35, 35], [5, 5, 4, 5, 5, 5, 8, 7, 6, 5]],
            device: (84.0, 144.0, 84.0, 352.0, 417.0, (81.0, 78.0, 67.0)),
            statements: &[
                "SINUS RHYTHM (normal P axis, V-rate 60-99)",
                "PROBABLE LEFT VENTRICULAR HYPERTROPHY ((RaVL+SV3)xQRSd >280)",
                "ANTERIOR ST ELEVATION, PROBABLY DUE TO LVH (ST >0.20 mV in V1-V4 & LVH)",
                "ABNORMAL ECG",
            ],
            model: "PageWriter Touch",
            acquired: "2010-01-19T15:19:22",
            median: Some((500.0, 600)),
        },
        Expected {
            name: "philips/2020-5-18_15-48-11.xml",
            ecg_samples: 5300,
            sums: [-37788, 471027, 508815, -215359, -272055, 488875, -9184, -63323, -134705, -96461, -65343, -65883],
            first: [
                [-2, -1, 0, -1, -1, -3, -10, -11, -10, -10],
                [139, 137, 134, 129, 129, 127, 120, 120, 118, 114],
                [141, 138, 134, 130, 130, 130, 130, 131, 128, 124],
            ],
            device: (64.0, 164.0, 102.0, 399.0, 412.0, (27.0, 22.0, 80.0)),
            statements: &[
                "Sinus rhythm (normal P axis, V-rate 50-99)",
                "Abnormal R-wave progression, early transition (QRS area>0 in V2)",
                "OTHERWISE NORMAL ECG",
            ],
            model: "PageWriter TC",
            acquired: "2020-05-18T15:48:11",
            median: Some((1000.0, 1200)),
        },
    ];
    for want in files {
        let Some(bytes) = corpus_file(want.name) else { return };
        let name = want.name;
        let record = read_ok(name, &bytes);
        assert_eq!(record.format, SourceFormat::PhilipsXml);
        assert_eq!((record.sampling_rate_hz, record.len()), (500.0, want.ecg_samples), "{name}: the calibration tail is cut");
        assert_eq!(labels(&record), ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]);
        assert!(record.leads.iter().all(|l| !l.derived), "{name}: all twelve stored (four as residuals)");
        let steps = |v: f32| (v / 5.0).round() as i64;
        let sums: Vec<i64> = record.leads.iter().map(|l| l.samples_uv[..5000].iter().map(|v| steps(*v)).sum()).collect();
        assert_eq!(sums, want.sums, "{name}");
        for (lead, first) in record.leads.iter().zip(want.first) {
            let found: Vec<i32> = lead.samples_uv[..10].iter().map(|v| steps(*v) as i32).collect();
            assert_eq!(found, first, "{name} lead {}", lead.label);
        }
        let m = &record.device.measurements;
        let (hr, pr, qrs, qt, qtc, (p, r, t)) = want.device;
        assert_eq!((m.hr_bpm, m.pr_ms, m.qrs_ms, m.qt_ms, m.qtc_ms), (Some(hr), Some(pr), Some(qrs), Some(qt), Some(qtc)), "{name}");
        assert_eq!((m.p_axis_deg, m.qrs_axis_deg, m.t_axis_deg), (Some(p), Some(r), Some(t)), "{name}");
        assert_eq!(record.device.statements, want.statements, "{name}");
        assert_eq!((record.device.model.as_deref(), record.acquired.as_deref()), (Some(want.model), Some(want.acquired)), "{name}");
        let median = record.device.median.as_ref().map(|m| (m.sampling_rate_hz, m.leads[0].samples_uv.len()));
        assert_eq!(median, want.median, "{name}: the cart's representative beats, without their padding");
    }
}

#[test]
fn philips_patients_are_read_from_utf16() {
    let Some(bytes) = corpus_file("philips/3191723_ZZDEMOPTONLY_1-04_orig.xml") else { return };
    assert!(bytes.starts_with(b"\xFF\xFE"), "a UTF-16 export with its byte-order mark");
    let p = read_ok("1.04", &bytes).patient;
    assert_eq!(
        (p.id.as_deref(), p.name.as_deref(), p.sex.as_deref(), p.birth_date.as_deref()),
        (Some("9999"), Some("ZZDEMOPTONLY ADULT"), Some("M"), Some("19500101"))
    );
    let Some(bytes) = corpus_file("philips/129DYPRG.XML") else { return };
    let p = read_ok("1.03", &bytes).patient;
    assert_eq!((p.id.as_deref(), p.name, p.sex.as_deref(), p.age_years), (Some("1112010721168bdc"), None, Some("M"), Some(50)));
}

#[test]
fn damaged_and_hostile_philips_files_are_refused_with_the_reason() {
    let Some(bytes) = corpus_file("philips/129DYPRG.XML") else { return };
    let text = String::from_utf8(bytes).unwrap();
    let data_at = text.find("<parsedwaveforms").unwrap();
    let data_at = data_at + text[data_at..].find('>').unwrap() + 1;
    let data_end = text.find("</parsedwaveforms>").unwrap();
    let with_data = |data: &str| format!("{}{data}{}", &text[..data_at], &text[data_end..]);
    let original: String = text[data_at..data_end].chars().filter(|c| !c.is_whitespace()).collect();
    let cases: Vec<(&str, String, &str)> = vec![
        ("the waveforms cut short", with_data(&original[..original.len() / 3 / 4 * 4]), "XLI waveforms: "),
        ("not base64", with_data("@@@@"), "<parsedwaveforms> is not base64"),
        (
            "a duration of years",
            text.replacen("durationperchannel=\"11000\"", "durationperchannel=\"99999999999\"", 1),
            "durationperchannel must be above 0 and at most 120000 ms",
        ),
        (
            "another compression",
            text.replacen("compressmethod=\"XLI\"", "compressmethod=\"LZ77\"", 1),
            "compression \"LZ77\" is not one Philips carts write",
        ),
        (
            "no waveforms",
            text.replacen("<parsedwaveforms", "<unparsedwaveforms", 1).replacen("</parsedwaveforms>", "</unparsedwaveforms>", 1),
            "no <parsedwaveforms>",
        ),
        ("truncated XML", text[..text.len() / 2].to_owned(), "Philips XML: broken XML"),
        ("not one sample", text.replacen("durationperchannel=\"11000\"", "durationperchannel=\"0.4\"", 1), "is not one sample"),
        ("unsigned samples", text.replacen("<parsedwaveforms ", "<parsedwaveforms signalsigned=\"False\" ", 1), "unsigned samples"),
        ("a hundred leads", text.replacen("<numberchannelsvalid>12<", "<numberchannelsvalid>100<", 1), "a strip holds 1 to 16"),
    ];
    for (what, text, want) in cases {
        let err = refused(what, text.as_bytes());
        assert!(err.contains(want), "{what}: {err}");
    }
}
