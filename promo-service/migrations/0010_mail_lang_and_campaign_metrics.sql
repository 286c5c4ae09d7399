-- The waitlist entry's language (`fr` or `ar`, the landing page's): its confirmation e-mail and
-- the pages its links open are written in it. Rows from before this migration were all French.
ALTER TABLE waitlist ADD COLUMN lang TEXT NOT NULL DEFAULT 'fr';

-- The campaign whose unsubscribe link added the address (NULL: another campaign's link from
-- before this migration, an operator's entry, a bounce): the campaign's metrics count it.
ALTER TABLE suppressions ADD COLUMN campaign_id TEXT;
