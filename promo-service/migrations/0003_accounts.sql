-- Customer accounts: sign-in links, sessions, named keys with scheduled revocation, package
-- changes and notices. Same statements on SQLite and PostgreSQL (BIGINT milliseconds, TEXT ids).

-- One-time sign-in links. Only the SHA-256 of the token is stored; `used_at` makes it single-use
-- (a guarded UPDATE ... WHERE used_at IS NULL AND expires_at > now).
CREATE TABLE sign_in_links (
    token_hash  TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX sign_in_links_customer ON sign_in_links (customer_id, created_at);

-- Link requests, for the per-address and per-IP limits shared by every replica. `bucket` is
-- `email:` + SHA-256 of the normalised address (known or not: the same work either way) or
-- `ip:` + the client address.
CREATE TABLE sign_in_requests (
    bucket     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX sign_in_requests_bucket ON sign_in_requests (bucket, created_at);

-- Sessions live in the shared database so any replica serves them. Only the SHA-256 of the
-- token is stored. Valid while not revoked, before `expires_at` (absolute) and within the idle
-- limit of `last_seen_at`.
CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    customer_id  TEXT NOT NULL REFERENCES customers (id),
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX sessions_customer ON sessions (customer_id);

-- Keys get a name and a revocation that may lie in the future (rotation grace): a key works
-- while revoked_at IS NULL OR revoked_at > now.
ALTER TABLE api_keys ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN revoked_by TEXT;

-- The subscription state lives on the signup row (one per customer): package, price and
-- discount in force; a downgrade waiting for the next period; a cancellation date; suspension.
ALTER TABLE signups ADD COLUMN pending_package_id TEXT REFERENCES packages (id);
ALTER TABLE signups ADD COLUMN pending_from BIGINT;
ALTER TABLE signups ADD COLUMN pending_price_dzd BIGINT;
ALTER TABLE signups ADD COLUMN pending_discount_percent BIGINT;
ALTER TABLE signups ADD COLUMN pending_discount_ends_at BIGINT;
ALTER TABLE signups ADD COLUMN cancel_at BIGINT;
ALTER TABLE customers ADD COLUMN suspended_at BIGINT;

-- Every package change, for the customer's and the operator's history.
CREATE TABLE package_changes (
    id           TEXT PRIMARY KEY,
    customer_id  TEXT NOT NULL REFERENCES customers (id),
    from_package TEXT NOT NULL,
    to_package   TEXT NOT NULL,
    kind         TEXT NOT NULL,
    effective_at BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);

-- Notices written once: the primary key makes a second replica's (or a second run's) insert
-- fail, and the e-mail is written in the same transaction.
CREATE TABLE notices (
    customer_id TEXT NOT NULL REFERENCES customers (id),
    kind        TEXT NOT NULL,
    occasion    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (customer_id, kind, occasion)
);
