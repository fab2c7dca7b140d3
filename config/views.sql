-- SQL views the reader's site (govfeed site; govfeed/site/metadata.json) reads.
--
-- published_releases: the releases a reader sees. Quarantined releases (unauthenticated
-- mail that claims a government sender, held back by the mailbox's `unauthenticated =
-- "quarantine"` policy) are left out, so they stay out of the site's default listing,
-- its full-text search box and its facets. `release_month` (YYYY-MM) exists because
-- Datasette 0.65 can facet by day (`_facet_date`) but not by month.
--
-- The index makes the view's row count and facets read an index instead of every release
-- (~17,000 releases: the page took 26 ms instead of 166 ms).
--
-- A govfeed schema migration creates both; this file is the same SQL for a database made
-- before that migration (`sqlite3 -cmd '.timeout 10000' govfeed.db < config/views.sql`)
-- and for the tests. Re-running it is harmless.
DROP VIEW IF EXISTS published_releases;
CREATE VIEW published_releases AS
SELECT
    id,
    release_date,
    title,
    release_type,
    agency,
    agency_as_written,
    url,
    body_html,
    body_text,
    account_code,
    bulletin_id,
    first_seen_at,
    message_count,
    version_count,
    substr(release_date, 1, 7) AS release_month
FROM releases
WHERE status = 'published';

CREATE INDEX IF NOT EXISTS idx_releases_status_release_date
    ON releases (status, release_date, agency, release_type);

-- published_release_versions: the site's "Release versions", every text of a published
-- release except those from mail held back in quarantine (a forged copy seen before the
-- authenticated one stays out, though its release is published now).
DROP VIEW IF EXISTS published_release_versions;
CREATE VIEW published_release_versions AS
SELECT
    v.id,
    v.release_id,
    v.version,
    v.content_hash,
    v.title,
    v.release_date,
    v.url,
    v.body_text,
    v.body_html,
    v.message_pk,
    v.sent_at,
    v.seen_at
FROM release_versions v
JOIN releases r ON r.id = v.release_id
LEFT JOIN messages m ON m.id = v.message_pk
WHERE r.status = 'published' AND coalesce(m.status, '') != 'quarantined';
