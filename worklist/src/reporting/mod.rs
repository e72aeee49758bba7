//! Reports over HTTP: the report panel's calls, the signed documents, and
//! the public verification page.
//!
//! What a version may do next is `telediag_workflow::reports`'; what is
//! here is what the workflow leaves to its caller: the first draft from a
//! template ([`drafts`]), the signed PDFs made and stored at each signer's
//! act ([`finalise`]), the PIN that opens the signer's key and the order
//! of prepare → sign → record ([`sign_off`]), and the site's webhook told
//! of a critical finding ([`critical_webhook`]).

pub mod critical_webhook;
pub mod drafts;
pub mod finalise;
pub mod routes;
pub mod sign_off;
