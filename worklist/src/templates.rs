//! Report templates per modality and body part: the three sections a
//! Chinese report form has (检查方法, 检查所见, 检查结论), pre-written as a
//! normal study reads, for the doctor to edit. The ECG template is filled
//! from the measurements of the tracing instead, for the doctor to confirm.

use serde::Serialize;

/// Text the template wrote for the doctor to confirm or replace, and values
/// it could not fill: a report still holding one is not signed (the
/// workflow's rule, [`placeholder_in`]).
pub use telediag_workflow::reports::{BLANK, TO_CONFIRM, placeholder_in};

/// The usual wording of a frontal QRS axis (degrees, any turn): normal
/// −30°…+90°, left −30°…−90°, right +90°…+180°, and −90°…−180° extreme
/// (indeterminate, "northwest") — not a left deviation.
pub fn axis_wording(degrees: f64) -> Option<&'static str> {
    let a = (degrees + 180.0).rem_euclid(360.0) - 180.0; // (−180, 180]
    let a = if a == -180.0 { 180.0 } else { a };
    match a {
        a if (-30.0..=90.0).contains(&a) => None,
        a if (-90.0..-30.0).contains(&a) => Some("电轴左偏"),
        a if a > 90.0 => Some("电轴右偏"),
        _ => Some("电轴极度偏移（不确定电轴）"),
    }
}

/// A starting text for a report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub method: String,
    pub findings: String,
    pub conclusion: String,
}

struct Stock {
    id: &'static str,
    modalities: &'static [&'static str],
    /// Matched against Body Part Examined and the study description; empty matches any.
    body_parts: &'static [&'static str],
    name: &'static str,
    method: &'static str,
    findings: &'static str,
    conclusion: &'static str,
}

const STOCK: &[Stock] = &[
    Stock {
        id: "ct-head",
        modalities: &["CT"],
        body_parts: &["HEAD", "BRAIN", "SKULL", "头", "颅"],
        name: "头颅 CT 平扫",
        method: "头颅 CT 平扫，层厚 5 mm。",
        findings: "脑实质内未见异常密度影，灰白质分界清楚。脑室系统大小形态正常，脑沟、脑裂、脑池未见增宽。中线结构居中。颅骨未见骨折。",
        conclusion: "头颅 CT 平扫未见明显异常。",
    },
    Stock {
        id: "ct-chest",
        modalities: &["CT"],
        body_parts: &["CHEST", "THORAX", "LUNG", "胸", "肺"],
        name: "胸部 CT 平扫",
        method: "胸部 CT 平扫，层厚 5 mm，肺窗及纵隔窗观察。",
        findings: "双肺纹理清晰，走行自然，肺野内未见明确实质性病变。气管及主支气管通畅。纵隔居中，纵隔内未见肿大淋巴结。心影大小形态未见异常。双侧胸腔未见积液。",
        conclusion: "胸部 CT 平扫未见明显异常。",
    },
    Stock {
        id: "ct-abdomen",
        modalities: &["CT"],
        body_parts: &["ABDOMEN", "PELVIS", "LIVER", "腹", "盆"],
        name: "腹部 CT 平扫",
        method: "上腹部 CT 平扫，层厚 5 mm。",
        findings: "肝脏大小形态正常，肝实质密度均匀，未见异常密度灶。胆囊不大，壁不厚。胰腺、脾脏、双肾形态密度未见异常。腹膜后未见肿大淋巴结。",
        conclusion: "上腹部 CT 平扫未见明显异常。",
    },
    Stock { id: "ct", modalities: &["CT"], body_parts: &[], name: "CT 检查", method: "CT 平扫。", findings: "", conclusion: "" },
    Stock {
        id: "mr-brain",
        modalities: &["MR"],
        body_parts: &["HEAD", "BRAIN", "头", "颅"],
        name: "头颅 MR 平扫",
        method: "头颅 MR 平扫：T1WI、T2WI、FLAIR、DWI 序列。",
        findings: "脑实质内未见异常信号，DWI 未见弥散受限。脑室系统大小形态正常。中线结构居中。",
        conclusion: "头颅 MR 平扫未见明显异常。",
    },
    Stock { id: "mr", modalities: &["MR"], body_parts: &[], name: "MR 检查", method: "MR 平扫。", findings: "", conclusion: "" },
    Stock {
        id: "dx-chest",
        modalities: &["CR", "DX", "DR"],
        body_parts: &["CHEST", "THORAX", "LUNG", "胸", "肺"],
        name: "胸部正位片",
        method: "胸部正位 X 线摄影。",
        findings: "胸廓对称，气管居中。双肺纹理清晰，肺野内未见实质性病变。双肺门不大。心影大小形态正常。双膈面光整，肋膈角锐利。",
        conclusion: "心、肺、膈未见明显异常。",
    },
    Stock {
        id: "dx",
        modalities: &["CR", "DX", "DR", "MG", "RF", "XA"],
        body_parts: &[],
        name: "X 线摄影",
        method: "X 线摄影。",
        findings: "",
        conclusion: "",
    },
    Stock {
        id: "us-abdomen",
        modalities: &["US"],
        body_parts: &[],
        name: "腹部超声",
        method: "腹部常规超声检查。",
        findings: "肝脏形态大小正常，包膜光滑，实质回声均匀。胆囊大小正常，壁光滑，腔内未见异常回声。胰腺、脾脏、双肾未见明显异常。",
        conclusion: "腹部超声未见明显异常。",
    },
];

