-- A registration reconciled with images whose patient ID or name differs:
-- both identities, for the site or an admin to confirm before the report is
-- signed; and who confirmed that they are one patient, and when.
ALTER TABLE read_requests ADD COLUMN identity_mismatch TEXT;
ALTER TABLE read_requests ADD COLUMN identity_confirmed_by INTEGER REFERENCES users(id);
ALTER TABLE read_requests ADD COLUMN identity_confirmed_at INTEGER;
