-- Billing, second part: an invoice is either a monthly period's ('period', one per period as
-- before) or the prorated difference of an upgrade ('proration'), issued in the package change's
-- own transaction. A proration invoice bills `[change instant, period end)`, so its
-- `period_start` is the change's instant and UNIQUE (customer_id, period_start) still holds;
-- it names its package change, at most one invoice per change. Same statements on SQLite and
-- PostgreSQL; existing invoices are periods.
ALTER TABLE invoices ADD COLUMN kind TEXT NOT NULL DEFAULT 'period' CHECK (kind IN ('period', 'proration'));
ALTER TABLE invoices ADD COLUMN package_change_id TEXT REFERENCES package_changes (id);
CREATE UNIQUE INDEX invoices_package_change ON invoices (package_change_id);
