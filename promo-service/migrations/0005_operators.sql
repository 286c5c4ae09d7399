-- The operator's console: named operators and their sessions, the audit log of admin changes,
-- first-party page-event counts per day, daily MRR snapshots and marketing spend. Same
-- statements on SQLite and PostgreSQL (BIGINT milliseconds, TEXT ids and days).

-- `role` is `owner` or `support`; `password_hash` is an argon2id PHC string.
CREATE TABLE operators (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'support')),
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- As the customers' `sessions`: only the SHA-256 of the token, idle and absolute expiry.
CREATE TABLE operator_sessions (
    token_hash   TEXT PRIMARY KEY,
    operator_id  TEXT NOT NULL REFERENCES operators (id),
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id);

-- Append-only: rows are inserted in the transaction of the change they describe, never
-- updated or deleted by the service. `operator_id` is NULL for the admin token.
CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    operator_id TEXT REFERENCES operators (id),
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    before_json TEXT NOT NULL,
    after_json  TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at, id);

-- Counts only: the day (UTC, `2026-11-30`) and the event name, nothing about the visitor.
CREATE TABLE daily_events (
    day   TEXT NOT NULL,
    event TEXT NOT NULL,
    count BIGINT NOT NULL CHECK (count >= 0),
    PRIMARY KEY (day, event)
);

-- One row per day, rewritten by the periodic job while the day lasts (its last pass wins).
CREATE TABLE mrr_snapshots (
    day              TEXT PRIMARY KEY,
    mrr_dzd          BIGINT NOT NULL,
    active_customers BIGINT NOT NULL,
    taken_at         BIGINT NOT NULL
);

CREATE TABLE marketing_spend (
    id          TEXT PRIMARY KEY,
    day         TEXT NOT NULL,
    channel     TEXT NOT NULL,
    amount_dzd  BIGINT NOT NULL CHECK (amount_dzd > 0),
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX marketing_spend_day ON marketing_spend (day);
