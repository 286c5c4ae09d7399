-- Transactional outbox: e-mails written in the signup transaction, delivered by a worker.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    customer_id     TEXT NOT NULL REFERENCES customers (id),
    -- Template variables (JSON); rendered at delivery so template fixes reach the backlog.
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- A worker owns a row until claimed_until; past it, another may take it (at-least-once).
    claimed_by      TEXT,
    claimed_until   BIGINT,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
