-- PostgreSQL form of migrations/sqlite/0004_sync_points.sql: the same tables and columns,
-- BIGINT for INTEGER, BYTEA for BLOB, identity keys, plpgsql triggers.

-- One row, rewritten by every sync point (see Database::sync_point): a commit
-- made with synchronous = FULL, whose fsync of the write-ahead log makes every
-- earlier commit durable too, including those made without one.
CREATE TABLE sync_points (
    id  BIGINT PRIMARY KEY CHECK (id = 1),
    at  BIGINT NOT NULL
);
