-- PostgreSQL form of migrations/sqlite/0008_site_certificates.sql: the same tables and columns,
-- BIGINT for INTEGER, BYTEA for BLOB, identity keys, plpgsql triggers.

-- Client certificates a site's devices present on the DICOM TLS port, by
-- the SHA-256 of their DER encoding (pinned: the hospital's own PKI or a
-- self-signed certificate both work). Removing the row revokes it.
CREATE TABLE site_certificates (
    fingerprint  TEXT    PRIMARY KEY,
    site_id      BIGINT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    subject      TEXT    NOT NULL,
    added_at     BIGINT NOT NULL
);
