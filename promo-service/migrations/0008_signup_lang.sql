-- The language the customer chose on the landing page (`fr` or `ar`): the signup's e-mails are
-- written in it. Rows from before this migration were all French.
ALTER TABLE signups ADD COLUMN lang TEXT NOT NULL DEFAULT 'fr';
