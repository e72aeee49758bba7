//! Configuration: one TOML file plus `TELEDIAG_*` environment overrides, then
//! command-line flags. Every default runs on a laptop: SQLite and objects
//! under `./data`, DICOM on 11112, HTTP on 8080.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Root for the index database, objects and staging.
    pub data_dir: PathBuf,
    /// Defaults to `sqlite://<data_dir>/index.db`.
    pub database_url: Option<String>,
    /// `full` (fsync every commit) or `normal` (survives process crashes only).
    pub durability: telediag_archive::Durability,
    /// Where objects live: `"local"` (`<data_dir>/objects`, the default) or
    /// an S3-compatible bucket, `[storage.s3]` with `endpoint`, `bucket`,
    /// `region`, `access_key_id`, `secret_access_key`, `allow_http`,
    /// `path_style`.
    pub storage: telediag_archive::Storage,
    /// The centre's certificate authority (its key sealed, its certificate,
    /// CRL and TSA): `<data_dir>/ca` by default. Web processes of one centre
    /// must share it (a mounted secret, say), or each would issue doctors'
    /// certificates from a CA of its own.
    pub ca_dir: Option<PathBuf>,
    /// Password of the first admin; generated and printed once when unset.
    pub admin_password: Option<String>,
    /// Load the demo site, users and studies on first start.
    pub demo: bool,
    pub dicom: DicomConfig,
    pub http: HttpConfig,
    pub archive: ArchiveSection,
    pub worklist: telediag_worklist::WorklistConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DicomConfig {
    pub bind: String,
    pub port: u16,
    pub ae_title: String,
    pub max_associations: usize,
    pub idle_timeout_secs: u64,
    /// ARTIM: seconds a new connection has to send its A-ASSOCIATE-RQ.
    pub association_request_timeout_secs: u64,
    pub max_pdu_length: u32,
    /// A second port for DICOM TLS (2762 is usual); unset: none.
    pub tls_port: Option<u16>,
    /// Its certificate chain and key (PEM); the HTTP ones when unset.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub bind: String,
    pub port: u16,
    /// With both set, the HTTP service speaks HTTPS only (rustls), its
    /// session cookie is `Secure` and responses carry HSTS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveSection {
    /// A study with no new instance for this long is complete.
    pub study_stable_secs: u64,
    /// Threads rendering thumbnails and previews; 0 means every core.
    pub imaging_threads: usize,
    /// Seconds a worker holds a render job it claimed: when a worker dies,
    /// another takes its jobs after this.
    pub job_lease_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            database_url: None,
            ca_dir: None,
            durability: telediag_archive::Durability::Full,
            storage: telediag_archive::Storage::Local,
            admin_password: None,
            demo: true,
            dicom: DicomConfig::default(),
            http: HttpConfig::default(),
            archive: ArchiveSection::default(),
            worklist: telediag_worklist::WorklistConfig::default(),
        }
    }
}

