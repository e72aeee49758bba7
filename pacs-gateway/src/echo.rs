//! A C-ECHO client: "can I reach that AE?", for the operator CLI.

use std::time::{Duration, Instant};

use dicom_ul::ClientAssociationOptions;
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};

use crate::dimse::{CommandSet, echo_request};
use telediag_archive::sop_classes::VERIFICATION;

/// Why an echo failed.
#[derive(Debug, thiserror::Error)]
pub enum EchoError {
    #[error("could not associate with {ae}@{address}: {reason}")]
    Associate { ae: String, address: String, reason: String },
    #[error("C-ECHO exchange with {ae} failed: {reason}")]
    Exchange { ae: String, reason: String },
    #[error("{ae} answered C-ECHO with status {status:#06X}")]
    Status { ae: String, status: u16 },
}

/// Sends one C-ECHO from `calling_ae` to `called_ae` at `address`
/// (`host:port`) and returns the round-trip time.
pub async fn echo(address: &str, called_ae: &str, calling_ae: &str, timeout: Duration) -> Result<Duration, EchoError> {
    let started = Instant::now();
    let ae = called_ae.to_owned();
    let mut association = ClientAssociationOptions::new()
        .with_abstract_syntax(VERIFICATION)
        .calling_ae_title(calling_ae)
        .called_ae_title(called_ae)
        .read_timeout(timeout)
        .write_timeout(timeout)
        .connection_timeout(timeout)
        .establish_async(address)
        .await
        .map_err(|e| EchoError::Associate { ae: ae.clone(), address: address.to_owned(), reason: e.to_string() })?;
    let context_id = association.presentation_contexts()[0].id;
    let exchange = |e: dicom_ul::association::Error| EchoError::Exchange { ae: ae.clone(), reason: e.to_string() };
    association
        .send(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: context_id,
                value_type: PDataValueType::Command,
                is_last: true,
                data: echo_request(1),
            }],
        })
        .await
        .map_err(exchange)?;
    let reply = association.receive().await.map_err(exchange)?;
    let status = match reply {
        Pdu::PData { data } if !data.is_empty() => CommandSet::parse(&data[0].data)
            .ok()
            .and_then(|c| c.status())
            .ok_or_else(|| EchoError::Exchange { ae: ae.clone(), reason: "reply without a status".into() })?,
        other => return Err(EchoError::Exchange { ae: ae.clone(), reason: format!("unexpected reply {other:?}") }),
    };
    let _ = association.release().await;
    if status != 0 {
        return Err(EchoError::Status { ae, status });
    }
    Ok(started.elapsed())
}
