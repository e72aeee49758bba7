//! The `telediag` binary: command line, configuration and wiring. Everything
//! it does is done by the library crates; see ARCHITECTURE.md.

mod config;
mod demo;
mod serve;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use telediag_archive::index::StudyQuery;
use telediag_archive::{Archive, NewSite, Origin, Outcome};

use crate::config::{Config, env_var};

/// mimalloc keeps freed pages for reuse: the imaging threads allocate and
/// free tens of megabytes a frame, which glibc's allocator returns to the
/// kernel and faults in again each time (a fifth of a radiograph's
/// rendering time, and worse with two threads faulting at once).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "telediag", version, about = "Remote-diagnosis centre: DICOM gateway, archive and worklist")]
struct Cli {
    /// Configuration file (TOML). Environment variables TELEDIAG_* override it.
    #[arg(long, global = true, env = "TELEDIAG_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides the config file).
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole centre in this process: gateway, worker and web.
    Serve {
        #[arg(long)]
        dicom_port: Option<u16>,
        #[arg(long)]
        http_port: Option<u16>,
        /// Our DICOM AE title.
        #[arg(long)]
        ae_title: Option<String>,
        /// Do not load the demo site, users and studies.
        #[arg(long)]
        no_demo: bool,
    },
    /// Run only the DICOM gateway (C-STORE receiver). Any number may run
    /// on one PostgreSQL database and one bucket.
    Gateway {
        #[arg(long)]
        dicom_port: Option<u16>,
        /// Our DICOM AE title.
        #[arg(long)]
        ae_title: Option<String>,
    },
    /// Run only the background work: thumbnails, ECG analysis, study
    /// completion, read-request intake. Any number may run.
    Worker,
    /// Run only the HTTP service: API, DICOMweb and the web application.
    Web {
        #[arg(long)]
        http_port: Option<u16>,
        /// Do not load the demo site, users and studies.
        #[arg(long)]
        no_demo: bool,
    },
    /// Manage sites (county hospitals).
    Site {
        #[command(subcommand)]
        action: SiteAction,
    },
    /// Manage users, reader credentials and signing certificates.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Import DICOM Part 10 files or folders, as if sent by a site.
    Import {
        /// Site the objects belong to.
        #[arg(long)]
        site: String,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// List studies.
    Studies {
        #[arg(long)]
        site: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Make first-frame thumbnails of DICOM files, straight from disk.
    Thumbnails {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Where to write `<file name>.jpg`.
        #[arg(long)]
        out: PathBuf,
        /// Longest side in pixels.
        #[arg(long, default_value_t = 256)]
        size: u32,
        /// Worker threads (default: every core).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Read, measure, draw and import ECGs (DICOM waveform, HL7 aECG, SCP-ECG, WFDB, GE MUSE, Philips, GE CardioSoft).
    Ecg {
        #[command(subcommand)]
        action: EcgAction,
    },
    /// Send a C-ECHO to a DICOM node.
    Echo {
        host: String,
        port: u16,
        /// Called AE title.
        ae: String,
        #[arg(long, default_value = "TELEDIAG")]
        calling_ae: String,
        #[arg(long, default_value_t = 10)]
        timeout_secs: u64,
    },
}

#[derive(Subcommand)]
enum EcgAction {
    /// Detect QRS complexes and measure intervals, axes and HRV.
    Measure {
        /// An ECG file; for WFDB, the .hea (its .dat files are found beside it).
        file: PathBuf,
        /// Print the whole analysis as JSON.
        #[arg(long)]
        json: bool,
        /// Powerline frequency to notch: 50 (China) or 60 (Americas).
        #[arg(long, default_value_t = 50.0)]
        mains: f64,
    },
    /// Draw the 12-lead page as SVG or PNG (by the output's extension).
    Render {
        file: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// 3x4 (with a lead II rhythm strip), 6x2 or 12x1.
        #[arg(long, default_value = "3x4")]
        layout: String,
    },
    /// Import ECG files into the archive for a site (non-DICOM files are
    /// kept as received and converted to a DICOM ECG).
    Import {
        #[arg(long)]
        site: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Add a user. The password is read from TELEDIAG_NEW_PASSWORD or asked for.
    Add {
        username: String,
        #[arg(long)]
        name: String,
        /// admin, site_user, radiologist, ecg_doctor, reviewer (repeatable).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The site of a site user.
        #[arg(long)]
        site: Option<String>,
    },
    /// List users with their roles and credentials.
    List,
    /// Set the modalities and sites a reader may read (none listed: all).
    Credentials {
        username: String,
        #[arg(long = "modality")]
        modalities: Vec<String>,
        #[arg(long = "site")]
        sites: Vec<String>,
    },
    /// Disable a user (their sessions end).
    Disable { username: String },
    /// Make a doctor's one-time signing enrolment code (签名登记码), to hand
    /// them in person: a new signing key (first PIN, forgotten PIN,
    /// imported PKCS#12) is issued only with it. Replaces an earlier code.
    EnrolSigning {
        username: String,
        /// Hours the code stays valid.
        #[arg(long, default_value_t = telediag_worklist::signing::enrolment::DEFAULT_VALID_HOURS)]
        hours: u32,
    },
}

#[derive(Subcommand)]
enum SiteAction {
    /// Add a site with its AE titles and, optionally, allowed networks.
    Add {
        name: String,
        /// AE title the site's devices call with (repeatable).
        #[arg(long = "ae", required = true)]
        ae_titles: Vec<String>,
        /// Network its associations must come from, e.g. 10.12.0.0/16 (repeatable).
        #[arg(long = "network")]
        networks: Vec<ipnet::IpNet>,
    },
    /// List sites.
    List,
    /// Remove a site that has no studies.
    Remove { name: String },
    /// Pin a device's TLS client certificate (PEM) to a site, for the DICOM
    /// TLS port: only pinned certificates get in, and only with that site's
    /// AE titles.
    Cert {
        name: String,
        certificate: PathBuf,
        /// What the certificate is, for the list (default: the file name).
        #[arg(long)]
        label: Option<String>,
    },
    /// Unpin a certificate by its SHA-256 fingerprint: revoked at once.
    Uncert { fingerprint: String },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn,jpeg2k=warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    telediag_archive::store::make_new_files_owner_only();
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(data) = cli.data {
        config.data_dir = data;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(cli.command, config))
}

async fn run(command: Command, mut config: Config) -> Result<()> {
    match command {
        Command::Serve { dicom_port, http_port, ae_title, no_demo } => {
            if let Some(port) = dicom_port {
                config.dicom.port = port;
            }
            if let Some(port) = http_port {
                config.http.port = port;
            }
            if let Some(ae) = ae_title {
                config.dicom.ae_title = ae;
            }
            if no_demo {
                config.demo = false;
            }
            serve::run(config, serve::Roles::ALL).await
        }
        Command::Gateway { dicom_port, ae_title } => {
            if let Some(port) = dicom_port {
                config.dicom.port = port;
            }
            if let Some(ae) = ae_title {
                config.dicom.ae_title = ae;
            }
            serve::run(config, serve::Roles::GATEWAY).await
        }
        Command::Worker => serve::run(config, serve::Roles::WORKER).await,
        Command::Web { http_port, no_demo } => {
            if let Some(port) = http_port {
                config.http.port = port;
            }
            if no_demo {
                config.demo = false;
            }
            serve::run(config, serve::Roles::WEB).await
        }
        Command::Site { action } => site(action, &config).await,
        Command::User { action } => user(action, &config).await,
        Command::Import { site, paths } => import(&config, &site, &paths).await,
        Command::Studies { site, limit } => studies(&config, site, limit).await,
        Command::Thumbnails { paths, out, size, threads } => thumbnails(&paths, &out, size, threads),
        Command::Ecg { action } => ecg(action, &config).await,
        Command::Echo { host, port, ae, calling_ae, timeout_secs } => {
            let rtt = pacs_gateway::echo::echo(&format!("{host}:{port}"), &ae, &calling_ae, Duration::from_secs(timeout_secs)).await?;
            println!("C-ECHO to {ae}@{host}:{port} succeeded in {:.1} ms", rtt.as_secs_f64() * 1000.0);
            Ok(())
        }
    }
}

async fn user(action: UserAction, config: &Config) -> Result<()> {
    use telediag_workflow::assign::Credentials;
    use telediag_worklist::auth::{NewUser, Role, create_user};
    let archive = open(config).await?;
    let db = archive.database();
    let workflow = telediag_workflow::Workflow::new(db.clone(), config.worklist.policy());
    let find = |username: String| async move { db.user_by_name(&username).await?.with_context(|| format!("no user {username:?}")) };
    match action {
        UserAction::Add { username, name, roles, site } => {
            let roles = roles
                .iter()
                .map(|r| {
                    Role::parse(r).with_context(|| format!("role {r:?}: expected admin, site_user, radiologist, ecg_doctor or reviewer"))
                })
                .collect::<Result<Vec<_>>>()?;
            let password = match env_var("TELEDIAG_NEW_PASSWORD") {
                Some(p) => p,
                None => {
                    eprint!("password for {username}: ");
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end().to_owned()
                }
            };
            let id = create_user(db, &NewUser { username: username.clone(), display_name: name, password, roles, site }).await?;
            audit_cli(db, "user add", &format!("/api/users/{id}")).await?;
            println!("user {username} added (id {id})");
        }
        UserAction::List => {
            for u in db.list_users().await? {
                let (creds, _) = workflow.credentials(u.id).await?;
                let creds = if creds.modalities.is_empty() && creds.sites.is_empty() {
                    String::new()
                } else {
                    format!("  reads {} at {}", join_or_all(&creds.modalities), join_or_all(&creds.sites))
                };
                let disabled = if u.disabled { "  (disabled)" } else { "" };
                println!("{:<20} {:<28} {}{creds}{disabled}", u.username, u.roles.join(","), u.display_name);
            }
        }
        UserAction::Credentials { username, modalities, sites } => {
            let u = find(username.clone()).await?;
            workflow.set_credentials(u.id, &Credentials { modalities, sites }).await?;
            audit_cli(db, "user credentials", &format!("/api/users/{}/credentials", u.id)).await?;
            let (creds, _) = workflow.credentials(u.id).await?;
            println!("{username} reads {} at {}", join_or_all(&creds.modalities), join_or_all(&creds.sites));
        }
        UserAction::EnrolSigning { username, hours } => {
            let u = find(username.clone()).await?;
            if !u.roles.iter().any(|r| ["radiologist", "ecg_doctor", "reviewer"].contains(&r.as_str())) {
                bail!("{username} is not a doctor: only radiologists, ECG doctors and reviewers hold signing keys");
            }
            let code = telediag_worklist::signing::enrolment::issue(db, u.id, hours).await?;
            audit_cli(db, "user enrol-signing", &format!("/api/users/{}/signing-enrolment", u.id)).await?;
            println!("signing enrolment code for {username}: {code}  (valid {hours} h, once; hand it to the doctor in person)");
        }
        UserAction::Disable { username } => {
            let u = find(username.clone()).await?;
            db.update_user(u.id, &telediag_archive::accounts::UserChange { disabled: Some(true), ..Default::default() }).await?;
            audit_cli(db, "user disable", &format!("/api/users/{}", u.id)).await?;
            println!("{username} disabled");
        }
    }
    Ok(())
}

/// Records an operator's CLI change in the audit log, as the OS user.
async fn audit_cli(db: &telediag_archive::Database, action: &str, object: &str) -> Result<()> {
    use telediag_worklist::audit::{AuditEntry, AuditLog};
    let mut entry = AuditEntry::for_user(None, format!("cli {action}"), object.to_owned(), 200, None);
    entry.username = Some(format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into())));
    Ok(AuditLog::new(db.clone()).append(&entry).await?)
}

fn join_or_all(items: &[String]) -> String {
    if items.is_empty() { "all".into() } else { items.join(",") }
}

async fn ecg(action: EcgAction, config: &Config) -> Result<()> {
    use telediag_ecg::render::{Layout, PAGE_PNG_WIDTH, png, svg};
    match action {
        EcgAction::Measure { file, json, mains } => {
            let record = telediag_ecg::read_path(&file).with_context(|| format!("reading {}", file.display()))?;
            let options = telediag_ecg::AnalysisOptions { filters: telediag_ecg::filter::FilterSettings::ANALYSIS.with_mains(mains) };
            let analysis = telediag_ecg::analyse_with(&record, options);
            if json {
                println!("{}", serde_json::to_string_pretty(&analysis)?);
            } else {
                print_measurements(&record, &analysis);
            }
        }
        EcgAction::Render { file, out, layout } => {
            let record = telediag_ecg::read_path(&file).with_context(|| format!("reading {}", file.display()))?;
            let layout = Layout::parse(&layout).with_context(|| format!("layout {layout:?}: expected 3x4, 6x2 or 12x1"))?;
            let page = svg(&record, &telediag_ecg::analyse(&record), layout);
            let bytes = match out.extension().and_then(|e| e.to_str()) {
                Some("png") => png(&page, PAGE_PNG_WIDTH)?,
                Some("svg") => page.into_bytes(),
                _ => bail!("--out must end in .svg or .png"),
            };
            std::fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {}", out.display());
        }
        EcgAction::Import { site, files } => {
            let archive = open(config).await?;
            let site = archive.database().site_by_name(&site).await.with_context(|| format!("site {site:?}"))?;
            let origin = Origin { site_id: site.id, calling_ae: None };
            let mut failed = 0;
            for file in files {
                let parts = ecg_upload_parts(&file)?;
                match telediag_worklist::ecg_upload::import_ecg(&archive, &origin, Some(site.name.clone()), parts).await {
                    Ok(done) => {
                        println!(
                            "{}: {} ({}, {} leads at {} Hz) as {}",
                            file.display(),
                            done.outcome,
                            done.format,
                            done.leads,
                            done.sampling_rate_hz,
                            done.sop_instance_uid
                        );
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("{}: refused: {e}", file.display());
                    }
                }
            }
            archive.wait_idle().await;
            if failed > 0 {
                bail!("{failed} file(s) refused");
            }
        }
    }
    Ok(())
}

/// The file, or for a WFDB header the header and the signal files it names.
fn ecg_upload_parts(file: &Path) -> Result<Vec<telediag_worklist::ecg_upload::UploadedFile>> {
    use telediag_worklist::ecg_upload::UploadedFile;
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let mut parts = vec![UploadedFile { name: name(file), bytes }];
    if file.extension().and_then(|e| e.to_str()) == Some("hea") {
        let header = String::from_utf8_lossy(&parts[0].bytes).into_owned();
        for data in telediag_ecg::read::wfdb::data_files(&header)? {
            let path = file.with_file_name(&data);
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            parts.push(UploadedFile { name: data, bytes });
        }
    }
    Ok(parts)
}

fn print_measurements(record: &telediag_ecg::EcgRecord, a: &telediag_ecg::Analysis) {
    let v = |x: Option<f64>| x.map_or("—".to_string(), |x| format!("{x:.0}"));
    let m = &a.measurements;
    let d = &a.device;
    println!(
        "{} · {} leads · {} Hz · {:.1} s · {} QRS",
        record.format.name(),
        record.leads.len(),
        a.sampling_rate_hz,
        a.duration_s,
        a.qrs_samples.len()
    );
    println!("            ours    device");
    for (name, ours, device) in [
        ("HR bpm", m.hr_bpm, d.hr_bpm),
        ("RR ms", m.rr_ms, d.rr_ms),
        ("PR ms", m.pr_ms, d.pr_ms),
        ("P ms", m.p_ms, d.p_ms),
        ("QRS ms", m.qrs_ms, d.qrs_ms),
        ("QT ms", m.qt_ms, d.qt_ms),
        ("QTcB ms", m.qtc_bazett_ms, d.qtc_ms),
        ("QTcF ms", m.qtc_fridericia_ms, None),
        ("P axis", m.p_axis_deg, d.p_axis_deg),
        ("QRS axis", m.qrs_axis_deg, d.qrs_axis_deg),
        ("T axis", m.t_axis_deg, d.t_axis_deg),
    ] {
        println!("{name:<10}{:>6}    {:>6}", v(ours), v(device));
    }
    if let Some(hrv) = &a.hrv {
        println!("HRV: SDNN {} ms, RMSSD {} ms, pNN50 {} %", hrv.sdnn_ms, hrv.rmssd_ms, hrv.pnn50_pct);
    }
    for s in &a.device_statements {
        println!("device: {s}");
    }
    for w in &a.warnings {
        println!("warning: {w}");
    }
}

async fn open(config: &Config) -> Result<Archive> {
    Archive::open(&config.archive_config()).await.context("opening the archive")
}

async fn site(action: SiteAction, config: &Config) -> Result<()> {
    let archive = open(config).await?;
    let db = archive.database();
    match action {
        SiteAction::Add { name, ae_titles, networks } => {
            let site = db.add_site(&NewSite { name, ae_titles, networks }).await?;
            println!("added site {:?} (AE {})", site.name, site.ae_titles.join(", "));
        }
        SiteAction::List => {
            for site in db.list_sites().await? {
                let networks = if site.networks.is_empty() {
                    "any address".to_owned()
                } else {
                    site.networks.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
                };
                println!("{}\tAE {}\t{}", site.name, site.ae_titles.join(", "), networks);
            }
        }
        SiteAction::Remove { name } => {
            db.remove_site(&name).await?;
            println!("removed site {name:?}");
        }
        SiteAction::Cert { name, certificate, label } => {
            let der = pacs_gateway::tls::read_pem_certificate(&certificate)?;
            let fingerprint = pacs_gateway::tls::fingerprint(&der);
            let label = label.unwrap_or_else(|| certificate.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
            db.add_site_certificate(&name, &fingerprint, &label).await?;
            println!("pinned certificate {fingerprint} ({label}) to site {name:?}");
        }
        SiteAction::Uncert { fingerprint } => {
            db.remove_site_certificate(fingerprint.trim()).await?;
            println!("unpinned certificate {fingerprint}");
        }
    }
    Ok(())
}

fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        if meta.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
            entries.sort();
            for entry in entries {
                walk(&entry, out)?;
            }
        } else if meta.is_file() {
            out.push(path.to_owned());
        }
        Ok(())
    }
    let mut files = Vec::new();
    for path in paths {
        walk(path, &mut files)?;
    }
    Ok(files)
}

