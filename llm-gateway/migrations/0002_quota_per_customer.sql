-- Quotas count per customer, no longer per key: a customer's keys (named keys, a rotation's grace
-- period) share their package's budget. The ledger's rows are regrouped under the customer id
-- (`subject`): a customer's grant for a month is the sum of what their keys were granted, the
-- customer of a key being known from llm_usage. Minute windows are over within a minute and are
-- not carried; a key with grants but no usage row yet (an unflushed first minute) loses its
-- grant, which can only under-count.
CREATE TABLE llm_quota_ledger (
    subject    TEXT   NOT NULL,
    kind       TEXT   NOT NULL,
    window_id  TEXT   NOT NULL,
    reserved   BIGINT NOT NULL DEFAULT 0,
    last_grant BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (subject, kind, window_id)
);

INSERT INTO llm_quota_ledger (subject, kind, window_id, reserved, last_grant, updated_at)
SELECT owners.user_id, l.kind, l.window_id, SUM(l.reserved), 0, MAX(l.updated_at)
FROM llm_quota_leases l
JOIN (SELECT DISTINCT key_id, user_id FROM llm_usage) owners ON owners.key_id = l.key_id
WHERE l.kind = 'tokens'
GROUP BY owners.user_id, l.kind, l.window_id;

DROP TABLE llm_quota_leases;
ALTER TABLE llm_quota_ledger RENAME TO llm_quota_leases;
CREATE INDEX llm_quota_leases_updated_at ON llm_quota_leases (updated_at);
