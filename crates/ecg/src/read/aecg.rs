//! HL7 v3 Annotated ECG (aECG, FDA XML): the RHYTHM series' sequence set,
//! with a time sequence giving the sampling increment and one SLIST_PQ
//! sequence per lead (physical = origin + scale × digit). Device
//! measurements and statements come from the series' annotation set.

use roxmltree::Node;

use super::xml::{child, children, descendant};

use crate::record::{DeviceMeasurements, DeviceReport, EcgError, EcgRecord, Lead, Patient, SourceFormat};

const FORMAT: SourceFormat = SourceFormat::HL7Aecg;

fn invalid(reason: impl Into<String>) -> EcgError {
    EcgError::invalid(FORMAT, reason)
}

/// Reads an aECG document.
pub fn read(bytes: &[u8]) -> Result<EcgRecord, EcgError> {
    read_text(&super::xml::decode(bytes).map_err(|e| invalid(e.to_string()))?)
}

/// Reads an aECG document's text.
pub fn read_text(text: &str) -> Result<EcgRecord, EcgError> {
    let document = super::xml::parse_rooted(text, "AnnotatedECG").map_err(invalid)?;
    let root = document.root_element();
    let series: Vec<Node> = children(root, "component").filter_map(|c| child(c, "series")).collect();
    let series = series
        .iter()
        .find(|s| child(**s, "code").and_then(|c| c.attribute("code")) == Some("RHYTHM"))
        .or(series.first())
        .copied()
        .ok_or_else(|| invalid("no <component><series>: the document holds no waveforms"))?;
    let sequence_set = children(series, "component")
        .find_map(|c| child(c, "sequenceSet"))
        .ok_or_else(|| invalid("the rhythm series has no <sequenceSet>"))?;

    let mut rate = None;
    let mut leads = Vec::new();
    for sequence in children(sequence_set, "component").filter_map(|c| child(c, "sequence")) {
        let code = child(sequence, "code").and_then(|c| c.attribute("code")).unwrap_or_default();
        let Some(value) = child(sequence, "value") else { continue };
        if code.starts_with("TIME_") {
            let increment = child(value, "increment").ok_or_else(|| invalid(format!("{code} sequence has no <increment>")))?;
            let step = quantity(increment, "s")?;
            if step <= 0.0 {
                return Err(invalid(format!("sampling increment must be positive, found {step} s")));
            }
            rate = Some(1.0 / step);
        } else {
            leads.push(lead(code, value)?);
        }
    }
    let rate = rate.ok_or_else(|| invalid("no TIME_ABSOLUTE or TIME_RELATIVE sequence gives the sampling rate"))?;
    // 1/0.002 s is 499.99999999999994 in binary floating point.
    let rate = if (rate - rate.round()).abs() < 1e-6 { rate.round() } else { rate };

    let record = EcgRecord {
        format: FORMAT,
        sampling_rate_hz: rate,
        leads,
        patient: patient(root),
        acquired: descendant(root, "effectiveTime")
            .and_then(|t| child(t, "center").or_else(|| child(t, "low")))
            .and_then(|c| c.attribute("value"))
            .and_then(|v| super::dicom::format_date_time(&v[..v.len().min(8)], v.get(8..))),
        device: device(series),
        warnings: Vec::new(),
        received_as: None,
    };
    crate::leads::finish(record)
}

fn lead(code: &str, value: Node) -> Result<Lead, EcgError> {
    let origin = child(value, "origin").map(|o| quantity(o, "uV")).transpose()?.unwrap_or(0.0);
    let scale = child(value, "scale").ok_or_else(|| invalid(format!("lead {code} has no <scale>"))).and_then(|s| quantity(s, "uV"))?;
    let digits = child(value, "digits").and_then(|d| d.text()).unwrap_or_default();
    let samples_uv = digits
        .split_ascii_whitespace()
        .map(|d| d.parse::<f64>().map(|v| (origin + scale * v) as f32).map_err(|_| invalid(format!("lead {code}: {d:?} is not a number"))))
        .collect::<Result<Vec<f32>, EcgError>>()?;
    Ok(Lead { label: code.to_string(), samples_uv, derived: false })
}

/// A `value`/`unit` pair converted to `want` (seconds or microvolts).
fn quantity(node: Node, want: &str) -> Result<f64, EcgError> {
    let raw = node.attribute("value").unwrap_or_default();
    let value: f64 = raw.parse().map_err(|_| invalid(format!("<{}> value {raw:?} is not a number", node.tag_name().name())))?;
    let unit = node.attribute("unit").unwrap_or(want);
    let factor = match (want, unit) {
        ("s", "s") | ("uV", "uV") => 1.0,
        ("s", "ms") => 1e-3,
        ("uV", "mV") => 1e3,
        ("uV", "nV") => 1e-3,
        ("uV", "V") => 1e6,
        _ => return Err(invalid(format!("unit {unit:?} where {want} was expected"))),
    };
    Ok(value * factor)
}

