//! The worklist's settings: turnaround times, locks, the centre's name and
//! address as printed on reports. Part of the `[worklist]` TOML section.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use telediag_workflow::{AssignmentMode, Policy, Turnaround};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorklistConfig {
    /// Printed at the top of every report and in the CA's name.
    pub centre_name: String,
    /// Where the verification page is reached from outside (the QR code's URL).
    pub public_url: String,
    /// The centre's offset from UTC for dates on reports and "today" on the dashboard.
    pub utc_offset_minutes: i32,
    /// A claimed request with no activity for this many seconds returns to the pool.
    pub lock_secs: u64,
    pub turnaround: Turnaround,
    /// Assignment mode per modality, overriding the site's (e.g. `ECG = "auto"`).
    pub assignment_by_modality: BTreeMap<String, AssignmentMode>,
    /// A CJK font for reports; the system's WenQuanYi or Noto CJK when unset.
    pub report_font: Option<PathBuf>,
    /// Origins (`https://ohif.hospital.cn`) whose pages may call `/dicom-web`
    /// from the browser. Empty, the default, sends no CORS headers at all:
    /// only pages of the centre's own origin can read its answers.
    pub dicomweb_cors_origins: Vec<String>,
    /// The built web application (`viewer/dist` of the source tree, built
    /// by `npm run build --workspace viewer`), served at `/`.
    pub web_app: PathBuf,
    /// The longest a doctor may unlock signing for their session with their
    /// PIN, in minutes; 0 asks for the PIN at every signature.
    pub signing_unlock_max_minutes: u32,
    /// An external RFC 3161 timestamp authority (`http://tsa.example.cn/tsr`)
    /// for every signature; unset, the centre's own TSA (created beside the
    /// CA) stamps them.
    pub tsa_url: Option<String>,
}

impl Default for WorklistConfig {
    fn default() -> Self {
        WorklistConfig {
            centre_name: "远程诊断中心".into(),
            public_url: "http://localhost:8080".into(),
            utc_offset_minutes: 8 * 60,
            lock_secs: 30 * 60,
            turnaround: Turnaround::default(),
            assignment_by_modality: BTreeMap::new(),
            report_font: None,
            dicomweb_cors_origins: Vec::new(),
            web_app: PathBuf::from("viewer/dist"),
            signing_unlock_max_minutes: 15,
            tsa_url: None,
        }
    }
}

impl WorklistConfig {
    /// The workflow's rules from these settings.
    pub fn policy(&self) -> Policy {
        Policy {
            lock_secs: self.lock_secs,
            turnaround: self.turnaround.clone(),
            assignment_by_modality: self.assignment_by_modality.clone(),
            utc_offset_minutes: self.utc_offset_minutes,
        }
    }
}

/// Checks one entry of `dicomweb_cors_origins`: a browser sends its origin
/// as `scheme://host[:port]`, lowercase, with no path and no trailing slash,
/// and compares byte for byte, so anything else would never match.
pub fn check_cors_origin(origin: &str) -> Result<(), String> {
    let rest = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
    let Some(authority) = rest else {
        return Err(format!(
            "dicomweb_cors_origins: expected an origin like https://ohif.example.cn, found {origin:?} (no http:// or https://)"
        ));
    };
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) || origin.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!("dicomweb_cors_origins: expected scheme://host[:port] in lowercase with no path, found {origin:?}"));
    }
    Ok(())
}

/// Why `public_url` would not reach this centre from a hospital or a phone,
/// given where the HTTP service listens; `None` when it may. A URL naming a
/// real host is taken as the configured external name (a reverse proxy may
/// well listen elsewhere); `localhost` is checked against the listener.
pub fn public_url_warning(public_url: &str, listening: std::net::SocketAddr) -> Option<String> {
    let (scheme, rest) = public_url.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => (host, port.parse::<u16>().ok()),
        _ => (authority, None),
    };
    let port = port.unwrap_or(if scheme == "https" { 443 } else { 80 });
    let host = host.trim_matches(|c| c == '[' || c == ']');
    let local = host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !local {
        return None;
    }
    if port != listening.port() {
        return Some(format!(
            "worklist.public_url {public_url} names port {port}, but HTTP listens on {listening}: the QR code on every signed report would point nowhere; set public_url to the address hospitals reach"
        ));
    }
    if !listening.ip().is_loopback() {
        return Some(format!(
            "worklist.public_url {public_url} names this machine as {host}: a phone scanning a printed report's QR code cannot reach it; set public_url to the address hospitals reach"
        ));
    }
    None
}

#[cfg(test)]
mod public_url_tests {
    use super::public_url_warning;

    #[test]
    fn a_public_url_that_cannot_reach_the_listener_is_named() {
        let listening = |s: &str| s.parse().unwrap();
        for (url, at, warned) in [
            ("http://localhost:8080", "127.0.0.1:8080", false),
            ("http://localhost:8080", "127.0.0.1:9090", true),
            ("http://localhost:8080", "0.0.0.0:8080", true),
            ("http://127.0.0.1:9090/", "127.0.0.1:9090", false),
            ("https://telediag.example.cn", "0.0.0.0:8080", false),
            ("http://10.1.2.3:8080", "0.0.0.0:9999", false),
            ("http://[::1]:8080", "[::1]:8081", true),
        ] {
            assert_eq!(public_url_warning(url, listening(at)).is_some(), warned, "{url} with {at}");
        }
    }
}

#[cfg(test)]
mod cors_origin_tests {
    use super::check_cors_origin;

    #[test]
    fn only_what_a_browser_sends_as_its_origin_is_accepted() {
        for ok in ["https://ohif.hospital.cn", "http://127.0.0.1:3000", "http://[::1]:3000"] {
            assert_eq!(check_cors_origin(ok), Ok(()), "{ok}");
        }
        for bad in ["ohif.hospital.cn", "https://ohif.hospital.cn/", "https://OHIF.hospital.cn", "*", "https://", "ftp://x"] {
            let reason = check_cors_origin(bad).expect_err(bad);
            assert!(reason.contains(&format!("{bad:?}")), "{reason}");
        }
    }
}
