//! One association, from A-ASSOCIATE-RQ to A-RELEASE or A-ABORT.
//!
//! P-DATA fragments of a C-STORE dataset are written into the archive's
//! staging file as they arrive, so memory per association is the PDU buffer
//! whatever the object's size. When the last fragment arrives the archive
//! checks, publishes and indexes the object, and only then is the C-STORE-RSP
//! sent: success, or the failure status with an Error Comment saying why.
//!
//! A peer that breaks the protocol (garbage, an over-long PDU, fragments on an
//! unknown presentation context, data without a command) is aborted and
//! logged; whatever it had half-sent is removed; other associations carry on.

use std::net::SocketAddr;
use std::sync::Arc;

use dicom_ul::ServerAssociationOptions;
use dicom_ul::association::{Association, AsyncServerAssociation};
use dicom_ul::pdu::{
    AbortRQServiceProviderReason, AbortRQSource, AssociationRJ, AssociationRJResult, AssociationRJServiceProviderPresentationReason,
    AssociationRJSource, PDataValue, PDataValueType, Pdu, PresentationContextResultReason,
};
use telediag_archive::ingest::IndexReceipt;
use telediag_archive::{Archive, FileMeta, IncomingObject, IngestError, Origin, Outcome, SiteDirectory, SiteRef};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::GatewayConfig;
use crate::access::SiteAccess;
use crate::dimse::{CommandSet, command, response};
use crate::status;
use telediag_archive::sop_classes::{STORAGE_SOP_CLASSES, VERIFICATION};

/// Largest command set we buffer; real ones are a few hundred bytes.
const MAX_COMMAND_SET: usize = 64 * 1024;

/// Status: SOP Class not supported (PS3.7 §C.4.2).
const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;

pub(crate) struct Context {
    pub config: Arc<GatewayConfig>,
    pub archive: Archive,
    pub stop: watch::Receiver<bool>,
}

/// A C-STORE whose dataset is arriving.
struct PendingStore {
    message_id: u16,
    context_id: u8,
    sop_class_uid: String,
    sop_instance_uid: String,
    /// `Err` once the object is known to fail: the rest of its fragments are
    /// read and dropped, then the failure is the response.
    object: Result<IncomingObject, (u16, String)>,
}

/// What ends an association early.
enum Abort {
    /// The peer broke the protocol; we send A-ABORT.
    Protocol(String),
    /// The connection is gone (closed, aborted by the peer, timed out).
    Gone(String),
}

/// Rejects a connection when every association slot is taken: A-ASSOCIATE-RJ,
/// transient, "local limit exceeded", so the sender retries later.
pub(crate) async fn reject_busy(mut socket: TcpStream, peer: SocketAddr) {
    tracing::warn!(peer = %peer, "association refused: too many associations at once");
    let rj = Pdu::AssociationRJ(AssociationRJ {
        result: AssociationRJResult::Transient,
        source: AssociationRJSource::ServiceProviderPresentation(AssociationRJServiceProviderPresentationReason::LocalLimitExceeded),
    });
    let mut bytes = Vec::new();
    if dicom_ul::write_pdu(&mut bytes, &rj).is_ok() {
        let _ = socket.write_all(&bytes).await;
    }
    let _ = socket.shutdown().await;
}

/// Answers a connection whose first PDU is not a usable A-ASSOCIATE-RQ
/// with A-ABORT, and closes it.
pub(crate) async fn refuse_opening(mut socket: TcpStream, peer: SocketAddr, reason: &str) {
    tracing::warn!(peer = %peer, reason, "connection refused before association");
    let abort = Pdu::AbortRQ { source: AbortRQSource::ServiceProvider(AbortRQServiceProviderReason::UnexpectedPdu) };
    let mut bytes = Vec::new();
    if dicom_ul::write_pdu(&mut bytes, &abort).is_ok() {
        let _ = socket.write_all(&bytes).await;
    }
    let _ = socket.shutdown().await;
}

fn options(
    config: &GatewayConfig,
    access: SiteAccess,
) -> ServerAssociationOptions<'static, SiteAccess, dicom_ul::association::server::DefaultNegotiation> {
    let mut options = ServerAssociationOptions::new()
        .ae_access_control(access)
        .ae_title(config.ae_title.clone())
        .max_pdu_length(config.max_pdu_length)
        .strict(true)
        .read_timeout(config.idle_timeout)
        .write_timeout(config.idle_timeout)
        .with_abstract_syntax(VERIFICATION);
    for (uid, _) in STORAGE_SOP_CLASSES {
        options = options.with_abstract_syntax(*uid);
    }
    options
}

