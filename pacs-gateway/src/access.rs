//! Who may open an association: the called AE must be ours, the calling AE
//! must belong to a site, and the peer's address must be in that site's
//! networks (when it lists any).

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use dicom_ul::association::server::AccessControl;
use dicom_ul::pdu::{AssociationRJServiceUserReason, UserIdentity};
use telediag_archive::SiteDirectory;

/// The access decision for one incoming connection. A refusal is written to
/// `refusal` so the association code can log who was refused and why (the
/// peer only sees the A-ASSOCIATE-RJ reason).
pub(crate) struct SiteAccess {
    pub directory: SiteDirectory,
    pub peer: IpAddr,
    pub refusal: Arc<Mutex<Option<Refusal>>>,
}

/// Who was refused, and why.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub calling_ae: String,
    pub called_ae: String,
    pub reason: String,
}

impl AccessControl for SiteAccess {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        let refuse = |reason: String| {
            *self.refusal.lock().expect("refusal lock") =
                Some(Refusal { calling_ae: calling_ae_title.trim().to_owned(), called_ae: called_ae_title.trim().to_owned(), reason });
        };
        if called_ae_title.trim() != this_ae_title.trim() {
            refuse(format!("called AE title {:?} is not ours ({this_ae_title})", called_ae_title.trim()));
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        self.directory.authorize(calling_ae_title, self.peer).map(|_| ()).map_err(|denied| {
            refuse(denied.to_string());
            AssociationRJServiceUserReason::CallingAETitleNotRecognized
        })
    }
}
