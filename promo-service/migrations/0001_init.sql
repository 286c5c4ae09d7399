-- Schema of promo-service. Timestamps are BIGINT milliseconds since the Unix epoch (UTC); booleans
-- are 0/1 integers; the same statements run on SQLite and PostgreSQL.

CREATE TABLE packages (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    monthly_price_dzd   BIGINT NOT NULL CHECK (monthly_price_dzd >= 0),
    tokens_per_month    BIGINT NOT NULL CHECK (tokens_per_month >= 0),
    requests_per_minute BIGINT NOT NULL CHECK (requests_per_minute >= 0),
    -- Comma-separated public model names; empty = every model.
    allowed_models      TEXT NOT NULL DEFAULT '',
    sort_order          BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE promo_codes (
    code            TEXT PRIMARY KEY,
    description     TEXT NOT NULL DEFAULT '',
    active          BIGINT NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    max_redemptions BIGINT CHECK (max_redemptions IS NULL OR max_redemptions > 0),
    used            BIGINT NOT NULL DEFAULT 0 CHECK (used >= 0),
    duration_months BIGINT NOT NULL CHECK (duration_months BETWEEN 1 AND 120),
    valid_from      BIGINT NOT NULL,
    valid_until     BIGINT,
    created_at      BIGINT NOT NULL,
    -- Last line of defence against overselling, whatever the code path.
    CHECK (max_redemptions IS NULL OR used <= max_redemptions)
);

CREATE TABLE promo_code_discounts (
    code             TEXT NOT NULL REFERENCES promo_codes (code),
    package_id       TEXT NOT NULL REFERENCES packages (id),
    discount_percent BIGINT NOT NULL CHECK (discount_percent BETWEEN 1 AND 100),
    PRIMARY KEY (code, package_id)
);

CREATE TABLE customers (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE signups (
    id               TEXT PRIMARY KEY,
    customer_id      TEXT NOT NULL UNIQUE REFERENCES customers (id),
    package_id       TEXT NOT NULL REFERENCES packages (id),
    base_price_dzd   BIGINT NOT NULL,
    price_dzd        BIGINT NOT NULL,
    discount_percent BIGINT NOT NULL DEFAULT 0,
    promo_code       TEXT REFERENCES promo_codes (code),
    discount_ends_at BIGINT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX signups_created_at ON signups (created_at, id);

CREATE TABLE redemptions (
    code        TEXT NOT NULL REFERENCES promo_codes (code),
    email       TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (code, email)
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    -- SHA-256 of the key, hex. The key itself is never stored.
    key_hash    TEXT NOT NULL UNIQUE,
    prefix      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_customer ON api_keys (customer_id);

CREATE TABLE idempotency_keys (
    -- SHA-256 of the client's Idempotency-Key: the key itself decrypts the stored answer.
    key_hash     TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    -- The first answer, encrypted with a key derived from the Idempotency-Key (base64).
    response     TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

INSERT INTO packages (id, name, monthly_price_dzd, tokens_per_month, requests_per_minute, allowed_models, sort_order) VALUES
    ('starter',  'Starter',  10000,   1000000,   30, '', 1),
    ('dev',      'Dev',      15000,   5000000,   60, '', 2),
    ('business', 'Business', 100000,  30000000,  300, '', 3),
    ('premium',  'Premium',  200000,  100000000, 1000, '', 4);

-- LAUNCH30: 30 places, 6 months, valid from 2025-12-06 00:00 Algiers time (UTC+1).
INSERT INTO promo_codes (code, description, active, max_redemptions, used, duration_months, valid_from, valid_until, created_at) VALUES
    ('LAUNCH30', 'Offre de lancement : 30 premiers clients', 1, 30, 0, 6, 1764975600000, NULL, 1764975600000);

INSERT INTO promo_code_discounts (code, package_id, discount_percent) VALUES
    ('LAUNCH30', 'starter', 25),
    ('LAUNCH30', 'dev', 33),
    ('LAUNCH30', 'business', 25),
    ('LAUNCH30', 'premium', 30);
