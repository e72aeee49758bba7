-- Failed logins since the last success, and until when the account refuses
-- logins (milliseconds since the epoch); an admin can lift it.
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until INTEGER;