/// The template for a study: the first whose modality matches and whose
/// body part (if any listed) is named by the study.
pub fn for_study(modality: Option<&str>, body_part: Option<&str>, description: Option<&str>) -> Template {
    let modality = modality.unwrap_or("");
    let named = format!("{} {}", body_part.unwrap_or(""), description.unwrap_or("")).to_uppercase();
    let stock = STOCK
        .iter()
        .find(|t| t.modalities.contains(&modality) && (t.body_parts.is_empty() || t.body_parts.iter().any(|b| named.contains(b))));
    match stock {
        Some(t) => Template {
            id: t.id.into(),
            name: t.name.into(),
            method: t.method.into(),
            findings: t.findings.into(),
            conclusion: t.conclusion.into(),
        },
        None => Template {
            id: "generic".into(),
            name: format!("{modality} 检查"),
            method: String::new(),
            findings: String::new(),
            conclusion: String::new(),
        },
    }
}

/// The stock templates a reader may switch to for a study of `modality`
/// (none for ECG, whose template is written from the tracing's measurements).
pub fn choices(modality: &str) -> Vec<Template> {
    STOCK
        .iter()
        .filter(|t| t.modalities.contains(&modality))
        .map(|t| Template {
            id: t.id.into(),
            name: t.name.into(),
            method: t.method.into(),
            findings: t.findings.into(),
            conclusion: t.conclusion.into(),
        })
        .collect()
}

/// A sentence a reader inserts with one click into a section of the report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Phrase {
    /// `findings` (检查所见) or `conclusion` (检查结论).
    pub section: &'static str,
    pub text: &'static str,
}

const FINDINGS: &str = "findings";
const CONCLUSION: &str = "conclusion";

