-- PostgreSQL form of migrations/sqlite/0011_signing_enrolments.sql: the same tables and columns,
-- BIGINT for INTEGER, BYTEA for BLOB, identity keys, plpgsql triggers.

-- A new signing key (a first PIN, a forgotten one, an imported PKCS#12) is
-- issued only against a one-time enrolment code that the centre's
-- registration officer makes on the server's console and hands the doctor
-- in person: an administrator who resets a doctor's password and logs in
-- as them still cannot obtain a key in the doctor's name.
CREATE TABLE signing_enrolments (
    user_id     BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    -- SHA-256 of the normalised code (60 random bits; never stored in the clear).
    code_sha256 TEXT    NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
