-- Doctors' private keys are kept only sealed under their signing PIN
-- (Argon2id + AES-256-GCM, telediag_reports::sealed): the server alone, or
-- whoever copies this file, cannot sign as a doctor. Keys stored before
-- this in the clear cannot be trusted to have stayed secret: their
-- certificates are retired (the centre CA's revoked) and each doctor sets
-- a PIN, which issues a new key and certificate.
CREATE TABLE retired_certificates (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER REFERENCES users(id) ON DELETE SET NULL,
    cert_der    BLOB    NOT NULL,
    source      TEXT    NOT NULL,
    retired_at  INTEGER NOT NULL,
    -- Why: 'key stored unsealed', 'PIN forgotten', 'revoked by an administrator', 'replaced'.
    reason      TEXT    NOT NULL
);
INSERT INTO retired_certificates (user_id, cert_der, source, retired_at, reason)
    SELECT user_id, cert_der, source, CAST(strftime('%s', 'now') AS INTEGER) * 1000, 'key stored unsealed'
    FROM signing_identities;
DROP TABLE signing_identities;
CREATE TABLE signing_identities (
    user_id          INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    cert_der         BLOB    NOT NULL,
    chain_der        BLOB,
    -- The PKCS#8 key, sealed under the PIN and bound to cert_der.
    key_sealed       BLOB    NOT NULL,
    source           TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    -- Wrong PINs in a row, and until when signing is refused after too many.
    pin_failures     INTEGER NOT NULL DEFAULT 0,
    pin_locked_until INTEGER
);

-- Each signer signs what they were shown, at their own act: the reporting
-- doctor's signed PDF is kept with the version. The reviewer adds a
-- revision to it; or, having revised the text (审核修改), signs a new
-- rendering alone as its editor, and the author's stays in the history.
ALTER TABLE reports ADD COLUMN author_pdf_key TEXT;
ALTER TABLE reports ADD COLUMN author_pdf_sha256 TEXT;
ALTER TABLE reports ADD COLUMN edited_by_reviewer INTEGER NOT NULL DEFAULT 0;