/// The phrases readers of `modality` use most, findings first: abnormal
/// findings a normal template does not hold, and the usual advice.
pub fn phrases(modality: &str) -> Vec<Phrase> {
    let own: &[(&str, &str)] = match modality {
        "CT" => &[
            (FINDINGS, "双肺见散在斑片状磨玻璃密度影，边界模糊。"),
            (FINDINGS, "肺内见结节影，直径约＿＿ mm，边缘光整。"),
            (FINDINGS, "左侧基底节区见斑片状低密度影，边界欠清。"),
            (FINDINGS, "颅板下见新月形高密度影，邻近脑组织受压。"),
            (FINDINGS, "肝内见类圆形低密度灶，边界清楚，CT 值约＿＿ HU。"),
            (FINDINGS, "双侧胸腔见少量弧形液体密度影。"),
            (CONCLUSION, "考虑肺部感染，建议治疗后复查。"),
            (CONCLUSION, "腔隙性脑梗死。"),
            (CONCLUSION, "硬膜下血肿，请结合临床。"),
            (CONCLUSION, "肝囊肿可能。"),
            (CONCLUSION, "建议增强扫描进一步检查。"),
        ],
        "MR" => &[
            (FINDINGS, "双侧侧脑室旁见斑点状长 T1 长 T2 信号，FLAIR 呈高信号。"),
            (FINDINGS, "DWI 见片状高信号，ADC 值减低。"),
            (CONCLUSION, "脑白质脱髓鞘改变。"),
            (CONCLUSION, "急性脑梗死。"),
            (CONCLUSION, "建议增强扫描进一步检查。"),
        ],
        "CR" | "DX" | "DR" => &[
            (FINDINGS, "右下肺野见斑片状模糊影。"),
            (FINDINGS, "心影增大，心胸比约＿＿。"),
            (FINDINGS, "左侧肋膈角变钝。"),
            (FINDINGS, "主动脉结突出，可见钙化。"),
            (CONCLUSION, "右下肺炎症，建议治疗后复查。"),
            (CONCLUSION, "心影增大。"),
            (CONCLUSION, "左侧少量胸腔积液。"),
            (CONCLUSION, "主动脉硬化。"),
        ],
        "US" => &[
            (FINDINGS, "肝实质回声细密增强，后场回声衰减。"),
            (FINDINGS, "胆囊腔内见强回声团，后方伴声影，随体位移动。"),
            (CONCLUSION, "脂肪肝。"),
            (CONCLUSION, "胆囊结石。"),
        ],
        "ECG" => &[
            (CONCLUSION, "窦性心律。"),
            (CONCLUSION, "窦性心动过速。"),
            (CONCLUSION, "窦性心动过缓。"),
            (CONCLUSION, "心房颤动。"),
            (CONCLUSION, "室性早搏。"),
            (CONCLUSION, "房性早搏。"),
            (CONCLUSION, "一度房室传导阻滞。"),
            (CONCLUSION, "完全性右束支传导阻滞。"),
            (CONCLUSION, "左心室高电压。"),
            (CONCLUSION, "ST-T 改变。"),
            (CONCLUSION, "正常心电图。"),
        ],
        _ => &[],
    };
    let common: &[(&str, &str)] = &[(CONCLUSION, "请结合临床。"), (CONCLUSION, "建议复查。")];
    own.iter().chain(common).map(|&(section, text)| Phrase { section, text }).collect()
}

