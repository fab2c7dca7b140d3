-- SQL views the Datasette site (config/datasette-metadata.json) reads.
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
    url,
    body_html,
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
