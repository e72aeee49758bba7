-- Derived objects (thumbnails, previews): rebuildable from the originals, so
-- their files are written without fsync. One row per SOP instance and kind;
-- `error` holds "undecodable: <reason>" when rendering failed.
CREATE TABLE derived (
    id                INTEGER PRIMARY KEY,
    sop_instance_uid  TEXT    NOT NULL,
    kind              TEXT    NOT NULL,
    object_key        TEXT,
    content_type      TEXT,
    width             INTEGER,
    height            INTEGER,
    frames            INTEGER,
    size_bytes        INTEGER,
    etag              TEXT,
    error             TEXT,
    created_at        INTEGER NOT NULL,
    UNIQUE (sop_instance_uid, kind)
);
