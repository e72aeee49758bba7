-- Client certificates a site's devices present on the DICOM TLS port, by
-- the SHA-256 of their DER encoding (pinned: the hospital's own PKI or a
-- self-signed certificate both work). Removing the row revokes it.
CREATE TABLE site_certificates (
    fingerprint  TEXT    PRIMARY KEY,
    site_id      INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    subject      TEXT    NOT NULL,
    added_at     INTEGER NOT NULL
);
