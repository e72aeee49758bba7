//! Telediag's archive: the record of everything the centre has received.
//!
//! A tour:
//!
//! - [`ingest`]: the durable-ingest protocol (receive, verify, publish, index, recover). [`Archive::begin`] /
//!   [`Archive::commit`] for objects arriving over the network,
//!   [`Archive::import_file`] for files on disk. An object is acknowledged only
//!   once it is durable in the object store and indexed.
//! - [`scan`]: one streaming pass over a dataset that checks its structure and
//!   reads the attributes the index needs; [`charset`] decodes their text
//!   (GB18030, GBK, UTF-8, Latin-1 and the ISO 2022 forms).
//! - [`store`]: the object-store contract and its local-directory backend;
//!   [`layout`]: which key each object gets; [`objects`]: how everyone else
//!   reads and writes objects, by key, never by path.
//! - [`db`], [`index`]: the index database (sqlx, SQLite) and its queries;
//!   `indexer` batches index writes into group commits.
//! - [`sites`]: county hospitals, their AE titles and networks.
//! - [`derived`]: thumbnails and previews, recorded with their failures.
//! - [`jobs`]: a durable job queue; [`stability`]: marks studies complete and
//!   queues their jobs.
//! - [`accounts`]: stored users and sessions (hashes only).
//! - [`person_name`]: DICOM person names as people read them (张伟, not
//!   `Zhang^Wei=张^伟`).
//!
//! What it does not do: the archive knows nothing of DIMSE, HTTP or pixels.
//! It never transcodes: the original bytes are the record.

pub mod accounts;
pub mod charset;
#[cfg(test)]
mod conformance;
pub mod db;
pub mod derived;
mod dir_sync;
pub mod index;
mod indexer;
pub mod ingest;
pub mod jobs;
pub mod layout;
pub mod objects;
pub mod part10;
pub mod person_name;
mod placement;
pub mod scan;
pub mod search;
pub mod sites;
pub mod sop_classes;
pub mod sql;
pub mod stability;
pub mod store;
pub mod uid;

pub use db::{Database, DbError, Durability};
pub use ingest::{Archive, ArchiveConfig, IncomingObject, IngestError, OpenError, Origin, Outcome, Storage, Stored};
pub use part10::FileMeta;
pub use sites::{AccessDenied, NewSite, Site, SiteDirectory, SiteRef};
pub use uid::{SeriesUid, SopClassUid, SopInstanceUid, StudyUid, TransferSyntaxUid, UidError};
