//! `telediag serve`, `gateway`, `worker` and `web`: the centre's three roles,
//! all in one process or each in its own.
//!
//! The roles share nothing but the index database and the object store: the
//! gateway stores and indexes what hospitals send, the worker takes jobs
//! from the database's queue (thumbnails, ECG analysis, study completion,
//! read-request intake, lapsed-lock sweeps), the web process serves the
//! HTTP API, DICOMweb and the web application. Any number of each may run on
//! one PostgreSQL and one bucket; each process keeps only its own staging
//! directory, which the next process on the same data directory recovers.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use telediag_archive::Archive;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;

/// Which roles this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// The DICOM receiver (C-STORE, C-ECHO), on `dicom.port` (and `tls_port`).
    pub gateway: bool,
    /// The job-queue consumers.
    pub worker: bool,
    /// The HTTP service on `http.port`.
    pub web: bool,
}

impl Roles {
    pub const ALL: Roles = Roles { gateway: true, worker: true, web: true };
    pub const GATEWAY: Roles = Roles { gateway: true, worker: false, web: false };
    pub const WORKER: Roles = Roles { gateway: false, worker: true, web: false };
    pub const WEB: Roles = Roles { gateway: false, worker: false, web: true };

    fn names(self) -> String {
        let names: Vec<_> = [(self.gateway, "gateway"), (self.worker, "worker"), (self.web, "web")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
        names.join("+")
    }
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is
/// called, not when it is first awaited: a SIGTERM that arrives while the
/// centre is still starting must not kill it mid-association.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        let terminate = async {
            match terminate.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = terminate => {},
        }
    }
}