fn patient(root: Node) -> Patient {
    let person = descendant(root, "subjectDemographicPerson");
    let name = person.and_then(|p| child(p, "name")).map(|n| {
        let parts: Vec<&str> = n.descendants().filter_map(|d| d.text()).map(str::trim).filter(|t| !t.is_empty()).collect();
        parts.join(" ")
    });
    Patient {
        name: name.filter(|n| !n.is_empty()),
        id: descendant(root, "trialSubject").and_then(|s| child(s, "id")).and_then(|id| id.attribute("extension")).map(str::to_string),
        sex: person
            .and_then(|p| child(p, "administrativeGenderCode"))
            .and_then(|g| g.attribute("code"))
            .filter(|c| matches!(*c, "M" | "F"))
            .map(str::to_string),
        birth_date: person.and_then(|p| child(p, "birthTime")).and_then(|b| b.attribute("value")).map(|v| v.chars().take(8).collect()),
        age_years: None,
    }
}

fn device(series: Node) -> DeviceReport {
    let mut report = DeviceReport {
        model: descendant(series, "manufacturerModelName").and_then(|n| n.text()).map(|t| t.trim().to_string()),
        manufacturer: descendant(series, "manufacturerOrganization")
            .and_then(|o| child(o, "name"))
            .and_then(|n| n.text())
            .map(|t| t.trim().to_string()),
        ..Default::default()
    };
    for annotation in series.descendants().filter(|n| n.tag_name().name() == "annotation") {
        let Some(code) = child(annotation, "code").and_then(|c| c.attribute("code")) else { continue };
        let Some(value) = child(annotation, "value") else { continue };
        match code {
            "MDC_ECG_INTERPRETATION_STATEMENT" | "MDC_ECG_INTERPRETATION" => {
                if let Some(text) = value.text().map(str::trim).filter(|t| !t.is_empty()) {
                    report.statements.push(text.to_string());
                }
            }
            "MDC_ECG_RHY" => {
                if let Some(name) = value.attribute("displayName") {
                    report.statements.push(name.to_string());
                }
            }
            _ => {
                let number = value.attribute("value").and_then(|v| v.parse::<f64>().ok());
                if let Some(number) = number {
                    let in_ms = match value.attribute("unit") {
                        Some("s") => number * 1000.0,
                        _ => number,
                    };
                    set_measurement(&mut report.measurements, code, in_ms, number);
                }
            }
        }
    }
    report
}

/// The first (global) value of each MDC measurement; per-beat and per-lead
/// repeats later in the document are not kept.
fn set_measurement(m: &mut DeviceMeasurements, code: &str, in_ms: f64, raw: f64) {
    let (slot, value) = match code {
        "MDC_ECG_TIME_PD_PR" => (&mut m.pr_ms, in_ms),
        "MDC_ECG_TIME_PD_P" => (&mut m.p_ms, in_ms),
        "MDC_ECG_TIME_PD_QRS" => (&mut m.qrs_ms, in_ms),
        "MDC_ECG_TIME_PD_QT" => (&mut m.qt_ms, in_ms),
        "MDC_ECG_TIME_PD_QTc" | "MDC_ECG_TIME_PD_QTcB" => (&mut m.qtc_ms, in_ms),
        "MDC_ECG_TIME_PD_RR" => (&mut m.rr_ms, in_ms),
        "MDC_ECG_HEART_RATE" => (&mut m.hr_bpm, raw),
        "MDC_ECG_ANGLE_P_FRONT" => (&mut m.p_axis_deg, raw),
        "MDC_ECG_ANGLE_QRS_FRONT" => (&mut m.qrs_axis_deg, raw),
        "MDC_ECG_ANGLE_T_FRONT" => (&mut m.t_axis_deg, raw),
        _ => return,
    };
    slot.get_or_insert(value);
}

#[cfg(test)]
mod tests {
    /// 4,000 nested elements in 28 KB overflowed a server thread's stack.
    #[test]
    fn deep_nesting_is_refused_on_a_small_stack() {
        let depth = 4000;
        let mut xml = String::from("<AnnotatedECG>");
        xml.push_str(&"<component>".repeat(depth));
        xml.push_str(&"</component>".repeat(depth));
        xml.push_str("</AnnotatedECG>");
        let result =
            std::thread::Builder::new().stack_size(256 * 1024).spawn(move || super::read(xml.as_bytes()).map(|_| ())).unwrap().join();
        let err = result.expect("the reader must not overflow its stack").unwrap_err().to_string();
        assert!(err.contains("nested"), "{err}");
    }
}
