-- The launch campaign: imported contacts and their consent, the suppression list no campaign
-- can override, the waitlist (double opt-in), campaigns and their recipients. Same statements
-- on SQLite and PostgreSQL (BIGINT milliseconds, TEXT ids).

-- The outbox now also carries e-mails to people who are not customers (campaign recipients,
-- waitlist confirmations): `customer_id` becomes optional. SQLite cannot drop a NOT NULL, so the
-- table is rebuilt (rows, ids and states kept as they are).
CREATE TABLE outbox_v7 (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    customer_id     TEXT REFERENCES customers (id),
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_by      TEXT,
    claimed_until   BIGINT,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
INSERT INTO outbox_v7 (id, kind, recipient, customer_id, payload, status, attempts,
    next_attempt_at, claimed_by, claimed_until, last_error, created_at, sent_at)
SELECT id, kind, recipient, customer_id, payload, status, attempts, next_attempt_at, claimed_by,
    claimed_until, last_error, created_at, sent_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v7 RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

-- One row per canonical e-mail (`domain::Email`): a second import of the same address merges
-- into it. `consent_at` NULL: no consent recorded, never targeted by a campaign.
CREATE TABLE contacts (
    email       TEXT PRIMARY KEY,
    name        TEXT NOT NULL DEFAULT '',
    source      TEXT NOT NULL DEFAULT '',
    consent_at  BIGINT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Addresses no campaign may write to, whatever its audience. Only ever inserted.
CREATE TABLE suppressions (
    email       TEXT PRIMARY KEY,
    reason      TEXT NOT NULL CHECK (reason IN ('unsubscribed', 'bounced', 'complained')),
    note        TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);

-- Visitors who asked to be told when places come back; only confirmed rows are targeted.
CREATE TABLE waitlist (
    email          TEXT PRIMARY KEY,
    consent_at     BIGINT NOT NULL,
    confirmed_at   BIGINT,
    last_mailed_at BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);

-- `status`: draft → scheduled → sending (recipients written, messages paced in the outbox).
CREATE TABLE campaigns (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    template    TEXT NOT NULL,
    audience    TEXT NOT NULL CHECK (audience IN ('contacts', 'waitlist', 'prospects')),
    locale      TEXT NOT NULL CHECK (locale IN ('fr', 'ar')),
    status      TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'sending')),
    send_at     BIGINT,
    enqueued_at BIGINT,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- The key (campaign, e-mail) is what makes "one message per recipient per campaign" hold with
-- several replicas: a second insert of the pair fails, whoever tries it.
CREATE TABLE campaign_recipients (
    campaign_id TEXT NOT NULL REFERENCES campaigns (id),
    email       TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('queued', 'suppressed')),
    outbox_id   TEXT,
    PRIMARY KEY (campaign_id, email)
);

-- The next free sending slot (ms) shared by every campaign and replica: pacing at the relay's
-- rate holds across campaigns enqueued at once. One row, moved by compare-and-set.
CREATE TABLE campaign_pacing (
    id        BIGINT PRIMARY KEY,
    next_slot BIGINT NOT NULL
);
INSERT INTO campaign_pacing (id, next_slot) VALUES (1, 0);