fn wait_for(rx: &watch::Receiver<bool>) -> impl std::future::Future<Output = ()> + use<> {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// The process's peak resident set size, for the shutdown log line (Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

/// The gateway's ports, bound before anything is announced.
struct DicomListeners {
    plain: TcpListener,
    tls: Option<TcpListener>,
}

async fn bind_dicom(config: &Config) -> Result<DicomListeners> {
    let addr: SocketAddr = format!("{}:{}", config.dicom.bind, config.dicom.port).parse().context("dicom.bind")?;
    let plain = TcpListener::bind(addr).await.with_context(|| format!("binding DICOM port {addr}"))?;
    let tls = match config.dicom.tls_port {
        Some(port) => {
            let addr: SocketAddr = format!("{}:{port}", config.dicom.bind).parse().context("dicom.bind")?;
            Some(TcpListener::bind(addr).await.with_context(|| format!("binding DICOM TLS port {addr}"))?)
        }
        None => None,
    };
    Ok(DicomListeners { plain, tls })
}

/// The web role, ready to serve: its state and bound port.
struct Web {
    state: telediag_worklist::AppState,
    listener: TcpListener,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

async fn prepare_web(config: &Config, archive: &Archive) -> Result<Web> {
    match telediag_worklist::auth::ensure_admin(archive.database(), config.admin_password.as_deref()).await {
        Ok(Some(password)) => {
            println!("Created user 'admin' with password {password} (shown once; set admin_password in the config to choose it).")
        }
        Ok(None) => {}
        // Another web process starting at the same moment made it first.
        Err(_) if archive.database().user_by_name("admin").await.is_ok_and(|admin| admin.is_some()) => {}
        Err(e) => return Err(e).context("creating the admin user"),
    }
    if config.demo {
        crate::demo::load(archive, &config.data_dir).await.context("loading the demo centre")?;
    }
    let mut state = telediag_worklist::AppState::new(archive.clone(), config.worklist.clone(), &config.ca_dir())
        .context("opening the centre's certificate authority")?;
    let addr: SocketAddr = format!("{}:{}", config.http.bind, config.http.port).parse().context("http.bind")?;
    let tls = config.https()?;
    let listener = TcpListener::bind(addr).await.with_context(|| format!("binding HTTP port {addr}"))?;
    state.check_listening(listener.local_addr()?);
    state.https = tls.is_some();
    state.release_memory = Some(|| {
        // SAFETY: mi_collect only frees memory mimalloc holds and no one uses.
        unsafe { libmimalloc_sys::mi_collect(true) }
    });
    Ok(Web { state, listener, tls })
}

fn spawn_web(web: Web, stop: &watch::Receiver<bool>) -> Result<JoinHandle<std::io::Result<()>>> {
    let app = telediag_worklist::router(web.state);
    let listener = web.listener;
    Ok(match web.tls {
        None => {
            let stopped = wait_for(stop);
            tokio::spawn(async move {
                axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(stopped).await
            })
        }
        Some(tls) => {
            let handle = axum_server::Handle::new();
            let stopping = handle.clone();
            let stopped = wait_for(stop);
            tokio::spawn(async move {
                stopped.await;
                stopping.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
            });
            let listener = listener.into_std()?;
            tokio::spawn(async move {
                axum_server::from_tcp_rustls(listener, axum_server::tls_rustls::RustlsConfig::from_config(tls))
                    .handle(handle)
                    .serve(app.into_make_service_with_connect_info::<SocketAddr>())
                    .await
            })
        }
    })
}

/// The worker's tasks: each takes its jobs from the database's queue, so
/// any number of workers share them.
fn spawn_worker(config: &Config, archive: &Archive, stop: &watch::Sender<bool>) -> Vec<JoinHandle<()>> {
    let workflow = telediag_workflow::Workflow::new(archive.database().clone(), config.worklist.policy());
    vec![
        tokio::spawn(workflow.clone().run_intake(stop.subscribe())),
        tokio::spawn(workflow.run_lock_sweeper(stop.subscribe())),
        tokio::spawn(telediag_pipeline::run(archive.clone(), config.imaging_threads(), config.job_lease(), stop.subscribe())),
        tokio::spawn(telediag_archive::stability::run_stability_monitor(
            archive.database().clone(),
            std::time::Duration::from_secs(config.archive.study_stable_secs),
            wait_for(&stop.subscribe()),
        )),
    ]
}

pub async fn run(config: Config, roles: Roles) -> Result<()> {
    let shutdown = shutdown_signal();
    let archive = Archive::open(&config.archive_config()).await.context("opening the archive")?;

    // Everything that can fail or take a while happens before the ports open.
    let gateway_config = roles.gateway.then(|| config.gateway_config()).transpose()?;
    let dicom = match roles.gateway {
        true => Some(bind_dicom(&config).await?),
        false => None,
    };
    let web = match roles.web {
        true => Some(prepare_web(&config, &archive).await?),
        false => None,
    };
    tracing::info!(
        roles = %roles.names(),
        dicom = ?dicom.as_ref().and_then(|d| d.plain.local_addr().ok()),
        dicom_tls = ?dicom.as_ref().and_then(|d| d.tls.as_ref()?.local_addr().ok()),
        https = web.as_ref().is_some_and(|w| w.tls.is_some()),
        ae_title = %config.dicom.ae_title,
        http = ?web.as_ref().and_then(|w| w.listener.local_addr().ok()),
        data = %config.data_dir.display(),
        "Telediag is running"
    );
    // The one line a person starting the centre needs: where to open it.
    match &web {
        Some(web) => {
            let port = web.listener.local_addr()?.port();
            let scheme = if web.tls.is_some() { "https" } else { "http" };
            match web.state.web_app.missing() {
                None => println!("Telediag is running: open {scheme}://localhost:{port}/ in a browser and log in."),
                Some(missing) => println!("Telediag is running (API at {scheme}://localhost:{port}/api), but {missing}."),
            }
        }
        None => println!("Telediag {} is running.", roles.names()),
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let dicom = match (dicom, gateway_config) {
        (Some(listeners), Some(gateway_config)) => {
            let gateway = pacs_gateway::Gateway::new(gateway_config, archive.clone());
            Some(tokio::spawn(gateway.serve(listeners.plain, listeners.tls, wait_for(&stop_rx))))
        }
        _ => None,
    };
    let http = web.map(|web| spawn_web(web, &stop_rx)).transpose()?;
    let workers = if roles.worker { spawn_worker(&config, &archive, &stop_tx) } else { Vec::new() };

    shutdown.await;
    tracing::info!("shutting down: no new associations or requests; finishing objects in flight");
    let _ = stop_tx.send(true);
    if let Some(dicom) = dicom {
        let _ = dicom.await;
    }
    if let Some(http) = http {
        let _ = http.await;
    }
    for task in workers {
        let _ = task.await;
    }
    archive.wait_idle().await;
    tracing::info!(peak_rss_kib = peak_rss_kib(), "stopped");
    Ok(())
}