/// Output names for `thumbnails`: a file's name, or, where several files
/// share it (IM000001 in every series folder), its whole path with `_` for
/// the separators, so that no thumbnail overwrites another.
fn thumbnail_names(files: &[PathBuf]) -> std::collections::HashMap<PathBuf, String> {
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut counts = std::collections::HashMap::new();
    for file in files {
        *counts.entry(name(file)).or_insert(0) += 1;
    }
    files
        .iter()
        .map(|file| {
            let short = name(file);
            let unique =
                if counts[&short] == 1 { short } else { file.to_string_lossy().trim_start_matches(['.', '/']).replace(['/', '\\'], "_") };
            (file.clone(), unique)
        })
        .collect()
}

async fn import(config: &Config, site_name: &str, paths: &[PathBuf]) -> Result<()> {
    let archive = open(config).await?;
    let site = archive.database().site_by_name(site_name).await?;
    let files = collect_files(paths)?;
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} files, {per_sec}, eta {eta} {msg}")?);
    let origin = Origin { site_id: site.id, calling_ae: None };
    let (mut stored, mut duplicates, mut versions, mut failed) = (0u64, 0u64, 0u64, Vec::new());
    let mut tasks = tokio::task::JoinSet::new();
    let mut queue = files.into_iter();
    const PARALLEL: usize = 4;
    loop {
        while tasks.len() < PARALLEL {
            let Some(file) = queue.next() else { break };
            let (archive, origin) = (archive.clone(), origin.clone());
            tasks.spawn(async move {
                let result = archive.import_file(&file, &origin).await;
                (file, result)
            });
        }
        let Some(done) = tasks.join_next().await else { break };
        let (file, result) = done?;
        match result {
            Ok(s) => match s.outcome {
                Outcome::Stored => stored += 1,
                Outcome::Duplicate => duplicates += 1,
                Outcome::NewVersion(_) => versions += 1,
            },
            Err(e) => failed.push((file, e.to_string())),
        }
        bar.inc(1);
    }
    // Every row durable and the staging links gone before the process ends.
    archive.wait_idle().await;
    bar.finish_and_clear();
    println!(
        "imported into {:?}: {stored} stored, {duplicates} already present, {versions} new versions, {} failed",
        site.name,
        failed.len()
    );
    for (file, reason) in failed.iter().take(50) {
        println!("  failed {}: {reason}", file.display());
    }
    if failed.len() > 50 {
        println!("  … and {} more", failed.len() - 50);
    }
    if !failed.is_empty() && stored + duplicates + versions == 0 {
        bail!("nothing could be imported");
    }
    Ok(())
}

