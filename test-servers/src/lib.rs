//! Real servers for tests, never mocks of them: an S3-compatible server
//! (`moto_server`, from PyPI) and PostgreSQL (Debian's `postgresql`). Each is started by the
//! test that needs it, on a free port, and stopped when dropped.
//!
//! A test calls `start()` and gets `None`, with a message on stderr, when
//! the server's program is not installed; with `TELEDIAG_REQUIRE_SERVERS=1`
//! (which `.ci/run` sets) a missing program fails the test instead, so CI
//! cannot pass by skipping.

pub mod postgres;
mod process;
pub mod s3;

pub use postgres::Postgres;
pub use s3::S3Server;
