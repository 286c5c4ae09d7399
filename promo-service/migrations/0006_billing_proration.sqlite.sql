-- Billing, second part (SQLite; PostgreSQL: 0006_billing_proration.sql, same schema). See that
-- file for what changes and why. SQLite cannot drop a table's UNIQUE constraint, so the table is
-- rebuilt the way SQLite documents (https://sqlite.org/lang_altertable.html, "making other kinds
-- of table schema changes"): foreign keys off (payments, credit notes and checkouts keep
-- referring to `invoices` by name, and find the new table under it), one transaction, the
-- foreign keys checked before COMMIT. Run outside the migrator's transaction (PRAGMA
-- foreign_keys has no effect inside one).
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE invoices_rebuilt (
    id                 TEXT PRIMARY KEY,
    number             TEXT NOT NULL UNIQUE,
    year               BIGINT NOT NULL,
    seq                BIGINT NOT NULL,
    customer_id        TEXT NOT NULL REFERENCES customers (id),
    email              TEXT NOT NULL,
    period_index       BIGINT NOT NULL,
    period_start       BIGINT NOT NULL,
    period_end         BIGINT NOT NULL,
    package_id         TEXT NOT NULL,
    lines              TEXT NOT NULL,
    net_dzd            BIGINT NOT NULL CHECK (net_dzd >= 0),
    tax_dzd            BIGINT NOT NULL CHECK (tax_dzd >= 0),
    total_dzd          BIGINT NOT NULL CHECK (total_dzd >= 0),
    tax_rate_bp        BIGINT NOT NULL,
    prices_include_tax BIGINT NOT NULL CHECK (prices_include_tax IN (0, 1)),
    seller             TEXT NOT NULL,
    issued_at          BIGINT NOT NULL,
    due_at             BIGINT NOT NULL,
    kind               TEXT NOT NULL DEFAULT 'period' CHECK (kind IN ('period', 'proration')),
    package_change_id  TEXT REFERENCES package_changes (id),
    CHECK (net_dzd + tax_dzd = total_dzd),
    UNIQUE (year, seq)
);
INSERT INTO invoices_rebuilt (id, number, year, seq, customer_id, email, period_index,
    period_start, period_end, package_id, lines, net_dzd, tax_dzd, total_dzd, tax_rate_bp,
    prices_include_tax, seller, issued_at, due_at)
SELECT id, number, year, seq, customer_id, email, period_index, period_start, period_end,
    package_id, lines, net_dzd, tax_dzd, total_dzd, tax_rate_bp, prices_include_tax, seller,
    issued_at, due_at
FROM invoices;
DROP TABLE invoices;
ALTER TABLE invoices_rebuilt RENAME TO invoices;
CREATE INDEX invoices_customer ON invoices (customer_id, issued_at);
CREATE UNIQUE INDEX invoices_one_per_period ON invoices (customer_id, period_index) WHERE kind = 'period';
CREATE UNIQUE INDEX invoices_package_change ON invoices (package_change_id);
COMMIT;
PRAGMA foreign_keys = ON;
