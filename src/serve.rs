//! `telediag serve`: the whole centre in one process.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use telediag_archive::Archive;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;

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

pub async fn run(config: Config) -> Result<()> {
    let shutdown = shutdown_signal();
    let archive = Archive::open(&config.archive_config()).await.context("opening the archive")?;
    if let Some(password) = telediag_worklist::auth::ensure_admin(archive.database(), config.admin_password.as_deref())
        .await
        .context("creating the admin user")?
    {
        println!("Created user 'admin' with password {password} (shown once; set admin_password in the config to choose it).");
    }
    if config.demo {
        crate::demo::load(&archive, &config.data_dir).await.context("loading the demo centre")?;
    }

    // Everything that can fail or take a while happens before the ports open.
    let state = telediag_worklist::AppState::new(archive.clone(), config.worklist.clone(), &config.ca_dir())
        .context("opening the centre's certificate authority")?;
    let dicom_addr: SocketAddr = format!("{}:{}", config.dicom.bind, config.dicom.port).parse().context("dicom.bind")?;
    let http_addr: SocketAddr = format!("{}:{}", config.http.bind, config.http.port).parse().context("http.bind")?;
    let gateway_config = config.gateway_config()?;
    let https = config.https()?;
    let dicom_listener = TcpListener::bind(dicom_addr).await.with_context(|| format!("binding DICOM port {dicom_addr}"))?;
    let dicom_tls_listener = match config.dicom.tls_port {
        Some(port) => {
            let addr: SocketAddr = format!("{}:{port}", config.dicom.bind).parse().context("dicom.bind")?;
            Some(TcpListener::bind(addr).await.with_context(|| format!("binding DICOM TLS port {addr}"))?)
        }
        None => None,
    };
    let http_listener = TcpListener::bind(http_addr).await.with_context(|| format!("binding HTTP port {http_addr}"))?;
    state.check_listening(http_listener.local_addr()?);
    let mut state = state;
    state.https = https.is_some();
    state.release_memory = Some(|| {
        // SAFETY: mi_collect only frees memory mimalloc holds and no one uses.
        unsafe { libmimalloc_sys::mi_collect(true) }
    });
    tracing::info!(
        dicom = %dicom_listener.local_addr()?,
        dicom_tls = ?dicom_tls_listener.as_ref().and_then(|l| l.local_addr().ok()),
        https = https.is_some(),
        ae_title = %config.dicom.ae_title,
        http = %http_listener.local_addr()?,
        data = %config.data_dir.display(),
        "Telediag is running"
    );

    // The one line a person starting the centre needs: where to open it.
    let local = http_listener.local_addr()?;
    let scheme = if https.is_some() { "https" } else { "http" };
    match state.web_app.missing() {
        None => println!("Telediag is running: open {scheme}://localhost:{}/ in a browser and log in.", local.port()),
        Some(missing) => println!("Telediag is running (API at {scheme}://localhost:{}/api), but {missing}.", local.port()),
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let gateway = pacs_gateway::Gateway::new(gateway_config, archive.clone());
    let dicom = tokio::spawn(gateway.serve(dicom_listener, dicom_tls_listener, wait_for(&stop_rx)));
    let app = telediag_worklist::router(state.clone());
    let http = match https {
        None => tokio::spawn(async move {
            axum::serve(http_listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(wait_for(&stop_rx))
                .await
        }),
        Some(tls) => {
            let handle = axum_server::Handle::new();
            let stopping = handle.clone();
            let stopped = wait_for(&stop_rx);
            tokio::spawn(async move {
                stopped.await;
                stopping.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
            });
            let listener = http_listener.into_std()?;
            tokio::spawn(async move {
                axum_server::from_tcp_rustls(listener, axum_server::tls_rustls::RustlsConfig::from_config(tls))
                    .handle(handle)
                    .serve(app.into_make_service_with_connect_info::<SocketAddr>())
                    .await
            })
        }
    };
    let intake = tokio::spawn(state.workflow.clone().run_intake(stop_tx.subscribe()));
    let sweeper = tokio::spawn(state.workflow.clone().run_lock_sweeper(stop_tx.subscribe()));
    let pipeline = tokio::spawn(telediag_pipeline::run(archive.clone(), config.imaging_threads(), stop_tx.subscribe()));
    let stability = tokio::spawn(telediag_archive::stability::run_stability_monitor(
        archive.database().clone(),
        std::time::Duration::from_secs(config.archive.study_stable_secs),
        wait_for(&stop_tx.subscribe()),
    ));

    shutdown.await;
    tracing::info!("shutting down: no new associations or requests; finishing objects in flight");
    let _ = stop_tx.send(true);
    let _ = dicom.await;
    let _ = http.await;
    let _ = stability.await;
    let _ = intake.await;
    let _ = sweeper.await;
    let _ = pipeline.await;
    archive.wait_idle().await;
    tracing::info!(peak_rss_kib = peak_rss_kib(), "stopped");
    Ok(())
}
