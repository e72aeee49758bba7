-- The worklist's tables: read requests, their history, reports, critical
-- findings, report downloads and the audit log. The archive only carries the
-- schema (one migration sequence for one database); the worklist owns the
-- queries.

-- How a site's requests are assigned and signed.
--   assignment_mode: 'pool' (readers claim, 抢单) or 'auto' (by rules)
--   single_signature: 1 when the reporting doctor's signature makes a report final
--   critical_webhook: URL POSTed when a critical finding is flagged
ALTER TABLE sites ADD COLUMN assignment_mode TEXT NOT NULL DEFAULT 'pool';
ALTER TABLE sites ADD COLUMN single_signature INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sites ADD COLUMN critical_webhook TEXT;

-- A reader's credentials: the modalities they may read, and the sites (none
-- listed = every site).
CREATE TABLE reader_modalities (
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    modality  TEXT    NOT NULL,
    PRIMARY KEY (user_id, modality)
);
CREATE TABLE reader_sites (
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    site_id   INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, site_id)
);

-- A request to read one study (or one ECG). Registered ahead by the site
-- (origin 'registered', study_uid NULL until images arrive) or created when
-- a study completes (origin 'arrival'; reconciled = 0 while no registered
-- request matches it).
CREATE TABLE read_requests (
    id                    INTEGER PRIMARY KEY,
    site_id               INTEGER NOT NULL REFERENCES sites(id),
    origin                TEXT    NOT NULL,
    reconciled            INTEGER NOT NULL DEFAULT 0,
    state                 TEXT    NOT NULL,
    -- the state before the last change (written by the same UPDATE)
    previous_state        TEXT,
    priority              TEXT    NOT NULL,
    modality              TEXT,
    study_uid             TEXT    UNIQUE,
    study_date            TEXT,
    patient_name          TEXT,
    patient_sex           TEXT,
    patient_age           TEXT,
    patient_id            TEXT,
    department            TEXT,
    inpatient_number      TEXT,
    bed_number            TEXT,
    accession_number      TEXT,
    requested_exam        TEXT,
    clinical_history      TEXT,
    requesting_physician  TEXT,
    created_by            INTEGER REFERENCES users(id),
    created_at            INTEGER NOT NULL,
    images_at             INTEGER,
    deadline_at           INTEGER,
    assigned_to           INTEGER REFERENCES users(id),
    locked_until          INTEGER,
    updated_at            INTEGER NOT NULL
);
CREATE INDEX read_requests_state ON read_requests (state, deadline_at);
CREATE INDEX read_requests_site ON read_requests (site_id, created_at);
CREATE INDEX read_requests_accession ON read_requests (site_id, accession_number);
CREATE INDEX read_requests_patient ON read_requests (site_id, patient_id);
CREATE INDEX read_requests_reader ON read_requests (assigned_to, state);

-- Every state change of a request: who, when, from what to what.
CREATE TABLE request_events (
    id           INTEGER PRIMARY KEY,
    request_id   INTEGER NOT NULL REFERENCES read_requests(id),
    from_state   TEXT,
    to_state     TEXT    NOT NULL,
    user_id      INTEGER REFERENCES users(id),
    note         TEXT,
    at           INTEGER NOT NULL
);
CREATE INDEX request_events_request ON request_events (request_id, id);

-- Report versions. Version 1 is the report; later versions are addenda or
-- amendments of a final one, which is then marked superseded (amendment)
-- or stays final (addendum). Signed versions never change.
CREATE TABLE reports (
    id                   INTEGER PRIMARY KEY,
    request_id           INTEGER NOT NULL REFERENCES read_requests(id),
    version              INTEGER NOT NULL,
    kind                 TEXT    NOT NULL,
    state                TEXT    NOT NULL,
    template             TEXT    NOT NULL,
    method               TEXT    NOT NULL DEFAULT '',
    findings             TEXT    NOT NULL DEFAULT '',
    conclusion           TEXT    NOT NULL DEFAULT '',
    critical             INTEGER NOT NULL DEFAULT 0,
    -- SOP Instance UIDs of the study's images printed on the form (JSON array)
    key_images           TEXT    NOT NULL DEFAULT '[]',
    author_id            INTEGER REFERENCES users(id),
    author_signed_at     INTEGER,
    reviewer_id          INTEGER REFERENCES users(id),
    reviewer_signed_at   INTEGER,
    supersedes           INTEGER REFERENCES reports(id),
    pdf_key              TEXT,
    pdf_sha256           TEXT,
    verify_token         TEXT    UNIQUE,
    revoked              INTEGER NOT NULL DEFAULT 0,
    revoked_reason       TEXT,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    UNIQUE (request_id, version)
);

-- Critical findings (危急值) and who at the site acknowledged them.
CREATE TABLE critical_findings (
    id                INTEGER PRIMARY KEY,
    request_id        INTEGER NOT NULL REFERENCES read_requests(id),
    site_id           INTEGER NOT NULL REFERENCES sites(id),
    note              TEXT    NOT NULL,
    flagged_by        INTEGER NOT NULL REFERENCES users(id),
    flagged_at        INTEGER NOT NULL,
    webhook_status    TEXT,
    acknowledged_by   INTEGER REFERENCES users(id),
    acknowledged_at   INTEGER
);
CREATE INDEX critical_findings_site ON critical_findings (site_id, acknowledged_at);

-- Each download of a signed report by the site (已打印).
CREATE TABLE report_downloads (
    id          INTEGER PRIMARY KEY,
    report_id   INTEGER NOT NULL REFERENCES reports(id),
    user_id     INTEGER NOT NULL REFERENCES users(id),
    at          INTEGER NOT NULL
);

-- Signing keys and certificates of doctors, issued by the centre's CA or
-- imported from PKCS#12. The key is PKCS#8 DER.
CREATE TABLE signing_identities (
    user_id      INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    cert_der     BLOB    NOT NULL,
    chain_der    BLOB,
    key_der      BLOB    NOT NULL,
    source       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);

-- Append-only and hash-chained: hash = SHA-256(prev_hash | fields). Nothing
-- updates or deletes these rows; verification recomputes the chain.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    user_id     INTEGER,
    username    TEXT,
    roles       TEXT,
    site_id     INTEGER,
    action      TEXT    NOT NULL,
    object      TEXT    NOT NULL,
    outcome     INTEGER NOT NULL,
    client      TEXT,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL
);
CREATE INDEX audit_log_user ON audit_log (user_id, at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
