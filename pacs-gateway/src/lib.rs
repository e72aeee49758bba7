//! Telediag's DICOM network service.
//!
//! County hospitals' modalities and PACS open associations here and send
//! C-STORE requests; the gateway streams each object into the archive and
//! answers only once the archive has made it durable and indexed it.
//!
//! - [`Gateway`]: the listener. [`GatewayConfig`] holds every limit, each with
//!   a documented default: concurrent associations, idle timeout, max PDU.
//! - `association`: one association from A-ASSOCIATE to A-RELEASE / A-ABORT:
//!   C-ECHO, C-STORE, streaming P-DATA into the archive.
//! - `access`: AE-title and network checks against the archive's sites.
//! - [`dimse`]: command sets (the storage SOP classes accepted are the
//!   archive's `sop_classes`).
//! - [`echo`]: a C-ECHO client for the operator CLI.
//!
//! What it does not do: it never talks to the worklist or reads pixels; sites
//! and objects go through the archive. Query/retrieve and TLS come later.

mod access;
mod admission;
mod association;
pub mod dimse;
pub mod echo;
pub mod status;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use telediag_archive::Archive;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// Limits and identity of the DICOM service.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Our AE title; associations calling another are rejected. Default `TELEDIAG`.
    pub ae_title: String,
    /// Associations served at once; more are rejected as "local limit
    /// exceeded" (transient), so senders retry. Default 64.
    pub max_associations: usize,
    /// An association silent this long is aborted. Default 120 s. It applies
    /// only once the association is established: see `association_request_timeout`.
    pub idle_timeout: Duration,
    /// ARTIM (PS3.8 §9.1.5): a connection whose A-ASSOCIATE-RQ has not
    /// arrived whole this long after it opened is closed. Until then it
    /// holds no association slot. Default 10 s.
    pub association_request_timeout: Duration,
    /// Connections still waiting for their A-ASSOCIATE-RQ, from one address
    /// and in all. Over either, the oldest such connection is closed to
    /// make room, so idle sockets cannot keep a real sender out. Defaults
    /// 64 (a hospital behind one NAT address may open as many associations
    /// as the centre serves, all at once) and 256.
    pub max_opening_per_address: usize,
    pub max_opening: usize,
    /// Largest PDU we accept (and announce). Default 256 KiB: big enough that
    /// a 1 GB object is 4,000 PDUs, small enough that 64 associations hold
    /// well under 100 MB of buffers.
    pub max_pdu_length: u32,
    /// On shutdown, how long associations may take to finish the object they
    /// are receiving. Default 30 s.
    pub shutdown_grace: Duration,
    /// DICOM TLS for the second listener (see [`tls`]); `None`: no TLS port.
    pub tls: Option<tls::DicomTls>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            ae_title: "TELEDIAG".into(),
            max_associations: 64,
            idle_timeout: Duration::from_secs(120),
            association_request_timeout: Duration::from_secs(10),
            max_opening_per_address: 64,
            max_opening: 256,
            max_pdu_length: 256 * 1024,
            shutdown_grace: Duration::from_secs(30),
            tls: None,
        }
    }
}

/// The DICOM listener.
pub struct Gateway {
    config: Arc<GatewayConfig>,
    archive: Archive,
}

impl Gateway {
    pub fn new(config: GatewayConfig, archive: Archive) -> Gateway {
        Gateway { config: Arc::new(config), archive }
    }

    /// Serves associations on `listener` (and DICOM TLS on `tls_listener`,
    /// with [`GatewayConfig::tls`]) until `shutdown` resolves, then stops
    /// accepting, lets associations finish the objects in flight (up to
    /// `shutdown_grace`) and returns. Both ports share the limits.
    pub async fn serve(self, listener: TcpListener, tls_listener: Option<TcpListener>, shutdown: impl std::future::Future<Output = ()>) {
        let tls = match (tls_listener, self.config.tls.clone()) {
            (Some(listener), Some(tls)) => Some((listener, tls)),
            (Some(_), None) => {
                tracing::error!("a DICOM TLS port without a TLS configuration; not serving it");
                None
            }
            _ => None,
        };
        let slots = Arc::new(Semaphore::new(self.config.max_associations));
        let admission = admission::Admission::new(self.config.max_opening, self.config.max_opening_per_address);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut associations = JoinSet::new();
        tokio::pin!(shutdown);
        let accept_tls = async |tls: &Option<(TcpListener, tls::DicomTls)>| match tls {
            Some((listener, config)) => listener.accept().await.map(|pair| (pair, Some(config.clone()))),
            None => std::future::pending().await,
        };
        loop {
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => accepted.map(|pair| (pair, None)),
                accepted = accept_tls(&tls) => accepted,
                Some(_) = associations.join_next(), if !associations.is_empty() => continue,
            };
            let ((socket, peer), tls) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            let ticket = admission.admit(peer.ip());
            let slots = slots.clone();
            let context = association::Context { config: self.config.clone(), archive: self.archive.clone(), stop: stop_rx.clone() };
            associations.spawn(async move {
                let artim = context.config.association_request_timeout;
                let deadline = tokio::time::Instant::now() + artim;
                let opening = match &tls {
                    None => admission::first_pdu(&socket, artim, &ticket.evicted).await,
                    Some(_) => admission::first_tls_record(&socket, artim, &ticket.evicted).await,
                };
                match opening {
                    admission::FirstPdu::Request => {}
                    admission::FirstPdu::NotARequest(reason) => return association::refuse_opening(socket, peer, &reason).await,
                    admission::FirstPdu::Closed => {
                        // A port probe (load balancer, monitoring) rather than a sender.
                        return tracing::debug!(peer = %peer, "connection closed before an association request");
                    }
                    admission::FirstPdu::TimedOut => {
                        return tracing::debug!(peer = %peer, "no association request in time (ARTIM) or displaced by newer connections; closed");
                    }
                }
                match tls {
                    // Over TLS the request is only readable after the
                    // handshake: the connection stays opening until then.
                    Some(tls) => association::run_tls(socket, peer, context, tls, ticket, slots, deadline).await,
                    None => {
                        drop(ticket);
                        match slots.try_acquire_owned() {
                            Ok(_slot) => association::run(socket, peer, context).await,
                            Err(_) => association::reject_busy(socket, peer).await,
                        }
                    }
                }
            });
        }
        drop(listener); // new associations are refused from here on
        let _ = stop_tx.send(true);
        let in_flight = associations.len();
        if in_flight > 0 {
            tracing::info!(in_flight, "DICOM listener closed; finishing associations");
        }
        let drain = async { while associations.join_next().await.is_some() {} };
        if tokio::time::timeout(self.config.shutdown_grace, drain).await.is_err() {
            tracing::warn!(left = associations.len(), "associations still open after the grace period; aborting them");
            associations.abort_all();
        }
    }
}
