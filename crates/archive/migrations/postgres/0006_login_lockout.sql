-- PostgreSQL form of migrations/sqlite/0006_login_lockout.sql: the same tables and columns,
-- BIGINT for INTEGER, BYTEA for BLOB, identity keys, plpgsql triggers.

-- Failed logins since the last success, and until when the account refuses
-- logins (milliseconds since the epoch); an admin can lift it.
ALTER TABLE users ADD COLUMN failed_logins BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until BIGINT;