/// An association's transport: TCP, or TLS over it.
pub(crate) trait Transport: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Transport for T {}

/// The sites as they are now; `None` (logged) when the index is unreachable.
async fn directory(context: &Context, peer: SocketAddr) -> Option<SiteDirectory> {
    match context.archive.database().site_directory().await {
        Ok(directory) => Some(directory),
        Err(e) => {
            tracing::error!(peer = %peer, error = %e, "cannot read sites; refusing association");
            None
        }
    }
}

/// The established association, or `None` once why not is logged.
async fn established<S>(
    establish: impl std::future::Future<Output = Result<AsyncServerAssociation<S>, dicom_ul::association::Error>>,
    limit: std::time::Duration,
    peer: SocketAddr,
    refusal: &std::sync::Mutex<Option<crate::access::Refusal>>,
) -> Option<AsyncServerAssociation<S>> {
    let Ok(established) = tokio::time::timeout(limit, establish).await else {
        tracing::warn!(peer = %peer, "association negotiation did not finish in time (ARTIM); closed");
        return None;
    };
    match established {
        Ok(association) => Some(association),
        Err(dicom_ul::association::Error::ConnectionClosed { .. }) => {
            // A port probe (load balancer, monitoring) rather than a sender.
            tracing::debug!(peer = %peer, "connection closed before an association request");
            None
        }
        Err(e) => {
            match refusal.lock().expect("refusal lock").take() {
                Some(refused) => tracing::warn!(
                    peer = %peer,
                    calling_ae = %refused.calling_ae,
                    called_ae = %refused.called_ae,
                    reason = %refused.reason,
                    "association rejected"
                ),
                None => tracing::warn!(peer = %peer, error = %error_chain(&e), "association not established"),
            }
            None
        }
    }
}

pub(crate) async fn run(socket: TcpStream, peer: SocketAddr, context: Context) {
    let Some(directory) = directory(&context, peer).await else { return reject_busy(socket, peer).await };
    let refusal = Arc::new(std::sync::Mutex::new(None));
    let access = SiteAccess { directory: directory.clone(), peer: peer.ip(), refusal: refusal.clone() };
    let options = options(&context.config, access);
    // The request is already in the socket (see `admission`); the timer
    // only guards against a peer that stops answering mid-negotiation.
    let limit = context.config.association_request_timeout;
    let Some(association) = established(options.establish_async(socket), limit, peer, &refusal).await else { return };
    let calling_ae = association.peer_ae_title().trim().to_owned();
    match directory.authorize(&calling_ae, peer.ip()) {
        // A site whose devices have pinned certificates sends over TLS only:
        // otherwise its AE title alone would open the plain port.
        Ok(site) if directory.requires_tls(site.id) => {
            tracing::warn!(peer = %peer, calling_ae = %calling_ae, site = %site.name, "association refused: this site sends over DICOM TLS only");
            let _ = association.abort().await;
        }
        Ok(site) => serve(association, peer, context, site, calling_ae).await,
        Err(denied) => {
            tracing::warn!(peer = %peer, calling_ae = %calling_ae, reason = %denied, "association refused");
            let _ = association.abort().await;
        }
    }
}

