-- Billing, second part (PostgreSQL; SQLite: 0006_billing_proration.sqlite.sql, same schema).
-- An invoice is either a monthly period's ('period', at most one per period) or the prorated
-- difference of an upgrade ('proration', issued in the package change's transaction, at most one
-- per change). A proration bills `[change instant, period end)`, inside a period that already has
-- its invoice, so "one invoice per period" becomes a partial unique index on the period invoices
-- (by period index: the first period after BILLING_START_DATE starts at that date, not at the
-- period's start). Existing invoices are periods.
ALTER TABLE invoices DROP CONSTRAINT invoices_customer_id_period_start_key;
ALTER TABLE invoices ADD COLUMN kind TEXT NOT NULL DEFAULT 'period' CHECK (kind IN ('period', 'proration'));
ALTER TABLE invoices ADD COLUMN package_change_id TEXT REFERENCES package_changes (id);
CREATE UNIQUE INDEX invoices_one_per_period ON invoices (customer_id, period_index) WHERE kind = 'period';
CREATE UNIQUE INDEX invoices_package_change ON invoices (package_change_id);
