-- PostgreSQL form of migrations/sqlite/0009_dicomweb.sql: the same tables and columns,
-- BIGINT for INTEGER, BYTEA for BLOB, identity keys, plpgsql triggers.

-- What QIDO-RS answers from the index without opening files: the patient
-- name's alphabetic, ideographic and phonetic groups (each matched on its
-- own, so `张*` finds `Zhang^Wei=张^伟`), the Study ID, the series'
-- performed procedure step start, and each image's size and Bits Allocated.
-- Objects indexed before this version have NULL here until re-imported;
-- the name groups of existing patients are filled in at start
-- (`Database::open`).
ALTER TABLE patients ADD COLUMN name_alphabetic TEXT;
ALTER TABLE patients ADD COLUMN name_ideographic TEXT;
ALTER TABLE patients ADD COLUMN name_phonetic TEXT;
ALTER TABLE studies ADD COLUMN study_id TEXT;
ALTER TABLE series ADD COLUMN performed_start_date TEXT;
ALTER TABLE series ADD COLUMN performed_start_time TEXT;
ALTER TABLE instances ADD COLUMN rows BIGINT;
ALTER TABLE instances ADD COLUMN columns BIGINT;
ALTER TABLE instances ADD COLUMN bits_allocated BIGINT;
-- QIDO's orders and the patient-level lookups (`00100020=` for a patient's
-- other studies).
CREATE INDEX patients_patient_id ON patients (patient_id);
CREATE INDEX studies_date_time ON studies (study_date, study_time);
CREATE INDEX studies_patient ON studies (patient_ref);
