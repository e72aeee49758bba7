-- One row, rewritten by every sync point (see Database::sync_point): a commit
-- made with synchronous = FULL, whose fsync of the write-ahead log makes every
-- earlier commit durable too, including those made without one.
CREATE TABLE sync_points (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    at  INTEGER NOT NULL
);
