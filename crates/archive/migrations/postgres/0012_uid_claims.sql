-- PostgreSQL form of migrations/sqlite/0012_uid_claims.sql: BIGINT for INTEGER.

-- Which site first sent each study and series UID (ingest/ownership.rs).
-- A claim is made before the first object under the UID is published, by an
-- insert that keeps whichever claim came first, so gateways in different
-- processes cannot both find a new UID free. Claims are never changed.
CREATE TABLE uid_claims (
    -- 'study' or 'series'
    kind    TEXT   NOT NULL,
    uid     TEXT   NOT NULL,
    site_id BIGINT NOT NULL REFERENCES sites(id),
    at      BIGINT NOT NULL,
    PRIMARY KEY (kind, uid)
);
CREATE INDEX uid_claims_site ON uid_claims (site_id);

-- What the index already holds was claimed by its sender.
INSERT INTO uid_claims (kind, uid, site_id, at)
    SELECT 'study', study_uid, site_id, 0 FROM studies;
INSERT INTO uid_claims (kind, uid, site_id, at)
    SELECT 'series', se.series_uid, st.site_id, 0 FROM series se JOIN studies st ON st.id = se.study_ref;
