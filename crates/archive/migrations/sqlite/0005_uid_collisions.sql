-- Objects refused because a UID they carry is held by another site: a
-- study, series or instance belongs to the site that sent it first. Kept for
-- the centre's administrator to review; the refused bytes are not kept.
CREATE TABLE uid_collisions (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    -- 'study', 'series' or 'instance'
    kind            TEXT    NOT NULL,
    uid             TEXT    NOT NULL,
    owner_site_id   INTEGER NOT NULL REFERENCES sites(id),
    sender_site_id  INTEGER NOT NULL REFERENCES sites(id),
    -- the sending AE title for DICOM, NULL for uploads and imports
    calling_ae      TEXT,
    -- the refused object's own SOP Instance UID
    sop_instance_uid TEXT   NOT NULL
);
CREATE INDEX uid_collisions_at ON uid_collisions (at);