/// The ECG template, filled from the stored analysis (`ecg-measurements`,
/// read as the ECG crate's typed summary): rhythm, rate, PR, QRS, QT/QTc,
/// axes, and the device's own statements. Without measurements, the same
/// sections with blanks to fill.
pub fn for_ecg(analysis: Option<&telediag_ecg::AnalysisSummary>) -> Template {
    let method = "常规 12 导联心电图，走纸速度 25 mm/s，增益 10 mm/mV。".to_string();
    let Some(a) = analysis else {
        return Template {
            id: "ecg".into(),
            name: "常规心电图".into(),
            method,
            findings: format!(
                "心律：{BLANK}  心率：{BLANK} 次/分  PR：{BLANK} ms  QRS：{BLANK} ms  QT/QTc：{BLANK}/{BLANK} ms  电轴：{BLANK}°"
            ),
            conclusion: String::new(),
        };
    };
    let m = &a.measurements;
    let show = |value: Option<f64>| value.map_or(BLANK.to_string(), |v| format!("{v:.0}"));
    // An irregular rhythm whose intervals only drift, with P waves of a
    // sinus axis (0–90°), is sinus arrhythmia (窦性心律不齐), a normal
    // finding with breathing; premature beats, pauses, no P wave or an
    // ectopic P axis leave it "心律不齐".
    let sinus_p = m.p_ms.is_some() && m.p_axis_deg.is_some_and(|a| (0.0..=90.0).contains(&a));
    let sinus_arrhythmia = a.rhythm.regular == Some(false) && a.rhythm.abrupt_changes == Some(0) && sinus_p;
    let rhythm = match a.rhythm.regular {
        Some(true) => "心律规则",
        Some(false) if sinus_arrhythmia => "窦性心律不齐",
        Some(false) => "心律不齐",
        None => "心律待定",
    };
    let findings = format!(
        "{rhythm}，心率 {} 次/分。P-R 间期 {} ms，QRS 时限 {} ms，QT/QTc 间期 {}/{} ms（Bazett）。P/QRS/T 电轴 {}°/{}°/{}°。",
        show(m.hr_bpm),
        show(m.pr_ms),
        show(m.qrs_ms),
        show(m.qt_ms),
        show(m.qtc_bazett_ms),
        show(m.p_axis_deg),
        show(m.qrs_axis_deg),
        show(m.t_axis_deg),
    );
    let mut hints: Vec<String> = Vec::new();
    if let Some(hr) = m.hr_bpm {
        if hr > 100.0 {
            hints.push("心动过速".into());
        } else if hr < 60.0 {
            hints.push("心动过缓".into());
        }
    }
    if a.rhythm.regular == Some(false) {
        hints.push(rhythm.into());
    }
    if m.qrs_ms.is_some_and(|q| q >= 120.0) {
        hints.push("QRS 时限增宽".into());
    }
    if m.pr_ms.is_some_and(|p| p > 200.0) {
        hints.push("P-R 间期延长".into());
    }
    if m.qtc_bazett_ms.is_some_and(|q| q > 470.0) {
        hints.push("QTc 间期延长".into());
    }
    if let Some(wording) = m.qrs_axis_deg.and_then(axis_wording) {
        hints.push(wording.into());
    }
    let mut conclusion = if hints.is_empty() {
        format!("心电图测量值在正常范围{TO_CONFIRM}。")
    } else {
        format!("{}{TO_CONFIRM}。", hints.join("；"))
    };
    if !a.device_statements.is_empty() {
        conclusion.push_str(&format!("\n机器分析：{}", a.device_statements.join("；")));
    }
    Template { id: "ecg".into(), name: "常规心电图".into(), method, findings, conclusion }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_follow_modality_and_body_part() {
        for (modality, body, description, expected) in [
            (Some("CT"), Some("CHEST"), None, "ct-chest"),
            (Some("CT"), None, Some("头颅平扫"), "ct-head"),
            (Some("CT"), Some("KNEE"), None, "ct"),
            (Some("DX"), Some("CHEST"), None, "dx-chest"),
            (Some("CR"), None, Some("Chest PA"), "dx-chest"),
            (Some("MR"), Some("BRAIN"), None, "mr-brain"),
            (Some("US"), None, None, "us-abdomen"),
            (Some("NM"), None, None, "generic"),
        ] {
            assert_eq!(for_study(modality, body, description).id, expected, "{modality:?} {body:?} {description:?}");
        }
    }

    #[test]
    fn the_ecg_template_carries_the_measurements_and_flags() {
        let analysis = serde_json::json!({
            "measurements": {"hr_bpm": 48.2, "pr_ms": 150.0, "qrs_ms": 126.0, "qt_ms": 440.0, "qtc_bazett_ms": 395.0,
                             "p_axis_deg": 50.0, "qrs_axis_deg": -45.0, "t_axis_deg": 30.0},
            "rhythm": {"beats": 8, "regular": true},
            "device_statements": ["Sinus bradycardia"]
        });
        let analysis = telediag_ecg::AnalysisSummary::from_json(analysis.to_string().as_bytes()).unwrap();
        let t = for_ecg(Some(&analysis));
        assert!(t.findings.contains("心率 48 次/分"), "{}", t.findings);
        assert!(t.findings.contains("QRS 时限 126 ms") && t.findings.contains("440/395 ms"), "{}", t.findings);
        assert!(
            t.conclusion.contains("心动过缓") && t.conclusion.contains("QRS 时限增宽") && t.conclusion.contains("电轴左偏"),
            "{}",
            t.conclusion
        );
        assert!(t.conclusion.contains("Sinus bradycardia"));
        assert_eq!(placeholder_in(&t.conclusion), Some(TO_CONFIRM), "the doctor confirms before signing");
        assert_eq!(placeholder_in(&for_ecg(None).findings), Some(BLANK));
    }

    #[test]
    fn a_drifting_rate_with_p_waves_is_sinus_arrhythmia_and_jumps_are_not() {
        let summary = |abrupt: usize, p_ms: Option<f64>, p_axis: f64| {
            let analysis = serde_json::json!({
                "measurements": {"hr_bpm": 82.0, "p_ms": p_ms, "p_axis_deg": p_axis},
                "rhythm": {"beats": 14, "regular": false, "abrupt_changes": abrupt},
            });
            telediag_ecg::AnalysisSummary::from_json(analysis.to_string().as_bytes()).unwrap()
        };
        let t = for_ecg(Some(&summary(0, Some(100.0), 55.0)));
        assert!(t.findings.starts_with("窦性心律不齐，") && t.conclusion.starts_with("窦性心律不齐"), "{t:?}");
        // Premature beats; no P wave; a P axis of a low atrial rhythm.
        for (abrupt, p_ms, p_axis) in [(2, Some(100.0), 55.0), (0, None, 55.0), (0, Some(100.0), -60.0)] {
            let t = for_ecg(Some(&summary(abrupt, p_ms, p_axis)));
            assert!(t.findings.starts_with("心律不齐，") && t.conclusion.starts_with("心律不齐"), "{abrupt} {p_ms:?} {p_axis}: {t:?}");
        }
        // An analysis stored before abrupt changes were counted reads as before.
        let old = serde_json::json!({"measurements": {"p_ms": 100.0, "p_axis_deg": 55.0}, "rhythm": {"beats": 9, "regular": false}});
        let old = telediag_ecg::AnalysisSummary::from_json(old.to_string().as_bytes()).unwrap();
        assert!(for_ecg(Some(&old)).findings.starts_with("心律不齐，"));
    }

    #[test]
    fn choices_and_phrases_follow_the_modality() {
        let ct: Vec<String> = choices("CT").into_iter().map(|t| t.id).collect();
        assert_eq!(ct, ["ct-head", "ct-chest", "ct-abdomen", "ct"]);
        assert!(choices("ECG").is_empty());
        let ecg = phrases("ECG");
        assert!(ecg.iter().any(|p| p.text == "心房颤动。") && ecg.iter().all(|p| p.section == CONCLUSION));
        assert!(phrases("CT").iter().any(|p| p.section == FINDINGS));
        assert_eq!(phrases("NM").len(), 2, "any modality gets the common advice");
    }

    /// −95° is an extreme (indeterminate) axis, not a left deviation.
    #[test]
    fn axes_are_worded_by_the_usual_quadrants() {
        for (degrees, expected) in [
            (0.0, None),
            (-30.0, None),
            (90.0, None),
            (-31.0, Some("电轴左偏")),
            (-90.0, Some("电轴左偏")),
            (91.0, Some("电轴右偏")),
            (180.0, Some("电轴右偏")),
            (-95.0, Some("电轴极度偏移（不确定电轴）")),
            (-179.0, Some("电轴极度偏移（不确定电轴）")),
            (265.0, Some("电轴极度偏移（不确定电轴）")),
            (-180.0, Some("电轴右偏")),
        ] {
            assert_eq!(axis_wording(degrees), expected, "{degrees}°");
        }
    }
}