async fn studies(config: &Config, site: Option<String>, limit: i64) -> Result<()> {
    let archive = open(config).await?;
    let page = archive.database().list_studies(&StudyQuery { site, limit: Some(limit), ..Default::default() }).await?;
    println!("{} studies{}", page.total, if page.total > page.studies.len() as i64 { " (newest shown)" } else { "" });
    for s in page.studies {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{} series, {} instances\t{}\t{}",
            s.study_date.as_deref().unwrap_or("-"),
            s.site,
            s.patient_id,
            s.patient_name.as_deref().unwrap_or("-"),
            s.modalities,
            s.num_series,
            s.num_instances,
            s.status,
            s.study_uid
        );
    }
    Ok(())
}

fn thumbnails(paths: &[PathBuf], out: &Path, size: u32, threads: Option<usize>) -> Result<()> {
    let files = collect_files(paths)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut options = telediag_imaging::BatchOptions { size, ..Default::default() };
    if let Some(threads) = threads {
        options.threads = threads;
    }
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} files, {per_sec}, eta {eta}")?);
    let started = std::time::Instant::now();
    let failures = std::sync::Mutex::new(Vec::new());
    let frames = std::sync::atomic::AtomicU64::new(0);
    let names = thumbnail_names(&files);
    telediag_imaging::thumbnail_files(&files, &options, |path, result| {
        match result {
            Ok((thumbnail, _)) => {
                let target = out.join(format!("{}.jpg", names[path]));
                if let Err(e) = std::fs::write(&target, &thumbnail.bytes) {
                    failures.lock().unwrap().push((path.to_owned(), format!("cannot write {}: {e}", target.display())));
                } else {
                    frames.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Err(e) => failures.lock().unwrap().push((path.to_owned(), format!("undecodable: {e}"))),
        }
        bar.inc(1);
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let made = frames.into_inner();
    println!(
        "{made} thumbnails in {elapsed:.2} s ({:.1} frames/s, {} threads) into {}",
        made as f64 / elapsed.max(1e-9),
        options.threads,
        out.display()
    );
    let failures = failures.into_inner().unwrap();
    for (path, reason) in failures.iter().take(50) {
        println!("  {}: {reason}", path.display());
    }
    if made == 0 && !failures.is_empty() {
        bail!("no thumbnail could be made");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_of_equally_named_files_do_not_overwrite_each_other() {
        let files: Vec<PathBuf> = ["a/SE1/IM000001", "a/SE2/IM000001", "./b/CT_small.dcm"].iter().map(PathBuf::from).collect();
        let names = thumbnail_names(&files);
        assert_eq!(names[&files[0]], "a_SE1_IM000001");
        assert_eq!(names[&files[1]], "a_SE2_IM000001");
        assert_eq!(names[&files[2]], "CT_small.dcm");
    }
}
