-- Billing: invoices per monthly period, credit notes, payments, the append-only ledger, and the
-- subscription's dunning state. Same statements on SQLite and PostgreSQL (BIGINT dinars and
-- milliseconds, TEXT ids). Issued rows are never updated: balances and statuses derive from
-- payments and credit notes.

-- One counter row per numbering series and year. The issuing transaction increments it with
-- UPDATE ... RETURNING (a row lock on PostgreSQL, the single writer on SQLite), so numbers are
-- consecutive across replicas and a rolled-back invoice rolls its number back with it.
-- Series: 'F' invoices (2026-000123), 'A' credit notes (A2026-000004).
CREATE TABLE billing_counters (
    series      TEXT NOT NULL,
    year        BIGINT NOT NULL,
    last_number BIGINT NOT NULL CHECK (last_number >= 0),
    PRIMARY KEY (series, year)
);

CREATE TABLE invoices (
    id                 TEXT PRIMARY KEY,
    number             TEXT NOT NULL UNIQUE,
    year               BIGINT NOT NULL,
    seq                BIGINT NOT NULL,
    customer_id        TEXT NOT NULL REFERENCES customers (id),
    email              TEXT NOT NULL,
    -- Period index from the signup (0 = first period) and its bounds.
    period_index       BIGINT NOT NULL,
    period_start       BIGINT NOT NULL,
    period_end         BIGINT NOT NULL,
    package_id         TEXT NOT NULL,
    -- The lines as issued (JSON array of {label, amount_dzd}).
    lines              TEXT NOT NULL,
    net_dzd            BIGINT NOT NULL CHECK (net_dzd >= 0),
    tax_dzd            BIGINT NOT NULL CHECK (tax_dzd >= 0),
    total_dzd          BIGINT NOT NULL CHECK (total_dzd >= 0),
    tax_rate_bp        BIGINT NOT NULL,
    prices_include_tax BIGINT NOT NULL CHECK (prices_include_tax IN (0, 1)),
    -- The seller's legal identity as configured when issued (JSON object).
    seller             TEXT NOT NULL,
    issued_at          BIGINT NOT NULL,
    due_at             BIGINT NOT NULL,
    CHECK (net_dzd + tax_dzd = total_dzd),
    -- Issuing twice is impossible, whichever replica or job run tries.
    UNIQUE (customer_id, period_start),
    UNIQUE (year, seq)
);
CREATE INDEX invoices_customer ON invoices (customer_id, issued_at);

CREATE TABLE credit_notes (
    id          TEXT PRIMARY KEY,
    number      TEXT NOT NULL UNIQUE,
    invoice_id  TEXT NOT NULL REFERENCES invoices (id),
    customer_id TEXT NOT NULL REFERENCES customers (id),
    amount_dzd  BIGINT NOT NULL CHECK (amount_dzd > 0),
    reason      TEXT NOT NULL,
    issued_at   BIGINT NOT NULL
);
CREATE INDEX credit_notes_invoice ON credit_notes (invoice_id);

-- Every payment, immutable. `external_id` is the payment provider's id (one row per id).
CREATE TABLE payments (
    id          TEXT PRIMARY KEY,
    invoice_id  TEXT NOT NULL REFERENCES invoices (id),
    customer_id TEXT NOT NULL REFERENCES customers (id),
    amount_dzd  BIGINT NOT NULL CHECK (amount_dzd > 0),
    method      TEXT NOT NULL CHECK (method IN ('bank_transfer', 'ccp', 'baridimob', 'card')),
    reference   TEXT NOT NULL,
    external_id TEXT UNIQUE,
    paid_at     BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX payments_customer ON payments (customer_id);

-- Card payments through Chargily Pay: each checkout created for an invoice, with the amount it
-- must be paid for. A webhook for a checkout not in this table, or for another amount or
-- currency, changes nothing. The payment it records carries the checkout id as `external_id`,
-- so an event delivered twice records one payment.
CREATE TABLE chargily_checkouts (
    id          TEXT PRIMARY KEY,
    invoice_id  TEXT NOT NULL REFERENCES invoices (id),
    customer_id TEXT NOT NULL REFERENCES customers (id),
    amount_dzd  BIGINT NOT NULL CHECK (amount_dzd > 0),
    created_at  BIGINT NOT NULL
);

-- Append-only record of every billing event. `amount_dzd` is signed: + what the customer owes
-- (invoice issued), − what settled it (payment, credit note), 0 for a state change. Per customer,
-- SUM(amount_dzd) = invoices − credit notes − payments (checked by `reconcile`).
CREATE TABLE billing_ledger (
    id          TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    kind        TEXT NOT NULL CHECK (kind IN ('invoice_issued', 'payment_recorded', 'credit_note_issued', 'state_changed')),
    -- The invoice, payment or credit note id; the new state for a state change.
    subject     TEXT NOT NULL,
    amount_dzd  BIGINT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
CREATE INDEX billing_ledger_customer ON billing_ledger (customer_id, created_at);

-- The subscription's dunning state, changed by the billing job and by payments (with a ledger
-- row each time). The keys of a 'suspended' subscription answer payment_required.
ALTER TABLE signups ADD COLUMN billing_state TEXT NOT NULL DEFAULT 'active';