/// An association on the DICOM TLS port: the handshake accepts only a
/// client certificate pinned to a site (see [`crate::tls`]), and the calling
/// AE must be that site's. The connection stays *opening* (its `ticket`)
/// through the handshake and the A-ASSOCIATE-RQ, within what is left of
/// ARTIM (`deadline`), and takes an association slot only after both: a
/// peer that sends a TLS record header and stops holds no slot.
pub(crate) async fn run_tls(
    socket: TcpStream,
    peer: SocketAddr,
    context: Context,
    tls: crate::tls::DicomTls,
    ticket: crate::admission::Ticket,
    slots: Arc<tokio::sync::Semaphore>,
    deadline: tokio::time::Instant,
) {
    let Some(directory) = directory(&context, peer).await else { return };
    tls.refresh(&directory);
    let refusal = Arc::new(std::sync::Mutex::new(None));
    let access = SiteAccess { directory: directory.clone(), peer: peer.ip(), refusal: refusal.clone() };
    let options = options(&context.config, access).tls_config(tls.server.clone());
    let limit = deadline.saturating_duration_since(tokio::time::Instant::now());
    let association = tokio::select! {
        association = established(options.establish_tls_async(socket), limit, peer, &refusal) => association,
        () = ticket.evicted.notified() => {
            return tracing::debug!(peer = %peer, "TLS connection displaced by newer ones before its association request");
        }
    };
    let Some(mut association) = association else { return };
    drop(ticket);
    let Ok(_slot) = slots.try_acquire_owned() else {
        tracing::warn!(peer = %peer, "TLS association refused: too many associations at once");
        let _ = association.abort().await;
        return;
    };
    let calling_ae = association.peer_ae_title().trim().to_owned();
    let certificate =
        association.inner_stream().get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| crate::tls::fingerprint(c));
    let Some(certificate_site) = certificate.as_deref().and_then(|f| directory.site_of_certificate(f)).cloned() else {
        tracing::warn!(peer = %peer, calling_ae = %calling_ae, "TLS association refused: the client certificate was unpinned meanwhile");
        let _ = association.abort().await;
        return;
    };
    match directory.authorize_with_certificate(&calling_ae, peer.ip(), &certificate_site) {
        Ok(site) => serve(association, peer, context, site, calling_ae).await,
        Err(denied) => {
            tracing::warn!(peer = %peer, calling_ae = %calling_ae, reason = %denied, "TLS association refused");
            let _ = association.abort().await;
        }
    }
}

/// Serves an established association until it is released or aborted.
async fn serve<S: Transport>(
    mut association: AsyncServerAssociation<S>,
    peer: SocketAddr,
    context: Context,
    site: SiteRef,
    calling_ae: String,
) {
    let accepted: Vec<_> =
        association.presentation_contexts().iter().filter(|pc| pc.reason == PresentationContextResultReason::Acceptance).collect();
    // Staging files for this site's objects are made while its first
    // command is on its way; an association that can only echo gets none.
    if accepted.iter().any(|pc| pc.abstract_syntax.trim_end_matches('\0') != VERIFICATION) {
        context.archive.prepare_site(site.id);
    }
    let accepted = accepted.len();
    tracing::info!(
        peer = %peer,
        calling_ae = %calling_ae,
        site = %site.name,
        accepted_contexts = accepted,
        max_pdu = association.requestor_max_pdu_length(),
        "association accepted"
    );

    let mut session = Session {
        archive: context.archive,
        origin: Origin { site_id: site.id, calling_ae: Some(calling_ae.clone()) },
        site,
        calling_ae,
        peer,
        command: Vec::new(),
        pending: None,
        stored: 0,
        receipts: Vec::new(),
    };
    let mut stop = context.stop;
    let outcome = loop {
        let pdu = if session.pending.is_none() && !*stop.borrow() {
            tokio::select! {
                pdu = association.receive() => pdu,
                _ = stop.changed() => break Err(Abort::Gone("service shutting down".into())),
            }
        } else if session.pending.is_none() {
            break Err(Abort::Gone("service shutting down".into()));
        } else {
            association.receive().await
        };
        let pdu = match pdu {
            Ok(pdu) => pdu,
            Err(e) => break Err(classify(e)),
        };
        match pdu {
            Pdu::PData { data } => {
                let mut failed = None;
                for value in data {
                    if let Err(abort) = session.on_pdata(&mut association, value).await {
                        failed = Some(abort);
                        break;
                    }
                }
                if let Some(abort) = failed {
                    break Err(abort);
                }
            }
            Pdu::ReleaseRQ => {
                // Confirm the release once everything acknowledged is queryable,
                // and its index rows durable, too.
                session.settle().await;
                let _ = association.send(&Pdu::ReleaseRP).await;
                break Ok(());
            }
            Pdu::AbortRQ { source } => break Err(Abort::Gone(format!("peer aborted ({source:?})"))),
            other => break Err(Abort::Protocol(format!("unexpected {} during the association", pdu_name(&other)))),
        }
    };
    if outcome.is_err() {
        session.settle().await;
    }
    let log = &session;
    match outcome {
        Ok(()) => tracing::info!(peer = %log.peer, calling_ae = %log.calling_ae, stored = log.stored, "association released"),
        Err(Abort::Gone(reason)) => {
            if session.pending.is_some() {
                tracing::warn!(peer = %log.peer, calling_ae = %log.calling_ae, reason = %reason, "association ended mid-object; partial object discarded");
            } else {
                tracing::info!(peer = %log.peer, calling_ae = %log.calling_ae, stored = log.stored, reason = %reason, "association ended");
            }
            let _ = association.abort().await;
        }
        Err(Abort::Protocol(reason)) => {
            tracing::warn!(peer = %log.peer, calling_ae = %log.calling_ae, reason = %reason, "aborting association");
            let _ = association.abort().await;
        }
    }
}

