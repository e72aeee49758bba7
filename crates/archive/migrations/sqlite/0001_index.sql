-- Telediag index, version 1. Written in the SQL common to SQLite and
-- PostgreSQL where it can be; times are Unix milliseconds (INTEGER).

-- A site is a county hospital: its DICOM AE titles and, optionally, the
-- networks its associations must come from.
CREATE TABLE sites (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE site_ae_titles (
    ae_title    TEXT    PRIMARY KEY,
    site_id     INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE
);

CREATE TABLE site_networks (
    site_id     INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    cidr        TEXT    NOT NULL,
    PRIMARY KEY (site_id, cidr)
);

-- Patient IDs are issued by each hospital, so a patient is (site, patient ID).
-- Objects without a Patient ID get a patient of their own per study
-- (patient_key 'study:<uid>'): merging every unnamed patient would be worse.
CREATE TABLE patients (
    id           INTEGER PRIMARY KEY,
    site_id      INTEGER NOT NULL REFERENCES sites(id),
    patient_key  TEXT    NOT NULL,
    patient_id   TEXT    NOT NULL,
    name         TEXT,
    sex          TEXT,
    birth_date   TEXT,
    UNIQUE (site_id, patient_key)
);

CREATE TABLE studies (
    id                   INTEGER PRIMARY KEY,
    study_uid            TEXT    NOT NULL UNIQUE,
    patient_ref          INTEGER NOT NULL REFERENCES patients(id),
    site_id              INTEGER NOT NULL REFERENCES sites(id),
    accession_number     TEXT,
    study_date           TEXT,
    study_time           TEXT,
    description          TEXT,
    referring_physician  TEXT,
    institution          TEXT,
    modalities           TEXT    NOT NULL DEFAULT '',
    num_series           INTEGER NOT NULL DEFAULT 0,
    num_instances        INTEGER NOT NULL DEFAULT 0,
    size_bytes           INTEGER NOT NULL DEFAULT 0,
    -- receiving: instances may still arrive; complete: quiet for the stability delay
    status               TEXT    NOT NULL DEFAULT 'receiving',
    first_received_at    INTEGER NOT NULL,
    last_received_at     INTEGER NOT NULL,
    completed_at         INTEGER
);
CREATE INDEX studies_site_date ON studies (site_id, study_date);
CREATE INDEX studies_accession ON studies (accession_number);
CREATE INDEX studies_status ON studies (status, last_received_at);
CREATE INDEX studies_received ON studies (last_received_at);

CREATE TABLE series (
    id              INTEGER PRIMARY KEY,
    series_uid      TEXT    NOT NULL UNIQUE,
    study_ref       INTEGER NOT NULL REFERENCES studies(id),
    modality        TEXT,
    body_part       TEXT,
    description     TEXT,
    series_number   INTEGER,
    num_instances   INTEGER NOT NULL DEFAULT 0,
    size_bytes      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX series_study ON series (study_ref);

-- Every received version of every object. Version 1 is the first; a resend
-- with different bytes becomes version 2, flagged, and so on.
CREATE TABLE instances (
    id                   INTEGER PRIMARY KEY,
    sop_instance_uid     TEXT    NOT NULL,
    version              INTEGER NOT NULL,
    series_ref           INTEGER NOT NULL REFERENCES series(id),
    sop_class_uid        TEXT    NOT NULL,
    transfer_syntax_uid  TEXT    NOT NULL,
    instance_number      INTEGER,
    number_of_frames     INTEGER,
    size_bytes           INTEGER NOT NULL,
    content_hash         TEXT    NOT NULL,
    object_key           TEXT    NOT NULL UNIQUE,
    calling_ae           TEXT,
    received_at          INTEGER NOT NULL,
    -- set when this version differs from an earlier one of the same UID
    conflict             INTEGER NOT NULL DEFAULT 0,
    UNIQUE (sop_instance_uid, version)
);
CREATE INDEX instances_series ON instances (series_ref);

-- Work for the pipeline and the worklist. On PostgreSQL, workers claim with
-- SELECT ... FOR UPDATE SKIP LOCKED; on SQLite one UPDATE ... RETURNING.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    kind         TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'queued',
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_after    INTEGER NOT NULL,
    locked_by    TEXT,
    locked_until INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX jobs_ready ON jobs (state, kind, run_after);

-- People who log in to the HTTP service. Roles are a comma-separated set.
CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    username       TEXT    NOT NULL UNIQUE,
    display_name   TEXT    NOT NULL,
    password_hash  TEXT    NOT NULL,
    roles          TEXT    NOT NULL,
    site_id        INTEGER REFERENCES sites(id) ON DELETE CASCADE,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);

-- Login sessions; only a hash of the token is kept.
CREATE TABLE sessions (
    token_hash   TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