impl Default for DicomConfig {
    fn default() -> Self {
        let gateway = pacs_gateway::GatewayConfig::default();
        DicomConfig {
            bind: "0.0.0.0".into(),
            port: 11112,
            ae_title: gateway.ae_title,
            max_associations: gateway.max_associations,
            idle_timeout_secs: gateway.idle_timeout.as_secs(),
            association_request_timeout_secs: gateway.association_request_timeout.as_secs(),
            max_pdu_length: gateway.max_pdu_length,
            tls_port: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { bind: "0.0.0.0".into(), port: 8080, tls_cert: None, tls_key: None }
    }
}

impl Default for ArchiveSection {
    fn default() -> Self {
        ArchiveSection { study_stable_secs: 30, imaging_threads: 0, job_lease_secs: telediag_pipeline::DEFAULT_LEASE.as_secs() }
    }
}

pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn env_parse<T: std::str::FromStr>(name: &str, target: &mut T) -> Result<()>
where
    T::Err: std::fmt::Display,
{
    if let Some(value) = env_var(name) {
        *target = value.parse().map_err(|e| anyhow::anyhow!("{name}={value:?}: {e}"))?;
    }
    Ok(())
}

impl Config {
    /// Reads `path` (when given) and applies environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?
            }
            None => Config::default(),
        };
        if let Some(dir) = env_var("TELEDIAG_DATA_DIR") {
            config.data_dir = dir.into();
        }
        if let Some(url) = env_var("TELEDIAG_DATABASE_URL") {
            config.database_url = Some(url);
        }
        if let Some(dir) = env_var("TELEDIAG_CA_DIR") {
            config.ca_dir = Some(dir.into());
        }
        if let Some(password) = env_var("TELEDIAG_ADMIN_PASSWORD") {
            config.admin_password = Some(password);
        }
        if let Some(d) = env_var("TELEDIAG_DURABILITY") {
            config.durability = match d.as_str() {
                "full" => telediag_archive::Durability::Full,
                "normal" => telediag_archive::Durability::Normal,
                other => anyhow::bail!("TELEDIAG_DURABILITY must be full or normal, found {other:?}"),
            };
        }
        // A bucket from the environment (credentials from AWS_ACCESS_KEY_ID
        // and AWS_SECRET_ACCESS_KEY): how CI runs the suite on S3.
        if let Some(bucket) = env_var("TELEDIAG_S3_BUCKET") {
            let endpoint = env_var("TELEDIAG_S3_ENDPOINT");
            config.storage = telediag_archive::Storage::S3(telediag_archive::store::S3Config {
                allow_http: endpoint.as_deref().is_some_and(|e| e.starts_with("http://")),
                endpoint,
                bucket,
                region: env_var("TELEDIAG_S3_REGION"),
                ..Default::default()
            });
        }
        env_parse("TELEDIAG_DEMO", &mut config.demo)?;
        env_parse("TELEDIAG_DICOM_PORT", &mut config.dicom.port)?;
        env_parse("TELEDIAG_AE_TITLE", &mut config.dicom.ae_title)?;
        env_parse("TELEDIAG_IDLE_TIMEOUT_SECS", &mut config.dicom.idle_timeout_secs)?;
        env_parse("TELEDIAG_ARTIM_SECS", &mut config.dicom.association_request_timeout_secs)?;
        env_parse("TELEDIAG_HTTP_PORT", &mut config.http.port)?;
        for (name, target) in [
            ("TELEDIAG_HTTP_TLS_CERT", &mut config.http.tls_cert),
            ("TELEDIAG_HTTP_TLS_KEY", &mut config.http.tls_key),
            ("TELEDIAG_DICOM_TLS_CERT", &mut config.dicom.tls_cert),
            ("TELEDIAG_DICOM_TLS_KEY", &mut config.dicom.tls_key),
        ] {
            if let Some(path) = env_var(name) {
                *target = Some(path.into());
            }
        }
        if let Some(port) = env_var("TELEDIAG_DICOM_TLS_PORT") {
            config.dicom.tls_port = Some(port.parse().map_err(|e| anyhow::anyhow!("TELEDIAG_DICOM_TLS_PORT={port:?}: {e}"))?);
        }
        env_parse("TELEDIAG_STUDY_STABLE_SECS", &mut config.archive.study_stable_secs)?;
        env_parse("TELEDIAG_JOB_LEASE_SECS", &mut config.archive.job_lease_secs)?;
        env_parse("TELEDIAG_LOCK_SECS", &mut config.worklist.lock_secs)?;
        if let Some(url) = env_var("TELEDIAG_PUBLIC_URL") {
            config.worklist.public_url = url;
        }
        if let Some(dir) = env_var("TELEDIAG_WEB_APP") {
            config.worklist.web_app = dir.into();
        }
        if let Some(origins) = env_var("TELEDIAG_DICOMWEB_CORS_ORIGINS") {
            config.worklist.dicomweb_cors_origins = origins.split(',').map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect();
        }
        Ok(config)
    }

    pub fn archive_config(&self) -> telediag_archive::ArchiveConfig {
        telediag_archive::ArchiveConfig {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            durability: self.durability,
            storage: self.storage.clone(),
        }
    }

    /// Where the centre's CA key and certificate live.
    pub fn ca_dir(&self) -> PathBuf {
        self.ca_dir.clone().unwrap_or_else(|| self.data_dir.join("ca"))
    }

    pub fn job_lease(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.archive.job_lease_secs.max(1))
    }

    pub fn imaging_threads(&self) -> usize {
        match self.archive.imaging_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// The HTTP service's TLS configuration, when a certificate and key are set.
    pub fn https(&self) -> Result<Option<std::sync::Arc<rustls::ServerConfig>>> {
        let (Some(cert), Some(key)) = (&self.http.tls_cert, &self.http.tls_key) else {
            if self.http.tls_cert.is_some() != self.http.tls_key.is_some() {
                anyhow::bail!("http.tls_cert and http.tls_key go together: one is set without the other");
            }
            return Ok(None);
        };
        let (certs, key) = pacs_gateway::tls::read_pem_identity(cert, key).context("the HTTPS certificate")?;
        let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .context("the HTTPS certificate and key")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(std::sync::Arc::new(config)))
    }

    pub fn gateway_config(&self) -> Result<pacs_gateway::GatewayConfig> {
        let tls = match self.dicom.tls_port {
            None => None,
            Some(_) => {
                let cert = self.dicom.tls_cert.as_ref().or(self.http.tls_cert.as_ref());
                let key = self.dicom.tls_key.as_ref().or(self.http.tls_key.as_ref());
                let (Some(cert), Some(key)) = (cert, key) else {
                    anyhow::bail!("dicom.tls_port needs dicom.tls_cert and dicom.tls_key (or the http ones)");
                };
                Some(pacs_gateway::tls::DicomTls::from_pem_files(cert, key)?)
            }
        };
        Ok(pacs_gateway::GatewayConfig {
            tls,
            ae_title: self.dicom.ae_title.clone(),
            max_associations: self.dicom.max_associations,
            idle_timeout: std::time::Duration::from_secs(self.dicom.idle_timeout_secs),
            association_request_timeout: std::time::Duration::from_secs(self.dicom.association_request_timeout_secs),
            max_pdu_length: self.dicom.max_pdu_length,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_file_keeps_the_other_defaults() {
        let config: Config = toml::from_str("[dicom]\nport = 104\n").unwrap();
        assert_eq!(config.dicom.port, 104);
        assert_eq!(config.dicom.ae_title, "TELEDIAG");
        assert_eq!(config.http.port, 8080);
        assert_eq!(config.archive.study_stable_secs, 30);
        assert!(toml::from_str::<Config>("[dicom]\nprot = 104\n").is_err(), "typos are errors");
    }

    #[test]
    fn storage_is_local_or_a_bucket() {
        assert!(matches!(Config::default().storage, telediag_archive::Storage::Local));
        assert!(matches!(toml::from_str::<Config>("storage = \"local\"\n").unwrap().storage, telediag_archive::Storage::Local));
        let config: Config =
            toml::from_str("[storage.s3]\nendpoint = \"http://minio:9000\"\nbucket = \"telediag\"\nallow_http = true\n").unwrap();
        let telediag_archive::Storage::S3(s3) = config.storage else { panic!("not S3") };
        assert_eq!((s3.endpoint.as_deref(), s3.bucket.as_str(), s3.allow_http), (Some("http://minio:9000"), "telediag", true));
        assert!(toml::from_str::<Config>("[storage.s3]\nbuckett = \"x\"\n").is_err(), "typos are errors");
    }
}