fn pdu_name(pdu: &Pdu) -> &'static str {
    match pdu {
        Pdu::AssociationRQ(_) => "A-ASSOCIATE-RQ",
        Pdu::AssociationAC(_) => "A-ASSOCIATE-AC",
        Pdu::AssociationRJ(_) => "A-ASSOCIATE-RJ",
        Pdu::PData { .. } => "P-DATA-TF",
        Pdu::ReleaseRQ => "A-RELEASE-RQ",
        Pdu::ReleaseRP => "A-RELEASE-RP",
        Pdu::AbortRQ { .. } => "A-ABORT",
        Pdu::Unknown { .. } => "an unknown PDU type",
    }
}

fn classify(e: dicom_ul::association::Error) -> Abort {
    use dicom_ul::association::Error;
    match e {
        Error::Timeout { .. } => Abort::Gone("idle timeout".into()),
        Error::ConnectionClosed { .. } => Abort::Gone("connection closed by peer".into()),
        Error::ReceivePdu { .. } => Abort::Protocol(format!("unreadable PDU: {}", error_chain(&e))),
        other => Abort::Gone(error_chain(&other)),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

struct Session {
    archive: Archive,
    origin: Origin,
    site: SiteRef,
    calling_ae: String,
    peer: SocketAddr,
    command: Vec<u8>,
    pending: Option<PendingStore>,
    stored: u64,
    /// Index rows of this association's objects still being written.
    receipts: Vec<IndexReceipt>,
}

impl Session {
    /// Waits for this association's index rows, then makes them durable.
    async fn settle(&mut self) {
        if self.receipts.is_empty() {
            return;
        }
        for receipt in self.receipts.drain(..) {
            if let Err(e) = receipt.wait().await {
                tracing::error!(calling_ae = %self.calling_ae, error = %e, "an acknowledged object is not indexed yet");
            }
        }
        self.archive.sync_index().await;
    }

    async fn on_pdata<S: Transport>(&mut self, association: &mut AsyncServerAssociation<S>, value: PDataValue) -> Result<(), Abort> {
        let context = association
            .presentation_contexts()
            .iter()
            .find(|pc| pc.id == value.presentation_context_id && pc.reason == PresentationContextResultReason::Acceptance)
            .cloned()
            .ok_or_else(|| {
                Abort::Protocol(format!("P-DATA on presentation context {} which was not accepted", value.presentation_context_id))
            })?;
        match value.value_type {
            PDataValueType::Command => {
                if self.pending.is_some() {
                    return Err(Abort::Protocol("a command arrived before the previous dataset ended".into()));
                }
                if self.command.len() + value.data.len() > MAX_COMMAND_SET {
                    return Err(Abort::Protocol(format!("command set longer than {MAX_COMMAND_SET} bytes")));
                }
                self.command.extend_from_slice(&value.data);
                if value.is_last {
                    let bytes = std::mem::take(&mut self.command);
                    self.on_command(association, &bytes, context.id, &context.abstract_syntax, &context.transfer_syntax).await?;
                }
                Ok(())
            }
            PDataValueType::Data => {
                let Some(pending) = self.pending.as_mut() else {
                    return Err(Abort::Protocol("dataset fragment without a C-STORE command".into()));
                };
                if pending.context_id != value.presentation_context_id {
                    return Err(Abort::Protocol("dataset fragments switched presentation context".into()));
                }
                if let Ok(object) = pending.object.as_mut()
                    && let Err(e) = object.write(&value.data)
                {
                    tracing::error!(error = %e, sop_instance_uid = %pending.sop_instance_uid, "cannot write to staging");
                    pending.object = Err((status::OUT_OF_RESOURCES, format!("out of resources: cannot store: {e}")));
                }
                if value.is_last {
                    let pending = self.pending.take().expect("checked above");
                    self.finish_store(association, pending).await?;
                }
                Ok(())
            }
        }
    }

    async fn on_command<S: Transport>(
        &mut self,
        association: &mut AsyncServerAssociation<S>,
        bytes: &[u8],
        context_id: u8,
        abstract_syntax: &str,
        transfer_syntax: &str,
    ) -> Result<(), Abort> {
        let command_set = CommandSet::parse(bytes).map_err(|e| Abort::Protocol(e.to_string()))?;
        let field = command_set.command_field().map_err(|e| Abort::Protocol(e.to_string()))?;
        let message_id = command_set.message_id().map_err(|e| Abort::Protocol(e.to_string()))?;
        match field {
            command::C_ECHO_RQ => {
                let reply = response(command::C_ECHO_RSP, message_id, VERIFICATION, None, status::SUCCESS, None);
                send_command(association, context_id, reply).await
            }
            command::C_STORE_RQ => {
                if !command_set.has_dataset() {
                    return Err(Abort::Protocol("C-STORE-RQ without a dataset".into()));
                }
                let sop_class_uid = command_set.affected_sop_class_uid().unwrap_or_default();
                let sop_instance_uid = command_set.affected_sop_instance_uid().unwrap_or_default();
                let object = if sop_instance_uid.is_empty() || sop_class_uid.is_empty() {
                    Err((status::CANNOT_UNDERSTAND, "C-STORE-RQ lacks Affected SOP Class or Instance UID".into()))
                } else if sop_class_uid != abstract_syntax {
                    Err((SOP_CLASS_NOT_SUPPORTED, format!("SOP Class {sop_class_uid} sent on a context for {abstract_syntax}")))
                } else {
                    let meta = FileMeta {
                        sop_class_uid: sop_class_uid.clone(),
                        sop_instance_uid: sop_instance_uid.clone(),
                        transfer_syntax_uid: transfer_syntax.to_owned(),
                        source_ae_title: Some(self.calling_ae.clone()),
                    };
                    self.archive.begin(meta, self.site.id).map_err(|e| (status::for_ingest(&e), e.to_string()))
                };
                self.pending = Some(PendingStore { message_id, context_id, sop_class_uid, sop_instance_uid, object });
                Ok(())
            }
            other => Err(Abort::Protocol(format!("unsupported DIMSE command field {other:#06X}"))),
        }
    }

    async fn finish_store<S: Transport>(
        &mut self,
        association: &mut AsyncServerAssociation<S>,
        pending: PendingStore,
    ) -> Result<(), Abort> {
        let result = match pending.object {
            Ok(object) => self.archive.commit(object, &self.origin).await.map_err(|e: IngestError| (status::for_ingest(&e), e.to_string())),
            Err(failure) => Err(failure),
        };
        let (code, comment) = match result {
            Ok(stored) => {
                self.stored += 1;
                self.receipts.push(stored.indexed);
                match stored.outcome {
                    Outcome::Stored => {
                        tracing::debug!(study_uid = %stored.study_uid, sop_instance_uid = %stored.sop_instance_uid, bytes = stored.size_bytes, "stored")
                    }
                    Outcome::Duplicate => {
                        tracing::info!(sop_instance_uid = %stored.sop_instance_uid, calling_ae = %self.calling_ae, "duplicate of a stored object; nothing written")
                    }
                    Outcome::NewVersion(version) => {
                        tracing::warn!(sop_instance_uid = %stored.sop_instance_uid, calling_ae = %self.calling_ae, version, "stored as a new version")
                    }
                }
                (status::SUCCESS, None)
            }
            Err((code, reason)) => {
                tracing::warn!(
                    calling_ae = %self.calling_ae,
                    site = %self.site.name,
                    sop_instance_uid = %pending.sop_instance_uid,
                    status = format!("{code:#06X}"),
                    reason = %reason,
                    "C-STORE failed"
                );
                (code, Some(reason))
            }
        };
        let reply = response(
            command::C_STORE_RSP,
            pending.message_id,
            &pending.sop_class_uid,
            Some(&pending.sop_instance_uid),
            code,
            comment.as_deref(),
        );
        send_command(association, pending.context_id, reply).await
    }
}

async fn send_command<S: Transport>(association: &mut AsyncServerAssociation<S>, context_id: u8, data: Vec<u8>) -> Result<(), Abort> {
    association
        .send(&Pdu::PData {
            data: vec![PDataValue { presentation_context_id: context_id, value_type: PDataValueType::Command, is_last: true, data }],
        })
        .await
        .map_err(|e| Abort::Gone(format!("cannot send response: {}", error_chain(&e))))
}
