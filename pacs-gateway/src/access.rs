//! Who may open an association: the called AE must be ours, the calling AE
//! must belong to a site, and the peer's address must be in that site's
//! networks (when it lists any).

use std::net::IpAddr;

use dicom_ul::pdu::{AssociationRJServiceUserReason, UserIdentity};
use dicom_ul::association::server::AccessControl;
use telediag_archive::SiteDirectory;

/// The access decision for one incoming connection.
pub(crate) struct SiteAccess {
    pub directory: SiteDirectory,
    pub peer: IpAddr,
}

impl AccessControl for SiteAccess {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        if called_ae_title.trim() != this_ae_title.trim() {
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        self.directory
            .authorize(calling_ae_title, self.peer)
            .map(|_| ())
            .map_err(|_| AssociationRJServiceUserReason::CallingAETitleNotRecognized)
    }
}
